"""Evaluators that misbehave on purpose (loaded by studies through evaluator kind 'custom')."""

from __future__ import annotations

import os
import signal

from infersim.search.evaluators.synthetic import SyntheticEvaluator


class _Custom(SyntheticEvaluator):
    """Synthetic metrics under evaluator kind 'custom' (no option checks)."""

    kind = "custom"

    @classmethod
    def check(cls, context, origin) -> None:
        pass


class RaisingEvaluator(_Custom):
    """Synthetic metrics, but raises for x == 3 (the whole batch raises: the job must isolate it)."""

    chunk_size = 4

    def evaluate(self, configs):
        if any(c.get("x") == 3 for c in configs):
            raise ValueError("bad point x=3")
        return super().evaluate(configs)


class KillingEvaluator(_Custom):
    """Kills its own worker process (SIGKILL) when asked to evaluate x == 5."""

    chunk_size = 2

    def evaluate(self, configs):
        if any(c.get("x") == 5 for c in configs):
            os.kill(os.getpid(), signal.SIGKILL)
        return super().evaluate(configs)


class DyingEvaluator(_Custom):
    """Kills its own worker process (SIGKILL) on every point, as a worker that cannot start would."""

    chunk_size = 2

    def evaluate(self, configs):
        os.kill(os.getpid(), signal.SIGKILL)
