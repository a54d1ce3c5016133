"""Exhaustive grid and uniform random search."""

from __future__ import annotations

import itertools

import numpy as np

from .base import Optimizer, Trial, register


class _Batched(Optimizer):
    needs_feedback = False

    @classmethod
    def default_batch(cls, params, chunk_size: int) -> int:
        return max(chunk_size, 256)  # no feedback to wait for: large rounds


@register
class GridSearch(_Batched):
    """Every grid point of the space once (see :mod:`infersim.search.space` for the grid of each type)."""

    key = "grid"
    needs_budget = False

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._points = self.space.grid()

    def ask(self, n: int) -> list[Trial]:
        return [self._trial(c) for c in itertools.islice(self._points, n)]


@register
class RandomSearch(_Batched):
    """Independent samples (log-uniform where a range is log-scaled) from a seeded generator."""

    key = "random"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._rng = np.random.default_rng(self.seed)

    def ask(self, n: int) -> list[Trial]:
        return [self._trial(self.space.sample(self._rng)) for _ in range(n)]
