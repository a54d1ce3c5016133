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
    """Proposes configurations of ``space``; learns from feedback on them."""

    #: whether ``tell`` changes what is asked next (grid and random search do not)
    needs_feedback: bool = True

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
