"""Objectives and constraints: turning an evaluation's metrics into what optimizers see.

A constraint ``low <= metric <= high`` has a *violation* ``max(low - v, v - high)``
(<= 0 when met, Optuna's convention); a missing or NaN metric violates by
``inf``. A point is *feasible* when it was evaluated (status ``ok``) and meets
every constraint.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

OK, REJECTED, FAILED = "ok", "rejected", "failed"
DIRECTIONS = ("min", "max")


@dataclass(frozen=True)
class Objective:
    metric: str
    direction: str = "min"  # "min" or "max"

    @property
    def sign(self) -> float:
        """Multiplier that turns the metric into a quantity to minimize."""
        return 1.0 if self.direction == "min" else -1.0

    def label(self) -> str:
        return f"{self.direction} {self.metric}"


@dataclass(frozen=True)
class Constraint:
    metric: str
    low: float | None = None
    high: float | None = None

    def violation(self, value) -> float:
        if value is None or not isinstance(value, (int, float)) or math.isnan(value):
            return math.inf
        v = float(value)
        worst = -math.inf
        if self.low is not None:
            worst = max(worst, self.low - v)
        if self.high is not None:
            worst = max(worst, v - self.high)
        return worst if worst != -math.inf else 0.0

    def label(self) -> str:
        if self.low is not None and self.high is not None:
            return f"{self.low:g} <= {self.metric} <= {self.high:g}"
        if self.high is not None:
            return f"{self.metric} <= {self.high:g}"
        return f"{self.metric} >= {self.low:g}"


@dataclass(frozen=True)
class Score:
    feasible: bool
    objectives: tuple[float, ...] | None  # raw metric values, None unless status ok and all present
    violations: tuple[float, ...]


@dataclass(frozen=True)
class Scoring:
    objectives: tuple[Objective, ...]
    constraints: tuple[Constraint, ...] = ()

    def score(self, status: str, metrics: dict | None) -> Score:
        if status != OK or metrics is None:
            return Score(False, None, tuple(math.inf for _ in self.constraints))
        violations = tuple(c.violation(metrics.get(c.metric)) for c in self.constraints)
        values = []
        for o in self.objectives:
            v = metrics.get(o.metric)
            if v is None or not isinstance(v, (int, float)) or math.isnan(v):
                values = None
                break
            values.append(float(v))
        feasible = values is not None and all(v <= 0 for v in violations)
        return Score(feasible, tuple(values) if values is not None else None, violations)

    def score_columns(self, status, metrics: dict) -> tuple:
        """:meth:`score` over columns: ``(feasible (n,), objectives (n, k) with NaN, violations (n, c))``.

        ``status`` is a sequence of statuses, ``metrics`` a mapping name -> float array (NaN = missing).
        """
        n = len(status)
        ok = np.fromiter((s == OK for s in status), dtype=bool, count=n)
        missing = np.full(n, np.nan)
        objectives = np.empty((n, len(self.objectives)))
        for j, o in enumerate(self.objectives):
            objectives[:, j] = metrics.get(o.metric, missing)
        objectives[~ok] = np.nan
        violations = np.empty((n, len(self.constraints)))
        for j, c in enumerate(self.constraints):
            v = np.asarray(metrics.get(c.metric, missing), dtype=np.float64)
            worst = np.full(n, -np.inf)
            if c.low is not None:
                worst = np.maximum(worst, c.low - v)
            if c.high is not None:
                worst = np.maximum(worst, v - c.high)
            worst = np.where(np.isinf(worst) & (worst < 0), 0.0, worst)
            violations[:, j] = np.where(np.isnan(v), np.inf, worst)
        violations[~ok] = np.inf
        feasible = ok & ~np.isnan(objectives).any(axis=1) & (violations <= 0).all(axis=1)
        return feasible, objectives, violations

    def to_dict(self) -> dict:
        return {"objectives": [{"metric": o.metric, "direction": o.direction} for o in self.objectives],
                "constraints": [{"metric": c.metric, "low": c.low, "high": c.high} for c in self.constraints]}

    @classmethod
    def from_dict(cls, data: dict) -> "Scoring":
        return cls(tuple(Objective(o["metric"], o["direction"]) for o in data["objectives"]),
                   tuple(Constraint(c["metric"], c.get("low"), c.get("high")) for c in data["constraints"]))
