"""Optimizers behind one ask/tell interface: grid, random, and Optuna's TPE, CMA-ES and NSGA-II."""

from __future__ import annotations

from .base import Feedback, Optimizer, Trial
from .simple import GridSearch, RandomSearch


def make_optimizer(kind: str, space, scoring, seed: int = 0, options: dict | None = None) -> Optimizer:
    """The optimizer named ``kind`` (grid, random, tpe, cmaes, nsga2)."""
    if kind == "grid":
        return GridSearch(space, scoring, seed, options)
    if kind == "random":
        return RandomSearch(space, scoring, seed, options)
    from .optuna_opt import OptunaSearch

    return OptunaSearch(space, scoring, seed, options, sampler=kind)


__all__ = ["Feedback", "GridSearch", "Optimizer", "RandomSearch", "Trial", "make_optimizer"]
