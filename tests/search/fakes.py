"""Evaluators that misbehave on purpose (loaded by studies through evaluator kind 'custom')."""

from __future__ import annotations

import os
import signal

from infersim.search.evaluators.synthetic import SyntheticEvaluator


class RaisingEvaluator(SyntheticEvaluator):
    """Synthetic metrics, but raises for x == 3 (the whole batch raises: the job must isolate it)."""

    kind = "custom"
    chunk_size = 4

    @classmethod
    def check(cls, context, origin) -> None:
        pass

    def evaluate(self, configs):
        if any(c.get("x") == 3 for c in configs):
            raise ValueError("bad point x=3")
        return super().evaluate(configs)


class KillingEvaluator(SyntheticEvaluator):
    """Kills its own worker process (SIGKILL) when asked to evaluate x == 5."""

    kind = "custom"
    chunk_size = 2

    @classmethod
    def check(cls, context, origin) -> None:
        pass

    def evaluate(self, configs):
        if any(c.get("x") == 5 for c in configs):
            os.kill(os.getpid(), signal.SIGKILL)
        return super().evaluate(configs)
