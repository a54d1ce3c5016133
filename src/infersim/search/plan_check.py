"""The second stage of ``infersim plan``: the discrete-event simulator on the static front's top-k.

Each point becomes a serving scenario (aggregated: ``scheduler: chunked`` replicas behind a
round-robin router) or a pipeline scenario (disaggregated: a ``continuous`` prefill pool and a
``continuous`` decode pool with the KV transfer over the chosen link; afd: the decode pool as
attention-FFN instances), with Poisson arrivals of fixed-length requests and the plan's SLOs at
their percentile. The capacity search (:func:`~infersim.serving.sweep.bracket_and_bisect`,
common random numbers across rates) starts from the static SLO capacity, so a static estimate
that is right needs about four runs. The check reports the simulated SLO capacity, the tail
percentiles at that rate, and the disagreement with the static pass.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

from ..errors import InfersimError
from ..serving.sweep import bracket_and_bisect, capacity_of, with_rate

#: a simulation spans this many request lifetimes (static TTFT + OSL x TPOT) at the static SLO
#: capacity, so that most requests see the stationary batch rather than the start from empty
LIFETIMES = 3.0
MIN_REQUESTS, MAX_REQUESTS = 300, 2500
TOLERANCE = 0.05
MAX_RUNS = 8


@dataclass
class Check:
    static_capacity_rps: float
    capacity_rps: float | None  # simulated SLO capacity (None: no rate tried met the SLOs)
    goodput_tokens_per_s_per_device: float
    ttft_p50_s: float
    ttft_p90_s: float
    ttft_p99_s: float
    tpot_p50_s: float
    tpot_p90_s: float
    tpot_p99_s: float
    runs: int
    wall_s: float
    error: str | None = None

    @property
    def disagreement(self) -> float:
        """Relative difference of the static SLO capacity from the simulated one (+: static higher)."""
        if not self.capacity_rps:
            return math.inf
        return self.static_capacity_rps / self.capacity_rps - 1.0

    def to_dict(self) -> dict:
        return {**asdict(self), "disagreement": self.disagreement}


def _slo(q) -> list[dict]:
    return [{"metric": "ttft", "percentile": q.percentile, "max_ms": q.ttft_s * 1e3},
            {"metric": "tpot", "percentile": q.percentile, "max_ms": q.tpot_s * 1e3}]


def _workload(q, requests: int, rate: float) -> dict:
    return {"requests": requests, "arrival": {"process": "poisson", "rate": rate},
            "input_tokens": {"dist": "fixed", "value": q.input_tokens},
            "output_tokens": {"dist": "fixed", "value": q.output_tokens}}


def _precision(c: dict) -> dict:
    return {"weight": c["weight_dtype"], "activation": c["activation_dtype"], "kv_cache": c["kv_dtype"]}


def _runtime(q) -> dict:
    return {"runtime": q.runtime} if getattr(q, "runtime", None) else {}


def _routing(q) -> dict:
    return {"moe_routing": q.moe_routing} if getattr(q, "moe_routing", None) else {}


def aggregated_scenario(q, c: dict, rate: float, requests: int) -> dict:
    return {"name": "plan-check", "seed": 0, **_runtime(q), "model": c["model"], "hardware": c["device"],
            "parallelism": {"tp": c["tp"], "pp": c.get("pp", 1), "ep": c.get("ep", 1), "replicas": c["replicas"],
                            "dp_attention": bool(c.get("dp_attention", False)), **_routing(q)},
            "precision": _precision(c),
            "scheduler": {"policy": "chunked", "max_num_seqs": c["max_batch"],
                          "max_num_batched_tokens": c["max_prefill_tokens"]},
            "workload": _workload(q, requests, rate), "slo": _slo(q)}


def pipeline_scenario(q, c: dict, rate: float, requests: int) -> dict:
    prec = _precision(c)
    prefill = {"kind": "llm", "model": c["model"], "hardware": c["device"],
               "parallelism": {"tp": c["prefill_tp"], "ep": c.get("prefill_ep", 1), "replicas": c["prefill_workers"],
                               "dp_attention": bool(c.get("prefill_dp_attention", False)), **_routing(q)},
               "precision": prec,
               "scheduler": {"policy": "continuous", "max_num_batched_tokens": c["prefill_max_tokens"],
                             "max_num_seqs": 64}}
    if c["mode"] == "afd":
        decode = {"kind": "afd", "model": c["model"], "hardware": c["device"], "replicas": c["decode_workers"],
                  "attention": {"gpus": c["afd_attention_gpus"], "tp": c["tp"]}, "ffn": {"gpus": c["afd_ffn_gpus"]},
                  "micro_batches": c["afd_micro_batches"], "precision": prec,
                  "scheduler": {"policy": "continuous", "max_num_seqs": c["max_batch"], "preemption": "swap"}}
    else:
        decode = {"kind": "llm", "model": c["model"], "hardware": c["device"],
                  "parallelism": {"tp": c["tp"], "ep": c.get("ep", 1), "replicas": c["decode_workers"],
                                  "dp_attention": bool(c.get("dp_attention", False)), **_routing(q)},
                  "precision": prec, "scheduler": {"policy": "continuous", "max_num_seqs": c["max_batch"]}}
    return {"name": "plan-check", "seed": 0, **_runtime(q), "engines": {"prefill": prefill, "decode": decode},
            "graph": [{"name": "prefill", "kind": "llm_prefill", "engine": "prefill"},
                      {"name": "decode", "kind": "llm_decode", "engine": "decode",
                       "transfer": {"link": c.get("kv_link", "scale_out")}}],
            "workload": _workload(q, requests, rate), "slo": _slo(q)}


def check_point(q, c: dict, static_metrics: dict) -> Check:
    """Simulated SLO capacity of one plan point and its latencies there."""
    from ..serving import simulate, summarize, validate_scenario
    from ..serving.engine import prepare

    start = time.perf_counter()
    static_cap = float(static_metrics.get("slo_capacity_requests_per_s", 0.0))
    rate0 = static_cap if static_cap > 0 else 1.0
    lifetime = float(static_metrics.get("ttft_s", 0.0)) + q.output_tokens * float(static_metrics.get("tpot_s", 0.0))
    requests = int(min(MAX_REQUESTS, max(MIN_REQUESTS, LIFETIMES * lifetime * rate0)))
    runs: dict[float, object] = {}
    try:
        if c.get("mode", "aggregated") == "aggregated":
            sc = validate_scenario(aggregated_scenario(q, c, rate0, requests), "<plan point>")
            dep = prepare(sc, max_context_tokens=q.input_tokens + q.output_tokens + 1)

            def run(rate: float):
                runs[rate] = summarize(simulate(with_rate(sc, rate), deployment=dep))
                return runs[rate].slo_met
        else:
            from ..serving.pipeline import prepare_pipeline, simulate_pipeline, summarize_pipeline
            from ..serving.pipeline.spec import validate_pipeline

            sc = validate_pipeline(pipeline_scenario(q, c, rate0, requests), "<plan point>")
            dep = prepare_pipeline(sc, max_context_tokens=q.input_tokens + q.output_tokens + 1)

            def run(rate: float):
                runs[rate] = summarize_pipeline(simulate_pipeline(with_rate(sc, rate), deployment=dep))
                return runs[rate].slo_met

        tried = bracket_and_bisect(run, rate0, TOLERANCE, MAX_RUNS, first_factor=1.0 + TOLERANCE)
    except InfersimError as exc:
        nan = math.nan
        return Check(static_cap, None, 0.0, nan, nan, nan, nan, nan, nan, len(runs), time.perf_counter() - start,
                     str(exc))
    cap = capacity_of(tried)
    at = runs[cap if cap is not None else min(r for r, _ in tried)]
    devices = float(static_metrics.get("devices", math.nan))
    return Check(static_cap, cap, (cap or 0.0) * q.output_tokens / devices,
                 at.ttft_s["p50"], at.ttft_s["p90"], at.ttft_s["p99"], at.tpot_s["p50"], at.tpot_s["p90"],
                 at.tpot_s["p99"], len(tried), time.perf_counter() - start)


def check_top(result, db: str | None = None) -> None:
    """Fill ``result.checks`` (one per top point) and store them as study ``<name>-simulated``."""
    start = time.perf_counter()
    result.checks = [check_point(result.question, p.config, p.metrics) for p in result.top]
    result.simulated_wall_s = time.perf_counter() - start
    if db is not None and result.top:
        result.stored.append(_store(result, db))


def _store(result, db: str) -> str:
    import numpy as np

    from .backends import Job, batch_for
    from .evaluators.base import Columns, EvaluatorContext
    from .scoring import OK, Constraint, Objective, Scoring
    from .space import canonical_json, point_key
    from .store import open_store

    q = result.question
    name = f"{q.name}-simulated"
    context = EvaluatorContext(kind="simulation", options={"capacity_search": True, "plan_check": True},
                               workload={"input_tokens": q.input_tokens, "output_tokens": q.output_tokens,
                                         "rate_rps": None}, slo=q.slo)
    scoring = Scoring((Objective("goodput_tokens_per_s_per_device", "max"),), (Constraint("slo_met", low=1.0),))
    names = ("slo_capacity_requests_per_s", "static_slo_capacity_requests_per_s", "goodput_tokens_per_s_per_device",
             "ttft_p50_s", "ttft_p90_s", "ttft_p99_s", "tpot_p50_s", "tpot_p90_s", "tpot_p99_s", "slo_met",
             "disagreement", "runs", "wall_s")
    metrics = {k: np.full(len(result.top), np.nan) for k in names}
    status, errors = [], []
    for i, ch in enumerate(result.checks):
        values = {**ch.to_dict(), "slo_capacity_requests_per_s": ch.capacity_rps or 0.0,
                  "static_slo_capacity_requests_per_s": ch.static_capacity_rps, "slo_met": float(bool(ch.capacity_rps))}
        for k in names:
            v = values.get(k)
            if isinstance(v, (int, float)) and math.isfinite(v):
                metrics[k][i] = v
        status.append(OK if ch.error is None else "rejected")
        errors.append(ch.error)
    namespace = f"{name}\n{context.to_json()}"
    items = []
    for n, p in enumerate(result.top):
        js = canonical_json(p.config)
        items.append((n, point_key(namespace, js), js, p.config))
    batch = batch_for(Job(context, scoring, tuple(items)), Columns(status, errors, metrics), result.simulated_wall_s)
    with open_store(db, write=True) as store:
        store.register_study(name, {"plan": {**q.__dict__, "slo": q.slo}, "evaluator": "simulation"},
                             scoring.to_dict(), namespace)
        store.insert(name, batch)
    return name
