"""The per-point exact evaluator: the static model costed one configuration at a time.

Same metrics as ``static``, but every decode step is costed (no quadrature) and
each configuration is its own task, as a simulation-backed evaluator would be.
It is the reference the vectorized evaluator is checked against, and a
milliseconds-per-point workload for measuring how evaluation scales with workers.
"""

from __future__ import annotations

from ..space import Config
from .base import EvaluatorContext, PerPointEvaluator
from .static import StaticEvaluator


class ExactEvaluator(PerPointEvaluator):
    kind = "estimate"
    chunk_size = 1

    def __init__(self, context: EvaluatorContext) -> None:
        super().__init__(context)
        self._exact = StaticEvaluator(context)
        self._exact.decode_nodes = 0  # replaced per point by a node count that makes the sum exact

    @classmethod
    def metric_names(cls, context):
        return StaticEvaluator.metric_names(context)

    @classmethod
    def check(cls, context, origin) -> None:
        StaticEvaluator.check(context, origin)

    def evaluate_one(self, config: Config, static_metrics: dict) -> dict:
        output = int(config.get("output_tokens") or self.context.workload["output_tokens"])
        self._exact.decode_nodes = max(3, output | 1)  # >= number of decode steps: exact sum
        (outcome,) = self._exact.evaluate([config]).outcomes()
        if outcome.metrics is None:
            raise RuntimeError(outcome.error or "exact evaluation failed")
        return outcome.metrics
