"""Optimizers behind one ask/tell interface, in one registry keyed once (``OPTIMIZERS``): grid,
random, and Optuna's TPE, CMA-ES and NSGA-II (Optuna itself is imported when one is built)."""

from __future__ import annotations

from ...errors import InfersimError
from .base import OPTIMIZERS, Feedback, Optimizer, Trial, register
from .simple import GridSearch, RandomSearch  # registers grid, random
from . import optuna_opt as _optuna_opt  # noqa: F401,E402  (registers tpe, cmaes, nsga2)


def optimizer_class(kind: str) -> type[Optimizer]:
    """The registered optimizer ``kind``."""
    try:
        return OPTIMIZERS[kind]
    except KeyError:
        raise InfersimError(f"unknown optimizer '{kind}'; expected one of {', '.join(OPTIMIZERS)}") from None


def make_optimizer(kind: str, space, scoring, seed: int = 0, options: dict | None = None) -> Optimizer:
    """The optimizer registered as ``kind`` over ``space``."""
    return optimizer_class(kind)(space, scoring, seed, options)


__all__ = ["OPTIMIZERS", "Feedback", "GridSearch", "Optimizer", "RandomSearch", "Trial", "make_optimizer",
           "optimizer_class", "register"]
