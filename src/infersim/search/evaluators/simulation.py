"""The serving-simulation evaluator (``evaluator: simulation``): each point is a discrete-event run.

Every configuration that passes a cheap static screen becomes a serving
:class:`~infersim.serving.Scenario`, is simulated with
:func:`infersim.serving.simulate`, summarized with :func:`infersim.serving.summarize`,
and the summary is mapped onto the search's metric names.

Configuration -> scenario
-------------------------
* ``model``, ``device`` -> ``model``, ``hardware``; ``tp``, ``pp``, ``ep``, ``replicas`` ->
  ``parallelism``; ``weight_dtype``, ``activation_dtype``, ``kv_dtype`` -> ``precision``.
* ``max_batch`` -> ``scheduler.max_num_seqs``; ``max_prefill_tokens`` (the chunked-prefill budget)
  -> ``scheduler.max_num_batched_tokens``; ``memory_utilization`` -> ``scheduler.memory_utilization``.
* Two knobs of this evaluator only: ``scheduler`` (``chunked``, the default, ``continuous`` or
  ``static``: the serving scheduler policy) and ``router`` (``round_robin``, the default,
  ``least_outstanding``, ``least_kv``).
* Workload: ``requests`` requests (option, default 500) arriving at the study's ``rate_rps``
  (or all at t = 0 with ``arrival: offline``: offline throughput)
  (required) by a Poisson process (option ``arrival``: ``poisson``, ``constant``, or ``gamma``
  with ``arrival_cv``); prompt and output lengths are the point's ``input_tokens`` /
  ``output_tokens`` (default: the study's workload), fixed, or with ``length_sigma > 0``
  lognormal with that median and sigma, clipped to [1, 8 x median] (the built-in serving
  scenario clips prompts at about 8 x their median). Every point uses the same ``seed``
  (option, default 0): common random numbers, so points differ only by their configuration.
* SLOs: every study SLO named ``<ttft|tpot|itl|e2e|queue>_p<percentile>_s`` becomes a serving
  SLO at that percentile (``ttft_p99_s: 1.0`` -> ``{metric: ttft, percentile: 99, max_ms: 1000}``);
  other SLO metrics are checked on the mapped metrics only.

Static screen
-------------
Before any simulation the static model rejects points whose layout does not divide the model
or whose deployment cannot hold *one* request of the workload beside the weights and the
activations (``max_batch`` is set to 1 for the screen): the simulator pages the KV cache,
admitting requests while blocks are free and preempting when they run out, so ``max_batch``
is a cap, not a reservation, and a full batch need not fit (the static evaluator, which
reserves it, rejects such points). With option ``screen_slo_factor: F`` (>= 1; off by
default) a point is also rejected when that batch-of-one static estimate misses an SLO by
more than F times: a batch of one without queueing is the fastest the deployment can be,
so such a point cannot meet the SLO simulated either (up to the differences between the
static and the step-time model). The simulator's own checks (KV cache too small for the
longest request, a prompt above a non-chunked scheduler's token cap) also reject the point;
any other exception during the simulation records it as failed, with the reason.

Metrics (all from the simulation's :class:`~infersim.serving.Summary`)
--------------------------------------------------------------------
* ``<ttft|tpot|itl|e2e|queue>_s`` (mean) and ``..._p50_s``, ``..._p90_s``, ``..._p99_s``; and any
  other percentile a study SLO names (``ttft_p95_s``). Definitions as in
  :mod:`infersim.serving.metrics` (TTFT includes queueing; percentiles of requests interpolate
  linearly, where the static evaluator ranks the requests of one batch).
* ``requests_per_s`` and ``served_output_tokens_per_s``: completed requests and their output
  tokens per second of makespan (first arrival to last completion).
* ``goodput_requests_per_s``: requests per second meeting every per-request SLO (TTFT, TPOT,
  E2E, queueing; the serving ``goodput_rps``), all requests when the study has none; 0 when a
  study SLO that is not checked per request (an ITL percentile, a mean) is missed.
  ``goodput_tokens_per_s_per_device`` = that x the mean output tokens of a completed request
  / devices: the static evaluator's definition (served output tokens/s per device when the
  SLOs are met, else 0) taken request by request. ``slo_attainment``: the fraction of requests
  meeting the per-request SLOs; ``slo_met``: 1 when every study SLO holds, else 0.
* ``devices``, ``usd_per_hour`` (devices x the device's $/h) and ``usd_per_million_output_tokens``
  = ``usd_per_hour`` / (``served_output_tokens_per_s`` x 3600) x 1e6.
* ``busy_fraction``, ``mfu_mean``, ``mbu_mean``, ``kv_utilization_mean``, ``kv_utilization_peak``,
  ``preemptions``, ``makespan_s``: the summary's own.
* With option ``capacity_search: true`` (needs a percentile SLO; runs
  :func:`infersim.serving.find_capacity` from the study's rate, ~10 simulations per point):
  ``slo_capacity_requests_per_s`` (highest rate meeting the SLOs; 0 when none tried did) and
  ``utilization`` = ``rate_rps`` / that capacity, the simulated counterpart of the static
  evaluator's rate / capacity (<= 1: the load can be served within the SLOs).

Not reported: ``joules_per_output_token`` and power (the serving summary has no energy model;
use the static evaluator for them). A simulated run is deterministic (seeded), so results do not
depend on the backend or the number of workers.
"""

from __future__ import annotations

import re

from ...errors import ConfigError, InfersimError
from ...serving import find_capacity, simulate, summarize, validate_scenario
from ..space import Categorical, Config
from .base import EvaluatorContext, PerPointEvaluator, PointRejected, check_option_keys
from ..transform_knobs import transforms_from_config
from .static import DEPLOYMENT_KNOBS, resolve_knobs

#: knobs of this evaluator besides the deployment knobs, with their defaults
SIMULATION_KNOBS: dict[str, object] = {"scheduler": "chunked", "router": "round_robin"}
#: options and their defaults (None: unset)
OPTIONS: dict[str, object] = {"requests": 500, "seed": 0, "arrival": "poisson", "arrival_cv": None,
                              "length_sigma": 0.0, "capacity_search": False, "screen_slo_factor": None,
                              "attention": "fused"}
#: which study field a problem the serving package finds in a built scenario comes from
_STUDY_FIELD = (("workload.arrival.cv", "evaluator.options.arrival_cv"),
                ("workload.arrival", "evaluator.options.arrival"), ("workload.requests", "evaluator.options.requests"),
                ("workload.input_tokens", "evaluator.options.length_sigma"),
                ("workload.output_tokens", "evaluator.options.length_sigma"), ("seed", "evaluator.options.seed"),
                ("scheduler.attention", "evaluator.options.attention"), ("slo", "slo"))
#: the summary's latency distributions (``Summary.<name>_s``), reported as ``<name>_s``, ``<name>_p<q>_s``
LATENCIES = ("ttft", "tpot", "itl", "e2e", "queue")
#: latencies the serving simulator checks request by request (ITL only as a percentile)
PER_REQUEST = ("ttft", "tpot", "e2e", "queue")
PERCENTILE_SLO = re.compile(r"(ttft|tpot|itl|e2e|queue)_p(\d+(?:\.\d+)?)_s")
SUMMARY_FIELDS = ("busy_fraction", "mfu_mean", "mbu_mean", "kv_utilization_mean", "kv_utilization_peak",
                  "preemptions", "makespan_s")
BASE_METRICS = (
    "devices",
    *(f"{lat}{suffix}_s" for lat in LATENCIES for suffix in ("", "_p50", "_p90", "_p99")),
    "requests_per_s", "served_output_tokens_per_s", "goodput_requests_per_s", "goodput_tokens_per_s_per_device",
    "slo_attainment", "slo_met", "usd_per_hour", "usd_per_million_output_tokens", *SUMMARY_FIELDS,
    "accuracy_delta",
)
CAPACITY_METRICS = ("slo_capacity_requests_per_s", "utilization")
#: lognormal lengths are clipped to [1, LENGTH_CLIP x median]
LENGTH_CLIP = 8


def percentile_slo(metric: str) -> tuple[str, float] | None:
    """``("ttft", 99.0)`` for ``ttft_p99_s``; None for a metric that is not a latency percentile."""
    m = PERCENTILE_SLO.fullmatch(metric)
    if m is None:
        return None
    q = float(m.group(2))
    return (m.group(1), q) if 0 < q <= 100 else None


def serving_slos(slo: dict) -> list[dict]:
    """The study's latency-percentile SLOs as serving SLOs (``max_ms``)."""
    out = []
    for metric, bound in slo.items():
        parsed = percentile_slo(metric)
        if parsed is not None:
            out.append({"metric": parsed[0], "percentile": parsed[1], "max_ms": float(bound) * 1e3})
    return out


def _lengths(median: int, sigma: float) -> dict:
    if not sigma:
        return {"dist": "fixed", "value": int(median)}
    return {"dist": "lognormal", "median": int(median), "sigma": sigma, "min": 1, "max": LENGTH_CLIP * int(median)}


def scenario_data(context: EvaluatorContext, config: Config) -> dict:
    """The serving scenario (as a mapping) that simulates ``config`` under the study's workload and SLOs."""
    opts = {**OPTIONS, **context.options}
    k = {**SIMULATION_KNOBS, **resolve_knobs(config, context.workload)}
    if opts["arrival"] == "offline":  # every request at t = 0: offline throughput
        arrival = {"process": "offline"}
    else:
        arrival = {"process": opts["arrival"], "rate": context.workload.get("rate_rps")}
    if opts["arrival_cv"] is not None:
        arrival["cv"] = opts["arrival_cv"]
    data = {
        "name": "search-point",
        "seed": opts["seed"],
        "efficiency": context.efficiency,
        "model": k["model"],
        "hardware": k["device"],
        "parallelism": {"tp": k["tp"], "pp": k["pp"], "ep": k["ep"], "replicas": k["replicas"]},
        "precision": {"weight": k["weight_dtype"], "activation": k["activation_dtype"], "kv_cache": k["kv_dtype"]},
        "scheduler": {"policy": k["scheduler"], "max_num_seqs": k["max_batch"],
                      "max_num_batched_tokens": k["max_prefill_tokens"],
                      "memory_utilization": k["memory_utilization"], "attention": opts["attention"]},
        "router": {"policy": k["router"]},
        "workload": {"requests": opts["requests"], "arrival": arrival,
                     "input_tokens": _lengths(k["input_tokens"], opts["length_sigma"]),
                     "output_tokens": _lengths(k["output_tokens"], opts["length_sigma"])},
        "slo": serving_slos(context.slo),
        "transforms": [t.spec() for t in transforms_from_config(k)],
    }
    if context.runtime is not None:
        data["runtime"] = context.runtime
    return data


def summary_metrics(summary, *, devices: float, usd_per_hour: float | None, slo: dict,
                    per_request_slos: bool) -> dict[str, float]:
    """The search metrics of one simulated summary (see the module docstring)."""
    m: dict[str, float] = {"devices": float(devices)}
    for lat in LATENCIES:
        dist = getattr(summary, f"{lat}_s")
        m[f"{lat}_s"] = dist["mean"]
        for q in ("p50", "p90", "p99"):
            m[f"{lat}_{q}_s"] = dist[q]
    values = {(r.metric, r.percentile): r.value_s for r in summary.slo}
    for metric in slo:  # percentiles the SLOs name (p95, ...), as the simulator computed them
        parsed = percentile_slo(metric)
        if parsed is not None and parsed in values:
            m.setdefault(metric, values[parsed])
    served = summary.output_tokens_per_s
    m["requests_per_s"] = summary.throughput_rps
    m["served_output_tokens_per_s"] = served
    if per_request_slos:
        m["slo_attainment"] = summary.slo_attainment
    if usd_per_hour is not None:
        m["usd_per_hour"] = usd_per_hour
        m["usd_per_million_output_tokens"] = usd_per_hour / (served * 3600.0) * 1e6
    for name in SUMMARY_FIELDS:
        m[name] = float(getattr(summary, name))
    met = {metric: metric in m and m[metric] <= bound for metric, bound in slo.items()}
    m["slo_met"] = float(all(met.values()))
    gated = all(ok for metric, ok in met.items()
                if percentile_slo(metric) is None or percentile_slo(metric)[0] not in PER_REQUEST)
    good_rps = (summary.goodput_rps if per_request_slos else summary.throughput_rps) if gated else 0.0
    m["goodput_requests_per_s"] = good_rps
    m["goodput_tokens_per_s_per_device"] = good_rps * (served / summary.throughput_rps) / devices
    return m


class SimulationEvaluator(PerPointEvaluator):
    kind = "simulation"
    chunk_size = 1

    @classmethod
    def knobs(cls, context):
        return {**DEPLOYMENT_KNOBS, **SIMULATION_KNOBS}

    @classmethod
    def metric_names(cls, context):
        names = list(BASE_METRICS)
        names += [m for m in context.slo if percentile_slo(m) is not None and m not in names]
        if context.options.get("capacity_search"):
            names += CAPACITY_METRICS
        return names

    @classmethod
    def unknown_metric_hint(cls, context, metric):
        if metric in CAPACITY_METRICS:
            return f" ('{metric}' needs evaluator.options.capacity_search: true)"
        if metric.startswith(("joules", "power_w")):
            return " (the serving simulation has no energy model; the static evaluator reports it)"
        return ""

    @classmethod
    def check(cls, context, origin) -> None:
        opts = context.options
        check_option_keys(context, OPTIONS, origin)
        offline = opts.get("arrival") == "offline"
        if context.workload.get("rate_rps") is None and not offline:
            raise ConfigError(origin, "workload.rate_rps", "the simulation evaluator needs an arrival rate "
                              "(requests/s): give workload.rate_rps or a preset (or arrival: offline)")
        if offline and opts.get("capacity_search", False):
            raise ConfigError(origin, "evaluator.options.capacity_search",
                              "a capacity search varies the arrival rate; arrival: offline has none")
        if ("arrival_cv" in opts) != (opts.get("arrival") == "gamma"):
            raise ConfigError(origin, "evaluator.options.arrival_cv",
                              "give it with arrival: gamma (the coefficient of variation of the gaps), and only then")
        capacity = opts.get("capacity_search", False)
        if not isinstance(capacity, bool):
            raise ConfigError(origin, "evaluator.options.capacity_search", f"expected true or false, got {capacity!r}")
        if capacity and not serving_slos(context.slo):
            raise ConfigError(origin, "evaluator.options.capacity_search", "needs a latency-percentile SLO "
                              "(e.g. slo: {ttft_p99_s: 1.0}) to define the capacity")
        factor = opts.get("screen_slo_factor")
        if factor is not None and (isinstance(factor, bool) or not isinstance(factor, (int, float)) or factor < 1):
            raise ConfigError(origin, "evaluator.options.screen_slo_factor",
                              f"expected a number >= 1 (the screen's static estimate is a lower bound), got {factor!r}")
        _probe(context, {}, origin, None)

    @classmethod
    def check_params(cls, context, params, origin) -> None:
        for p in params:
            if p.name not in SIMULATION_KNOBS:
                continue
            if not isinstance(p, Categorical):
                raise ConfigError(origin, f"space.{p.name}", "must be a value or a list of names")
            values = list(p.values) + ([p.default] if p.when is not None and p.default is not None else [])
            for value in values:
                _probe(context, {p.name: value}, origin, f"space.{p.name}")

    # ----------------------------------------------------------------------------------------
    def screen_config(self, config: Config) -> Config:
        return {**config, "max_batch": 1}  # paged KV: one request must fit, not a full batch

    def scenario(self, config: Config):
        """The validated serving scenario of ``config``."""
        return validate_scenario(scenario_data(self.context, config), "<search point>")

    def evaluate_one(self, config: Config, static_metrics: dict) -> dict:
        rate = self.context.workload.get("rate_rps")
        capacity_search = self.context.options.get("capacity_search", False)
        try:
            scenario = self.scenario(config)
            if capacity_search:
                found = find_capacity(scenario, start_rate=rate)
                summary = next(p.summary for p in found.points if p.rate == rate)
            else:
                summary = summarize(simulate(scenario))
        except InfersimError as exc:  # the simulator's own checks: the point cannot run
            raise PointRejected(str(exc)) from None
        m = summary_metrics(summary, devices=static_metrics["devices"],
                            usd_per_hour=static_metrics.get("usd_per_hour"), slo=self.context.slo,
                            per_request_slos=any(s["metric"] in PER_REQUEST for s in serving_slos(self.context.slo)))
        m["accuracy_delta"] = static_metrics.get("accuracy_delta", float("nan"))
        if capacity_search:
            capacity = found.capacity_rps or 0.0
            m["slo_capacity_requests_per_s"] = capacity
            if capacity > 0:
                m["utilization"] = rate / capacity
        return m


def _probe(context: EvaluatorContext, config: Config, origin: object, field: str | None) -> None:
    """Validate the scenario options (and a knob value) build, naming the option or parameter at fault."""
    probe = {"model": "(any)", "device": "(any)", **config}
    try:
        validate_scenario(scenario_data(context, probe), origin)
    except ConfigError as exc:
        where = field
        if where is None:
            where = next((study_field for prefix, study_field in _STUDY_FIELD
                          if (exc.field or "").startswith(prefix)), "evaluator.options")
        raise ConfigError(origin, where, f"{exc.problem} (serving scenario field '{exc.field}')") from None
