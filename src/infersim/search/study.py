"""Study files: the YAML a user writes, validated before any evaluation.

.. code-block:: yaml

    name: llama70b-chat            # results are stored under this name
    workload: chat                 # preset, or {input_tokens, output_tokens, rate_rps}
    evaluator: static              # static | estimate | simulation | synthetic | custom
    space:                         # parameter -> value | [choices] | {type, low, high, step, log, when, default}
      model: llama-3.1-70b
      device: [h100-sxm, h200]
      tp: [1, 2, 4, 8]
      max_batch: {type: int, low: 8, high: 256, log: true}
      ep: {type: int, low: 1, high: 8, log: true, when: {model.is_moe: true}, default: 1}
    slo: {ttft_p99_s: 1.0, tpot_p90_s: 0.060}   # upper bounds; define goodput, act as constraints
    constraints: ["devices <= 32", {metric: power_w, max: 20000}]
    objectives: [{min: usd_per_million_output_tokens}, {max: goodput_tokens_per_s_per_device}]
    optimizer: grid                # grid | random | tpe | cmaes | nsga2 (or {kind, batch_size, ...})
    budget: 500                    # trials (default: the whole grid for grid search)
    seed: 0

Everything a mistake can break is checked here, each error naming the file
and the field: unknown parameters (for the evaluator), unknown models, devices
and dtypes, empty ranges, spaces with no valid (model, tp, pp, ep), unknown
metrics, contradictory constraints, optimizer/objective mismatches.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..dtypes import DTYPE_BYTES
from ..hardware.choices import known_efficiency
from ..runtime import known_runtime
from ..errors import ConfigError, InfersimError
from ..userfile import load_yaml
from .evaluators.base import EvaluatorContext, evaluator_class
from .optimizers import OPTIMIZERS
from .scoring import Constraint, Objective, Scoring
from .space import Categorical, Condition, Config, FloatRange, IntRange, Param, Space, Value

WORKLOAD_PRESETS: dict[str, dict] = {
    # illustrative request shapes; rate_rps is the offered load the deployment must serve
    "chat": {"input_tokens": 1024, "output_tokens": 256, "rate_rps": 20.0},
    "rag": {"input_tokens": 4096, "output_tokens": 256, "rate_rps": 10.0},
    "reasoning": {"input_tokens": 1024, "output_tokens": 4096, "rate_rps": 2.0},
}
NONNEGATIVE_SUFFIXES = ("_s", "_bytes", "_per_device", "_per_s", "_w", "_tokens", "devices", "_per_hour")

_Strict = ConfigDict(extra="forbid")
ScalarValue = str | bool | int | float


class ParamSpec(BaseModel):
    model_config = _Strict
    type: Literal["categorical", "int", "float"] | None = None
    values: list[ScalarValue] | None = None
    low: int | float | None = None
    high: int | float | None = None
    step: int | None = None
    log: bool = False
    grid_points: int | None = Field(default=None, ge=2)
    when: dict[str, ScalarValue | list[ScalarValue]] | None = None
    default: ScalarValue | None = None


class WorkloadSpec(BaseModel):
    model_config = _Strict
    preset: str | None = None
    input_tokens: int | None = Field(default=None, ge=1)
    output_tokens: int | None = Field(default=None, ge=1)
    rate_rps: float | None = Field(default=None, gt=0)


class EvaluatorSpec(BaseModel):
    model_config = _Strict
    kind: str = "static"
    options: dict[str, Any] = Field(default_factory=dict)
    target: str | None = None


class OptimizerSpec(BaseModel):
    model_config = _Strict
    kind: str = "grid"  # a key of infersim.search.optimizers.OPTIMIZERS
    batch_size: int | None = Field(default=None, ge=1)
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("kind")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer '{v}'; expected one of {', '.join(OPTIMIZERS)}")
        return v


class ConstraintSpec(BaseModel):
    model_config = _Strict
    metric: str
    min: float | None = None
    max: float | None = None


class StudySpec(BaseModel):
    model_config = _Strict
    name: str = Field(min_length=1)
    description: str = ""
    workload: WorkloadSpec | str = "chat"
    evaluator: EvaluatorSpec | str = "static"
    space: dict[str, ScalarValue | list[ScalarValue] | ParamSpec]
    slo: dict[str, float] = Field(default_factory=dict)
    constraints: list[ConstraintSpec | str] = Field(default_factory=list)
    objectives: list[dict[str, str]] = Field(min_length=1)
    optimizer: OptimizerSpec | str = "grid"
    budget: int | None = Field(default=None, ge=1)
    seed: int = 0
    #: the serving runtime modelled (infersim.runtime; unset: the default runtime)
    runtime: str | None = None

    _known_runtime = field_validator("runtime")(classmethod(lambda cls, v: known_runtime(v)))
    #: the efficiency model of catalog devices (infersim.hardware.choices.EFFICIENCY_CHOICES): their
    #: default profiles ("calibrated"), those fitted on one engine's kernels ("vllm", "sglang"), or
    #: the spec sheet alone ("spec"; see infersim.hardware.profile)
    efficiency: str = "calibrated"

    _known_efficiency = field_validator("efficiency")(classmethod(lambda cls, v: known_efficiency(v)))

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", v):
            raise ValueError("use letters, digits, '.', '_' and '-' (it names the study in the database)")
        return v


@dataclass(frozen=True)
class Study:
    """A validated study, ready to run."""

    name: str
    space: Space
    context: EvaluatorContext
    scoring: Scoring
    optimizer: str
    optimizer_options: dict
    batch_size: int
    budget: int | None
    seed: int
    spec: dict = field(repr=False)  # the normalized spec, stored with the results
    origin: str = "<study>"

    @property
    def namespace(self) -> str:
        """What a point's identity depends on besides its configuration: the study and how it is evaluated."""
        return f"{self.name}\n{self.context.to_json()}"

    def with_runtime(self, runtime: str) -> "Study":
        """The same study modelling another serving runtime (a new namespace in the results)."""
        spec = {k: v for k, v in self.spec.items() if k != "device_basis"}  # derived when compiled
        return study_from_dict({**spec, "runtime": runtime}, self.origin)

    def trial_budget(self) -> int:
        if self.budget is not None:
            return self.budget
        return self.space.grid_size()


# ------------------------------------------------------------------------------------------------
def load_study(path: str | Path, efficiency: str | None = None) -> Study:
    """A study file; ``efficiency`` (if given) replaces its ``efficiency:`` field."""
    path = Path(path)
    data = load_yaml(path)
    if efficiency is not None and isinstance(data, dict):
        data = {**data, "efficiency": efficiency}
    return study_from_dict(data, str(path))


def study_from_dict(data: object, origin: str = "<study>") -> Study:
    from ..hardware.catalog import format_validation_error

    if not isinstance(data, dict):
        raise ConfigError(origin, None, "expected a mapping of fields at the top level")
    try:
        spec = StudySpec.model_validate(data)
    except ValidationError as err:
        raise format_validation_error(origin, err) from None
    return _compile(spec, origin)


def _compile(spec: StudySpec, origin: str) -> Study:
    workload = _workload(spec.workload, origin)
    ev = EvaluatorSpec(kind=spec.evaluator) if isinstance(spec.evaluator, str) else spec.evaluator
    context = EvaluatorContext(kind=ev.kind, options=dict(ev.options), workload=workload, slo=dict(spec.slo),
                               target=ev.target, runtime=spec.runtime, efficiency=spec.efficiency)
    cls = evaluator_class(context, origin)
    cls.check(context, origin)
    knobs = cls.knobs(context)
    params = [_param(name, raw, origin) for name, raw in spec.space.items()]
    if not params:
        raise ConfigError(origin, "space", "is empty: give at least one parameter")
    _check_knobs(params, knobs, origin)
    cls.check_params(context, params, origin)
    names = [p.name for p in params]
    for k, p in enumerate(params):
        for key, _ in (p.when.clauses if p.when else ()):
            if key.startswith("model."):
                if "model" not in names[:k] and not (knobs and "model" in names):
                    raise ConfigError(origin, f"space.{p.name}.when", f"'{key}' needs a 'model' parameter before it")
            elif key not in names[:k]:
                raise ConfigError(origin, f"space.{p.name}.when",
                                  f"'{key}' is not a parameter defined before '{p.name}' (nor model.<attribute>)")
    deployment = knobs is not None and "model" in knobs
    if deployment:
        _check_deployment(params, origin)
    space = Space(tuple(params), lookup=_model_lookup if deployment else None)
    scoring = _scoring(spec, cls, context, origin)
    if deployment:
        _check_device_budget(space, scoring, origin)
    opt = _optimizer_spec(spec.optimizer, origin)
    _check_optimizer(opt, scoring, params, spec.budget, origin)
    batch = opt.batch_size or OPTIMIZERS[opt.kind].default_batch(params, cls.chunk_size)
    normalized = json.loads(spec.model_dump_json())
    if deployment:
        normalized["device_basis"] = _device_basis(params, spec.efficiency)
    return Study(name=spec.name, space=space, context=context, scoring=scoring, optimizer=opt.kind,
                 optimizer_options=dict(opt.options), batch_size=batch, budget=spec.budget, seed=spec.seed,
                 spec=normalized, origin=origin)


def _optimizer_spec(raw: OptimizerSpec | str, origin: str) -> OptimizerSpec:
    """The optimizer block; a bare name is checked like the mapping form's ``kind``."""
    if not isinstance(raw, str):
        return raw
    if raw not in OPTIMIZERS:
        raise ConfigError(origin, "optimizer", f"unknown optimizer '{raw}'; expected one of {', '.join(OPTIMIZERS)}")
    return OptimizerSpec(kind=raw)


def _device_basis(params: list[Param], efficiency: str) -> dict[str, str]:
    """What each device of the space's numbers rest on (stored with the study's results)."""
    from ..hardware import get_device

    p = next((p for p in params if p.name == "device"), None)
    values = p.values if isinstance(p, Categorical) else ()
    return {str(v): get_device(str(v), efficiency=efficiency).basis for v in values}


def _workload(raw: WorkloadSpec | str, origin: str) -> dict:
    if isinstance(raw, str):
        raw = WorkloadSpec(preset=raw)
    base: dict = {}
    if raw.preset is not None:
        if raw.preset not in WORKLOAD_PRESETS:
            raise ConfigError(origin, "workload", f"unknown preset '{raw.preset}'; expected one of "
                              + ", ".join(WORKLOAD_PRESETS) + " or a mapping {input_tokens, output_tokens, rate_rps}")
        base = dict(WORKLOAD_PRESETS[raw.preset])
    for key in ("input_tokens", "output_tokens", "rate_rps"):
        value = getattr(raw, key)
        if value is not None:
            base[key] = value
    for key in ("input_tokens", "output_tokens"):
        if key not in base:
            raise ConfigError(origin, f"workload.{key}", "required (or name a preset: " + ", ".join(WORKLOAD_PRESETS) + ")")
    base.setdefault("rate_rps", None)
    return base


def _param(name: str, raw, origin: str) -> Param:
    field_name = f"space.{name}"
    if not isinstance(raw, ParamSpec):
        values = raw if isinstance(raw, list) else [raw]
        raw = ParamSpec(type="categorical", values=values)
    kind = raw.type or ("categorical" if raw.values is not None else None)
    if kind is None:
        if raw.low is None or raw.high is None:
            raise ConfigError(origin, field_name, "give 'values' (a list) or 'low' and 'high' with a 'type'")
        kind = "int" if isinstance(raw.low, int) and isinstance(raw.high, int) else "float"
    when = None
    if raw.when:
        when = Condition(tuple((k, tuple(v) if isinstance(v, list) else (v,)) for k, v in raw.when.items()))
        if raw.default is None:
            raise ConfigError(origin, f"{field_name}.default", "a conditional parameter needs the value it takes when "
                              "inactive (e.g. default: 1)")
    common = dict(when=when, default=raw.default)
    if kind == "categorical":
        if not raw.values:
            raise ConfigError(origin, f"{field_name}.values", "is empty: list at least one value")
        for key in ("low", "high", "step", "grid_points"):
            if getattr(raw, key) is not None:
                raise ConfigError(origin, f"{field_name}.{key}", "only for int/float parameters")
        if len(set(map(repr, raw.values))) != len(raw.values):
            raise ConfigError(origin, f"{field_name}.values", "lists a value twice")
        return Categorical(name, values=tuple(raw.values), **common)
    if raw.values is not None:
        raise ConfigError(origin, f"{field_name}.values", f"not allowed for type '{kind}' (use low/high)")
    if raw.low is None or raw.high is None:
        raise ConfigError(origin, field_name, f"type '{kind}' needs 'low' and 'high'")
    if raw.low > raw.high:
        raise ConfigError(origin, field_name, f"empty range: low {raw.low:g} > high {raw.high:g}")
    if raw.log and raw.low <= 0:
        raise ConfigError(origin, f"{field_name}.low", "a log-scaled range needs low > 0")
    if kind == "int":
        if not (float(raw.low).is_integer() and float(raw.high).is_integer()):
            raise ConfigError(origin, field_name, "an int range needs integer low and high")
        step = raw.step or 1
        if step < 1:
            raise ConfigError(origin, f"{field_name}.step", "must be >= 1")
        if raw.log and step != 1:
            raise ConfigError(origin, f"{field_name}.step", "a log-scaled int range takes no step (grid: doublings)")
        return IntRange(name, low=int(raw.low), high=int(raw.high), step=step, log=raw.log, **common)
    if raw.step is not None:
        raise ConfigError(origin, f"{field_name}.step", "only for int parameters")
    return FloatRange(name, low=float(raw.low), high=float(raw.high), log=raw.log,
                      grid_points=raw.grid_points or 5, **common)


def _check_knobs(params: list[Param], knobs: dict | None, origin: str) -> None:
    if knobs is None:
        return
    for p in params:
        if p.name not in knobs:
            raise ConfigError(origin, f"space.{p.name}", "unknown parameter for this evaluator; expected one of "
                              + ", ".join(sorted(knobs)))
    names = {p.name for p in params}
    for knob, default in knobs.items():
        if default is None and knob not in names and knob not in ("input_tokens", "output_tokens"):
            raise ConfigError(origin, f"space.{knob}", "required: give a value or a list of choices")


def _values(p: Param) -> list[Value]:
    values = p.grid()
    if p.when is not None and p.default is not None:
        values = [*values, p.default]
    return values


def _check_deployment(params: list[Param], origin: str) -> None:
    """Names, dtypes and divisibility checked for every categorical value, before any evaluation."""
    from ..hardware import get_device
    from ..models import get_model
    from ..perf.parallel import Parallelism

    by_name = {p.name: p for p in params}
    for name, getter in (("model", get_model), ("device", get_device)):
        p = by_name.get(name)
        if p is None:
            continue
        if not isinstance(p, Categorical):
            raise ConfigError(origin, f"space.{name}", "must be a value or a list of names")
        for v in p.values:
            try:
                getter(str(v))
            except InfersimError as exc:
                raise ConfigError(origin, f"space.{name}", str(exc)) from None
    for name in ("weight_dtype", "activation_dtype", "kv_dtype"):
        p = by_name.get(name)
        if p is None:
            continue
        for v in _values(p):
            if v not in DTYPE_BYTES:
                raise ConfigError(origin, f"space.{name}", f"unknown dtype '{v}'; expected one of {', '.join(DTYPE_BYTES)}")
    for name in ("tp", "pp", "ep", "replicas", "max_batch", "max_prefill_tokens", "input_tokens", "output_tokens"):
        p = by_name.get(name)
        if p is None:
            continue
        if isinstance(p, FloatRange):
            raise ConfigError(origin, f"space.{name}", "must be an integer parameter")
        for v in _values(p):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(origin, f"space.{name}", f"expected integers >= 1, got {v!r}")
    p = by_name.get("memory_utilization")
    if p is not None:
        for v in _values(p):
            if not isinstance(v, (int, float)) or not 0 < v <= 1:
                raise ConfigError(origin, "space.memory_utilization", f"expected values in (0, 1], got {v!r}")
    # is any (model, tp, pp, ep) valid? (the cheapest structural screen; each point is screened again later)
    models = by_name["model"].grid()
    layouts = [_values(by_name[k]) if k in by_name else [1] for k in ("tp", "pp", "ep")]
    problems = []
    for m, tp, pp, ep in itertools.product(models, *layouts):
        try:
            Parallelism(tp=int(tp), pp=int(pp), ep=int(ep)).validate(get_model(str(m)))
            return
        except InfersimError as exc:
            problems.append(str(exc))
    raise ConfigError(origin, "space", "no combination of model / tp / pp / ep is valid, e.g. " + problems[0])


def _model_lookup(key: str, config: Config) -> Value:
    from ..models import get_model

    attr = key.split(".", 1)[1]
    value = getattr(get_model(str(config["model"])), attr, None)
    if value is None:
        raise InfersimError(f"condition '{key}': models have no attribute '{attr}'")
    return value


def _parse_constraint(raw: ConstraintSpec | str, k: int, origin: str) -> Constraint:
    field_name = f"constraints.{k}"
    if isinstance(raw, str):
        m = re.fullmatch(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=)\s*([-+0-9.eE]+)\s*", raw)
        if not m:
            raise ConfigError(origin, field_name, f"expected 'metric <= number' or 'metric >= number', got '{raw}'")
        try:
            bound = float(m.group(3))
        except ValueError:
            raise ConfigError(origin, field_name, f"'{m.group(3)}' is not a number") from None
        return Constraint(m.group(1), high=bound) if m.group(2) == "<=" else Constraint(m.group(1), low=bound)
    if raw.min is None and raw.max is None:
        raise ConfigError(origin, field_name, "give 'min', 'max' or both")
    return Constraint(raw.metric, low=raw.min, high=raw.max)


def _scoring(spec: StudySpec, cls, context: EvaluatorContext, origin: str) -> Scoring:
    known = cls.metric_names(context)

    def check_metric(metric: str, where: str) -> None:
        if known is not None and metric not in known:
            hint = cls.unknown_metric_hint(context, metric)
            raise ConfigError(origin, where, f"unknown metric '{metric}'{hint}; this evaluator reports: "
                              + ", ".join(known))

    objectives = []
    for k, raw in enumerate(spec.objectives):
        where = f"objectives.{k}"
        if set(raw) == {"metric", "direction"}:
            metric, direction = raw["metric"], raw["direction"]
        elif len(raw) == 1 and next(iter(raw)) in ("min", "max"):
            direction, metric = next(iter(raw.items()))
        else:
            raise ConfigError(origin, where, "expected {min: METRIC}, {max: METRIC} or {metric: M, direction: min|max}")
        if direction not in ("min", "max"):
            raise ConfigError(origin, f"{where}.direction", f"expected 'min' or 'max', got '{direction}'")
        check_metric(metric, where)
        objectives.append(Objective(metric, direction))
    if len({o.metric for o in objectives}) != len(objectives):
        raise ConfigError(origin, "objectives", "names the same metric twice")
    constraints = []
    for metric, bound in spec.slo.items():
        check_metric(metric, f"slo.{metric}")
        constraints.append(Constraint(metric, high=float(bound)))
    for k, raw in enumerate(spec.constraints):
        c = _parse_constraint(raw, k, origin)
        check_metric(c.metric, f"constraints.{k}")
        constraints.append(c)
    # contradictions: per metric, the intersection of all bounds must be non-empty
    bounds: dict[str, list[float]] = {}
    for c in constraints:
        lo, hi = bounds.setdefault(c.metric, [-math.inf, math.inf])
        bounds[c.metric] = [max(lo, c.low if c.low is not None else -math.inf),
                            min(hi, c.high if c.high is not None else math.inf)]
    for metric, (lo, hi) in bounds.items():
        if lo > hi:
            raise ConfigError(origin, "constraints", f"contradictory: no value of '{metric}' is both >= {lo:g} and "
                              f"<= {hi:g}")
        if hi < 0 and metric.endswith(NONNEGATIVE_SUFFIXES):
            raise ConfigError(origin, "constraints", f"contradictory: '{metric}' is never negative but must be <= {hi:g}")
    return Scoring(tuple(objectives), tuple(constraints))


def _check_device_budget(space: Space, scoring: Scoring, origin: str) -> None:
    """A device budget below the smallest deployment in the space can never be met."""
    limit = min((c.high for c in scoring.constraints if c.metric == "devices" and c.high is not None), default=None)
    if limit is None:
        return
    by_name = {p.name: p for p in space.params}

    def smallest(name: str) -> int:
        p = by_name.get(name)
        return int(min(_values(p))) if p is not None else 1

    least = smallest("tp") * smallest("pp") * smallest("replicas")
    if least > limit:
        raise ConfigError(origin, "constraints", f"contradictory: 'devices <= {limit:g}' but the smallest deployment "
                          f"in the space uses {least} devices (tp x pp x replicas)")


def _check_optimizer(opt: OptimizerSpec, scoring: Scoring, params: list[Param], budget: int | None,
                     origin: str) -> None:
    cls = OPTIMIZERS[opt.kind]
    why = cls.check(len(scoring.objectives), params)
    if why:
        raise ConfigError(origin, "optimizer", why)
    if cls.needs_budget and budget is None:
        raise ConfigError(origin, "budget", f"required for optimizer '{opt.kind}' (the number of trials)")
    for key in opt.options:
        if key not in cls.options_allowed:
            raise ConfigError(origin, f"optimizer.options.{key}", f"unknown option for '{opt.kind}'; expected one of "
                              + (", ".join(sorted(cls.options_allowed)) or "(none)"))
