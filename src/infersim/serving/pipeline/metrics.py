"""Pipeline metrics: end-to-end latency and SLOs, per-stage times, per-engine load, cost and energy.

Request metrics use the single-engine definitions (:mod:`infersim.serving.metrics`) on the
pipeline's end points (see :mod:`.simulator`): TTFT = first token of the final generation stage -
arrival; TPOT = (completion - first token) / (output tokens - 1); E2E = completion - arrival;
queueing = service start at the first stage - arrival (LLM first stages only). ITL percentiles come
from the engines of the final generation stage. Throughput and goodput are over the makespan
(first arrival to last completion); output tokens count every branch.

Every LLM engine also gets the single-engine :class:`~infersim.serving.metrics.Summary` of the
requests it served (its busy fraction, MFU, KV use, preemptions).

**Cost** = sum over engines of devices x $/hour x makespan; **$ per million output tokens** =
cost / output tokens x 1e6. **Energy**: each device draws ``idle + (TDP - idle) x u`` with ``u``
its engine's busy fraction over the makespan (the linear power model of Fan, Weber & Barroso,
"Power provisioning for a warehouse-sized computer", ISCA 2007, as in :mod:`infersim.perf.estimate`,
with the engine's busy fraction as its utilization: a running step counts as fully busy); **J per
output token** = energy / output tokens. Both sides of an AFD instance count as busy while it runs
a step. KV stores have no devices here (their storage is not costed).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from ..engine import SimulationResult
from ..metrics import (PERCENTILES, Summary, WeightedSample, _apply_slos, _pcts, request_figures, request_metrics,
                       step_totals, summary_from)
from .deploy import LLMEngine
from .simulator import PipelineResult
from .spec import GENERATION_KINDS

_NAN = float("nan")


@dataclass
class StageSummary:
    name: str
    kind: str
    engines: str
    time_s: dict  # time in the stage (start to end), percentiles
    transfer_s: float = _NAN  # llm_decode: mean KV transfer
    kv_hit_rate: float = _NAN  # kv_retrieval: fraction served by a storage level


@dataclass
class EngineSummary:
    name: str
    kind: str
    hardware: str
    devices: int
    busy_fraction: float
    power_w: float  # all its devices, mean over the makespan
    energy_j: float
    cost_usd: float
    served: int  # requests (LLM) or jobs (servers) completed
    mfu: float = _NAN
    mbu: float = _NAN
    kv_utilization_mean: float = _NAN
    preemptions: int = 0
    hardware_basis: str = "-"  # what each device's efficiency numbers rest on (Device.basis)


@dataclass
class PipelineSummary:
    scenario: str
    requests: int
    completed: int
    makespan_s: float
    offered_rate: float
    throughput_rps: float
    output_tokens_per_s: float
    ttft_s: dict
    tpot_s: dict
    itl_s: dict
    e2e_s: dict
    queue_s: dict
    stages: list[StageSummary]
    engines: list[EngineSummary]
    accelerators: int  # devices that are not CPUs
    cpus: int
    output_tokens_per_s_per_accelerator: float
    usd_per_hour: float
    usd_per_million_output_tokens: float
    joules_per_output_token: float
    slo: list = field(default_factory=list)
    slo_attainment: float = _NAN
    slo_met: bool = True
    goodput_rps: float = _NAN
    wall_s: float = 0.0
    pools: dict = field(default_factory=dict)  # engine name -> single-engine Summary

    def to_dict(self) -> dict:
        """Every simulated figure, without the host's ``wall_s`` (see :meth:`Summary.to_dict`)."""
        out = asdict(self)
        out.pop("wall_s")
        out["pools"] = {k: v.to_dict() for k, v in self.pools.items()}
        return out


def pool_result(result: PipelineResult, name: str) -> SimulationResult:
    """The requests one LLM engine served, as a single-engine :class:`SimulationResult`."""
    pool = result.pools[name]
    log = pool.log
    used = pool.used()

    def col(values, dtype):
        return np.array([values[i] for i in used], dtype=dtype)

    req = {"arrival_s": col(log.arrival_s, np.float64), "input_tokens": col(log.input_tokens, np.int64),
           "output_tokens": col(log.output_tokens, np.int64), "prefix_group": col(log.prefix_group, np.int64),
           "prefix_hit_tokens": col(log.prefix_hit_tokens, np.int64), "replica": col(log.replica, np.int64),
           "first_scheduled_s": col(log.first_scheduled_s, np.float64),
           "first_token_s": col(log.first_token_s, np.float64), "completion_s": col(log.completion_s, np.float64),
           "preemptions": col(log.preemptions, np.int64)}
    dep = pool.engine.deployment
    kv_stats = [{"hit_tokens": e.kv.hit_tokens, "lookup_tokens": e.kv.lookup_tokens} for e in pool.engines]
    return SimulationResult(scenario=dep.scenario, deployment=dep, workload=result.workload, requests=req,
                            engines=[e.steps for e in pool.engines], engine_replica=[e.replica_id for e in pool.engines],
                            kv_blocks=dep.blocks_per_engine, kv_stats=kv_stats)


def _merged_itl(samples: list[WeightedSample]) -> WeightedSample:
    values, weights = [], []
    for s in samples:
        values.append(s.values)
        weights.append(np.diff(np.concatenate([[0.0], s.cum])))
    if not values:
        return WeightedSample(np.zeros(0), np.zeros(0))
    return WeightedSample(np.concatenate(values), np.concatenate(weights))


def _energy(devices, busy: float, makespan: float) -> tuple[float, float, float]:
    """(power W, energy J, cost $) of an engine's devices over the makespan at busy fraction ``busy``."""
    power = sum(n * (d.idle_w + (d.tdp_w - d.idle_w) * busy) for d, n in devices)
    cost = sum(n * (d.usd_per_hour if d.usd_per_hour is not None else _NAN) for d, n in devices) * makespan / 3600.0
    return power, power * makespan, cost


def summarize_pipeline(result: PipelineResult) -> PipelineSummary:
    sc = result.scenario
    req = result.requests
    rm = request_metrics(req)
    arrival, done = req["arrival_s"], req["completion_s"]
    ok = np.isfinite(done)
    completed = int(ok.sum())
    t0 = float(np.nanmin(arrival)) if arrival.size else 0.0
    t1 = float(np.nanmax(done)) if completed else t0
    makespan = t1 - t0
    n = arrival.size
    offered = (n - 1) / float(arrival.max() - arrival.min()) if n > 1 and arrival.max() > arrival.min() else _NAN
    tokens = float(req["total_output_tokens"][ok].sum())
    final = result.plans[sc.final_stage]

    pools: dict[str, Summary] = {}
    itl_samples: list[WeightedSample] = []
    engines: list[EngineSummary] = []
    for name, eng in result.deployment.engines.items():
        hardware = "+".join(d.name for d, _ in eng.devices) or "-"
        basis = "; ".join(dict.fromkeys(f"{d.name}: {d.basis}" for d, _ in eng.devices)) or "-"
        if name in result.pools:
            pres = pool_result(result, name)
            totals = step_totals(pres)  # once: the pool's summary and the ITL sample share it
            s = summary_from(pres, totals, request_figures(pres.requests, pres.scenario))
            pools[name] = s
            if final.kind in GENERATION_KINDS and name in final.spec.engines:
                itl_samples.append(totals["itl"])
            n_engines = len(result.pools[name].engines)
            busy = totals["busy_s"] / (makespan * n_engines) if makespan > 0 else _NAN
            power, energy, cost = _energy(eng.devices, busy, makespan)
            engines.append(EngineSummary(name, eng.kind, hardware, eng.device_count, busy, power, energy, cost,
                                         s.completed, s.mfu_mean, s.mbu_mean, s.kv_utilization_mean, s.preemptions,
                                         basis))
        elif name in result.servers:
            units = result.servers[name]
            busy = sum(u.busy_s for u in units) / (makespan * len(units)) if makespan > 0 else _NAN
            power, energy, cost = _energy(eng.devices, busy, makespan)
            engines.append(EngineSummary(name, eng.kind, hardware, eng.device_count, busy, power, energy, cost,
                                         sum(u.jobs for u in units), hardware_basis=basis))
        elif name in result.tiers:
            tier = result.tiers[name]
            engines.append(EngineSummary(name, eng.kind, "-", 0, _NAN, 0.0, 0.0, 0.0, sum(tier.served)))

    itl = _merged_itl(itl_samples)
    itl_d = {"mean": itl.mean, **{f"p{int(q)}": itl.percentile(q) for q in PERCENTILES}}
    stages = []
    for p in result.plans:
        i = p.index
        d = result.stage_end_s[i] - result.stage_start_s[i]
        st = StageSummary(p.spec.name, p.kind, ",".join(p.spec.engines), _pcts(d))
        if p.kind == "llm_decode":
            x = result.transfer_s[i]
            st.transfer_s = float(np.nanmean(x)) if np.isfinite(x).any() else _NAN
        if p.kind == "kv_retrieval":
            tier = result.tiers[p.spec.engines[0]]
            lv = result.kv_level[i]
            asked = lv >= 0
            st.kv_hit_rate = float((lv[asked] < len(tier.levels)).mean()) if asked.any() else _NAN
        stages.append(st)

    accelerators = sum(e_n for e in result.deployment.engines.values() for d, e_n in e.devices if d.category != "cpu")
    cpus = sum(e_n for e in result.deployment.engines.values() for d, e_n in e.devices if d.category == "cpu")
    usd_h = sum(n_d * (d.usd_per_hour if d.usd_per_hour is not None else _NAN)
                for e in result.deployment.engines.values() for d, n_d in e.devices)
    energy = sum(e.energy_j for e in engines)
    cost = sum(e.cost_usd for e in engines)
    out_tps = tokens / makespan if makespan > 0 else _NAN
    summary = PipelineSummary(
        scenario=sc.name, requests=int(n), completed=completed, makespan_s=makespan, offered_rate=offered,
        throughput_rps=completed / makespan if makespan > 0 else _NAN, output_tokens_per_s=out_tps,
        ttft_s=_pcts(rm["ttft_s"]), tpot_s=_pcts(rm["tpot_s"]), itl_s=itl_d, e2e_s=_pcts(rm["e2e_s"]),
        queue_s=_pcts(rm["queue_s"]), stages=stages, engines=engines, accelerators=accelerators, cpus=cpus,
        output_tokens_per_s_per_accelerator=out_tps / accelerators if accelerators else _NAN,
        usd_per_hour=usd_h, usd_per_million_output_tokens=cost / tokens * 1e6 if tokens else _NAN,
        joules_per_output_token=energy / tokens if tokens else _NAN, wall_s=result.wall_s, pools=pools)
    _apply_slos(summary, sc, rm, itl, makespan)
    return summary


def llm_engines(result: PipelineResult) -> dict[str, LLMEngine]:
    return {k: v for k, v in result.deployment.engines.items() if isinstance(v, LLMEngine)}
