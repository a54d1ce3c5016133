"""Design-space search: which deployment meets the SLOs at the lowest cost.

A :class:`~infersim.search.study.Study` (loaded from YAML) names a search space,
an evaluator, objectives and constraints; :func:`run_study` drives an
:class:`~infersim.search.optimizers.Optimizer` (ask/tell) over a
:class:`~infersim.search.backends.Backend`, storing every evaluation in a DuckDB
:class:`~infersim.search.store.ResultStore`; :mod:`~infersim.search.results`
reads studies back and computes Pareto fronts.
"""

from .backends import InlineBackend, LocalBackend, make_backend
from .defaults import DEFAULT_STUDY, default_study
from .evaluators import Evaluator, EvaluatorContext, Outcome, PerPointEvaluator
from .optimizers import Feedback, Optimizer, Trial, make_optimizer
from .pareto import dominates, pareto_mask, pareto_ranks
from .results import StudyResults, export_csv, load_results, pareto_front, rank_points
from .runner import Progress, run_study
from .scoring import Constraint, Objective, Scoring
from .space import Categorical, FloatRange, IntRange, Space
from .store import DEFAULT_DB, ResultStore, open_store
from .study import Study, load_study, study_from_dict

__all__ = [
    "DEFAULT_DB", "DEFAULT_STUDY", "Categorical", "Constraint", "Evaluator", "EvaluatorContext", "Feedback",
    "FloatRange", "InlineBackend", "IntRange", "LocalBackend", "Objective", "Optimizer", "Outcome",
    "PerPointEvaluator", "Progress", "ResultStore", "Scoring", "Space", "Study", "StudyResults", "Trial",
    "default_study", "dominates", "export_csv", "load_results", "load_study", "make_backend", "make_optimizer",
    "open_store", "pareto_front", "pareto_mask", "pareto_ranks", "rank_points", "run_study", "study_from_dict",
]
