"""Design-space search: which deployment meets the SLOs at the lowest cost.

A :class:`~infersim.search.study.Study` (loaded from YAML) names a search space,
an evaluator, objectives and constraints; :func:`run_study` drives an
:class:`~infersim.search.optimizers.Optimizer` (ask/tell) over a
:class:`~infersim.search.backends.Backend`, storing every evaluation in a DuckDB
:class:`~infersim.search.store.ResultStore`; :mod:`~infersim.search.results`
reads studies back and computes Pareto fronts.
"""

from ..lazy import lazy_exports

_EXPORTS = {
    "InlineBackend": ".backends",
    "LocalBackend": ".backends",
    "make_backend": ".backends",
    "DEFAULT_STUDY": ".defaults",
    "default_study": ".defaults",
    "Evaluator": ".evaluators",
    "EvaluatorContext": ".evaluators",
    "Outcome": ".evaluators",
    "PerPointEvaluator": ".evaluators",
    "Feedback": ".optimizers",
    "Optimizer": ".optimizers",
    "Trial": ".optimizers",
    "make_optimizer": ".optimizers",
    "dominates": ".pareto",
    "pareto_mask": ".pareto",
    "pareto_ranks": ".pareto",
    "StudyResults": ".results",
    "export_csv": ".results",
    "load_results": ".results",
    "pareto_front": ".results",
    "rank_points": ".results",
    "Progress": ".runner",
    "run_study": ".runner",
    "Constraint": ".scoring",
    "Objective": ".scoring",
    "Scoring": ".scoring",
    "Categorical": ".space",
    "FloatRange": ".space",
    "IntRange": ".space",
    "Space": ".space",
    "DEFAULT_DB": ".store",
    "ResultStore": ".store",
    "open_store": ".store",
    "Study": ".study",
    "load_study": ".study",
    "study_from_dict": ".study",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
