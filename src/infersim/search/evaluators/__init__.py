"""Evaluators: static (vectorized cost model), loaded (static under load: queueing, P/D pools), estimate
(exact, per point), simulation, synthetic."""

from .base import Evaluator, EvaluatorContext, Outcome, PerPointEvaluator, evaluator_class, evaluator_for
from .exact import ExactEvaluator
from .loaded import LoadedEvaluator
from .simulation import SimulationEvaluator
from .static import DEPLOYMENT_KNOBS, StaticEvaluator
from .synthetic import SyntheticEvaluator

REGISTRY: dict[str, type[Evaluator]] = {
    cls.kind: cls for cls in (StaticEvaluator, ExactEvaluator, SimulationEvaluator, SyntheticEvaluator, LoadedEvaluator)
}

__all__ = ["DEPLOYMENT_KNOBS", "Evaluator", "EvaluatorContext", "ExactEvaluator", "LoadedEvaluator", "Outcome", "PerPointEvaluator",
           "REGISTRY", "SimulationEvaluator", "StaticEvaluator", "SyntheticEvaluator", "evaluator_class",
           "evaluator_for"]
