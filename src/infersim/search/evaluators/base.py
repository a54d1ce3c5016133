"""The evaluator interface: configurations in, metrics out, in batches.

An :class:`Evaluator` is built from an :class:`EvaluatorContext` (plain,
picklable data: which evaluator, its options, the workload and the SLOs), so a
worker process or a Ray task can rebuild it. ``evaluate(configs)`` returns one
:class:`Outcome` per configuration, in order: ``ok`` with metrics, ``rejected``
(the configuration cannot run: divisibility, memory) or ``failed`` (the
evaluation raised; the error text is kept).

:class:`PerPointEvaluator` is the shape of an expensive evaluator (the serving
simulation): the static model first rejects what cannot fit or divide, then
``evaluate_one`` runs per surviving point, each failure isolated (an
``evaluate_one`` that raises :class:`PointRejected` records the point as
rejected, with the reason; any other exception records it as failed).
``screen_config`` chooses what the static model screens (the serving simulation
screens one request, see :mod:`.simulation`).
"""

from __future__ import annotations

import importlib
import json
import traceback
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from ...errors import ConfigError, InfersimError
from ..scoring import FAILED, OK, REJECTED
from ..space import Config, Param, Value


@dataclass(frozen=True)
class EvaluatorContext:
    """Everything an evaluator needs besides the configurations (picklable, hashable as JSON)."""

    kind: str
    options: dict = field(default_factory=dict)
    workload: dict = field(default_factory=dict)  # input_tokens, output_tokens, rate_rps
    slo: dict = field(default_factory=dict)  # metric -> upper bound
    target: str | None = None  # "module:Class" for kind "custom"
    runtime: str | None = None  # serving runtime (infersim.runtime); None: the default one
    efficiency: str = "calibrated"  # catalog devices: shipped profiles, or "spec" (spec sheet only)

    def to_json(self) -> str:
        data = {"kind": self.kind, "options": self.options, "workload": self.workload, "slo": self.slo,
                "target": self.target, "efficiency": self.efficiency}
        from ...runtime import DEFAULT_RUNTIME

        # the runtime the points are computed with: kernels-only studies keep the namespace they had
        # before runtimes existed; a study without a runtime gets the default one's namespace (so a
        # change of the default never reuses points computed under another runtime)
        effective = self.runtime if self.runtime is not None else DEFAULT_RUNTIME
        if effective != "none":
            data["runtime"] = effective
        return json.dumps(data, sort_keys=True, separators=(",", ":"))


@dataclass
class Outcome:
    status: str  # ok | rejected | failed
    metrics: dict | None = None
    error: str | None = None


@dataclass
class Columns:
    """Outcomes of many configurations as columns (what vectorized evaluators return).

    ``metrics[name][i]`` is NaN where point ``i`` has no value for ``name``.
    """

    status: list[str]
    error: list[str | None]
    metrics: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.status)

    @classmethod
    def from_outcomes(cls, outcomes: list[Outcome]) -> "Columns":
        names: dict[str, None] = {}
        for o in outcomes:
            for k, v in (o.metrics or {}).items():
                if isinstance(v, (int, float)):
                    names.setdefault(k)
        n = len(outcomes)
        metrics = {k: np.full(n, np.nan) for k in names}
        for i, o in enumerate(outcomes):
            for k, v in (o.metrics or {}).items():
                if k in metrics and isinstance(v, (int, float)):
                    metrics[k][i] = float(v)
        return cls([o.status for o in outcomes], [o.error for o in outcomes], metrics)

    def outcome(self, i: int) -> Outcome:
        values = {k: float(v[i]) for k, v in self.metrics.items() if not np.isnan(v[i])}
        return Outcome(self.status[i], values or None, self.error[i])

    def outcomes(self) -> list[Outcome]:
        return [self.outcome(i) for i in range(len(self))]


class PointRejected(Exception):
    """Raised by :meth:`PerPointEvaluator.evaluate_one`: the configuration cannot run (the message says why)."""


def as_columns(result: "list[Outcome] | Columns") -> Columns:
    return result if isinstance(result, Columns) else Columns.from_outcomes(result)


def failure(exc: BaseException) -> Outcome:
    """A failed outcome carrying the exception's type, message and innermost frame."""
    tb = traceback.extract_tb(exc.__traceback__)
    where = f" (at {tb[-1].filename.rsplit('/', 1)[-1]}:{tb[-1].lineno})" if tb else ""
    return Outcome(FAILED, None, f"{type(exc).__name__}: {exc}{where}")


def check_option_keys(context: EvaluatorContext, allowed, origin) -> None:
    """A one-line error for the first ``evaluator.options`` key the evaluator does not know."""
    for key in context.options:
        if key not in allowed:
            raise ConfigError(origin, f"evaluator.options.{key}",
                              f"unknown option; expected one of {', '.join(sorted(allowed))}")
    if "moe_routing" in context.options:
        from ...perf.routing import parse_routing

        try:
            parse_routing(context.options["moe_routing"])
        except InfersimError as exc:
            raise ConfigError(origin, "evaluator.options.moe_routing", str(exc)) from None


class Evaluator(ABC):
    kind: ClassVar[str] = ""
    #: configurations per task sent to a worker (vectorized evaluators want many)
    chunk_size: ClassVar[int] = 1

    def __init__(self, context: EvaluatorContext) -> None:
        self.context = context

    @classmethod
    def knobs(cls, context: EvaluatorContext) -> dict[str, Value | None] | None:
        """Parameter names this evaluator understands and their defaults (None: required).
        ``None`` instead of a dict: any parameter is accepted."""
        return None

    @classmethod
    def metric_names(cls, context: EvaluatorContext) -> list[str] | None:
        """Metrics it reports (for validating objectives and constraints); None: not known in advance."""
        return None

    @classmethod
    def check(cls, context: EvaluatorContext, origin: object) -> None:
        """Validate options before any evaluation; raise :class:`ConfigError` naming the field."""

    @classmethod
    def check_params(cls, context: EvaluatorContext, params: list[Param], origin: object) -> None:
        """Validate the search space's parameters (their values) before any evaluation; raise
        :class:`ConfigError` naming ``space.<name>``."""

    @classmethod
    def unknown_metric_hint(cls, context: EvaluatorContext, metric: str) -> str:
        """Text appended to the 'unknown metric' error of ``metric`` (why it is not reported)."""
        return " ('utilization' needs workload.rate_rps)" if metric == "utilization" else ""

    @abstractmethod
    def evaluate(self, configs: list[Config]) -> "list[Outcome] | Columns":
        """One outcome per configuration, in order (or the same as :class:`Columns`).
        A bad point must give a ``rejected`` or ``failed`` outcome, not raise."""


class PerPointEvaluator(Evaluator):
    """Static screen (divisibility, memory fit, optional SLO screen), then ``evaluate_one`` per point."""

    chunk_size = 1

    def __init__(self, context: EvaluatorContext) -> None:
        super().__init__(context)
        from .static import StaticEvaluator

        self._screen = StaticEvaluator(context)

    @classmethod
    def knobs(cls, context):
        from .static import DEPLOYMENT_KNOBS

        return dict(DEPLOYMENT_KNOBS)

    @abstractmethod
    def evaluate_one(self, config: Config, static_metrics: dict) -> dict:
        """Metrics of one configuration that passed the static screen (raise :class:`PointRejected`
        when it turns out it cannot run)."""

    def screen_config(self, config: Config) -> Config:
        """The configuration the static model screens in place of ``config`` (by default itself)."""
        return config

    def evaluate(self, configs: list[Config]) -> list[Outcome]:
        screened = self._screen.evaluate([self.screen_config(c) for c in configs]).outcomes()
        out = []
        factor = self.context.options.get("screen_slo_factor")
        for config, first in zip(configs, screened):
            if first.status != OK:
                out.append(first)
                continue
            if factor is not None:
                reason = slo_screen(first.metrics, self.context.slo, float(factor))
                if reason:
                    out.append(Outcome(REJECTED, first.metrics, reason))
                    continue
            try:
                out.append(Outcome(OK, self.evaluate_one(config, first.metrics)))
            except PointRejected as exc:
                out.append(Outcome(REJECTED, None, str(exc)))
            except Exception as exc:  # noqa: BLE001 - a failing point is recorded, the study goes on
                out.append(failure(exc))
        return out


def slo_screen(metrics: dict, slo: dict, factor: float) -> str | None:
    """Why the static estimate rules a point out (an SLO missed by more than ``factor``), or None."""
    for metric, bound in slo.items():
        v = metrics.get(metric)
        if v is not None and v > bound * factor:
            return f"static screen: {metric} = {v:.4g} > {factor:g} x SLO {bound:g}"
    return None


def evaluator_class(context: EvaluatorContext, origin: object = "<study>") -> type[Evaluator]:
    from . import REGISTRY

    if context.kind == "custom":
        target = context.target or ""
        module, _, attr = target.partition(":")
        if not module or not attr:
            raise ConfigError(origin, "evaluator.target", f"expected 'package.module:ClassName', got '{target}'")
        try:
            cls = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(origin, "evaluator.target", f"cannot import '{target}': {exc}") from None
        if not (isinstance(cls, type) and issubclass(cls, Evaluator)):
            raise ConfigError(origin, "evaluator.target", f"'{target}' is not an infersim.search Evaluator subclass")
        return cls
    try:
        return REGISTRY[context.kind]
    except KeyError:
        raise ConfigError(origin, "evaluator.kind", f"unknown evaluator '{context.kind}'; expected one of "
                          + ", ".join(sorted([*REGISTRY, "custom"]))) from None


_CACHE: dict[str, Evaluator] = {}


def evaluator_for(context: EvaluatorContext) -> Evaluator:
    """The evaluator for ``context``, built once per process (workers reuse it across tasks)."""
    key = context.to_json()
    if key not in _CACHE:
        if len(_CACHE) > 8:
            _CACHE.clear()
        _CACHE[key] = evaluator_class(context)(context)
    return _CACHE[key]
