"""The ask/tell interface every optimizer implements (in the spirit of Optuna's ask-and-tell).

The runner asks for a batch of trials, evaluates them (in parallel, in any
order) and tells the feedback back *in ask order*, so an optimizer sees the
same history whatever the backend or the number of workers: the same seed
gives the same sequence of configurations. ``ask`` returns fewer trials than
asked (possibly none) when the optimizer has nothing more to propose.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from ...registry import registrar
from ..scoring import Scoring
from ..space import Config, Space


@dataclass(frozen=True)
class Trial:
    number: int  # position in the ask sequence, from 0
    config: Config
    handle: object = field(default=None, compare=False, repr=False)  # the optimizer's own bookkeeping


@dataclass(frozen=True)
class Feedback:
    status: str  # ok | rejected | failed
    feasible: bool
    objectives: tuple[float, ...] | None  # raw metric values, in the study's objective order
    violations: tuple[float, ...]  # per constraint, <= 0 when met


class Optimizer(ABC):
    """Proposes configurations of ``space``; learns from feedback on them.

    A subclass registered with :func:`register` is reachable from a study file's ``optimizer:``
    under its ``key``; ``options`` lists the ``optimizer.options`` it reads."""

    #: the study-file name (``optimizer: <key>``); each key registered once
    key: str = ""
    #: the ``optimizer.options`` keys it reads
    options_allowed: frozenset[str] = frozenset()
    #: whether a study must give a ``budget`` (an optimizer that never runs out of trials)
    needs_budget: bool = True
    #: whether ``tell`` changes what is asked next (grid and random search do not)
    needs_feedback: bool = True

    @classmethod
    def check(cls, n_objectives: int, params: list) -> str | None:
        """Why this optimizer cannot search a study of ``n_objectives`` over ``params`` (None: it can)."""
        return None

    @classmethod
    def default_batch(cls, params: list, chunk_size: int) -> int:
        """Trials asked per round when the study does not say (16: a few rounds of feedback per budget)."""
        return 16

    def __init__(self, space: Space, scoring: Scoring, seed: int = 0, options: dict | None = None) -> None:
        self.space = space
        self.scoring = scoring
        self.seed = seed
        self.options = dict(options or {})
        self._next = 0

    def _trial(self, config: Config, handle: object = None) -> Trial:
        trial = Trial(self._next, config, handle)
        self._next += 1
        return trial

    @abstractmethod
    def ask(self, n: int) -> list[Trial]:
        """Up to ``n`` new trials; an empty list when exhausted."""

    def tell(self, trial: Trial, feedback: Feedback) -> None:
        """Feedback on a trial this optimizer asked (default: ignored)."""


OPTIMIZERS: dict[str, type[Optimizer]] = {}


#: class decorator: add an optimizer to :data:`OPTIMIZERS` under its ``key`` (once)
register = registrar(OPTIMIZERS, "key", "optimizer")
