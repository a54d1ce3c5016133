"""Serving metrics: latency percentiles, throughput, goodput, utilization, Little's law.

Definitions (times in seconds, per request ``i``):

* **TTFT** = first token time - arrival (includes queueing).
* **TPOT** = (completion - first token) / (output tokens - 1), for requests with
  at least two output tokens.
* **ITL** (inter-token latency) = every gap between two consecutive tokens of a
  request; percentiles are over all gaps of all requests (a request with many
  tokens weighs more). Most gaps equal one step's duration, so ITL percentiles are
  computed from the steps weighted by the tokens they emit, plus the gaps that
  span a preemption; percentile = the smallest gap at or above that fraction of
  all gaps (inverted CDF).
* **E2E** = completion - arrival. **Queueing delay** = first scheduled - arrival.
* **Throughput** = completed requests (and their input / output tokens) per second
  over the makespan, first arrival to last completion.
* **SLO attainment** = fraction of requests whose TTFT, TPOT, E2E and queueing delay
  are each within the scenario's SLO thresholds (ITL SLOs are checked as
  percentiles only); **goodput** = those requests per second of makespan (the
  DistServe definition, Zhong et al., OSDI 2024).
* **KV-cache utilization** = blocks in use / blocks, time-weighted over busy steps;
  **MFU** / **memory-bandwidth utilization** = FLOPs / bytes of the busy steps over
  the device's peak FLOP/s / bandwidth times their duration (per device).
* **Little's law**: the time-average number of requests in the system equals the
  arrival rate times the mean E2E latency (Little, Operations Research 1961).

Request percentiles use linear interpolation (numpy's default).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from itertools import chain

import numpy as np

from .engine import SimulationResult
from .run_logs import Records, StepLog

PERCENTILES = (50.0, 90.0, 99.0)
_NAN = float("nan")


class WeightedSample:
    """Values with weights, sorted once; :meth:`percentile` is the inverted CDF: the smallest value
    whose cumulative weight reaches ``q`` percent of the total."""

    def __init__(self, values: np.ndarray, weights: np.ndarray) -> None:
        values = np.asarray(values, dtype=np.float64)
        weights = np.asarray(weights, dtype=np.float64)
        keep = weights > 0
        values, weights = values[keep], weights[keep]
        order = np.argsort(values, kind="stable")
        self.values = values[order]
        self.cum = np.cumsum(weights[order])
        self.total = float(self.cum[-1]) if self.cum.size else 0.0
        self.mean = float((values * weights).sum() / self.total) if self.total > 0 else _NAN

    def percentile(self, q: float) -> float:
        if self.values.size == 0:
            return _NAN
        idx = int(np.searchsorted(self.cum, q / 100.0 * self.total, side="left"))
        return float(self.values[min(idx, self.values.size - 1)])


def weighted_percentile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    """Smallest value whose cumulative weight reaches ``q`` percent of the total (inverted CDF)."""
    return WeightedSample(values, weights).percentile(q)


def _pcts(x: np.ndarray) -> dict[str, float]:
    x = x[np.isfinite(x)]
    if x.size == 0:
        return {"mean": _NAN, **{f"p{int(q)}": _NAN for q in PERCENTILES}}
    out = {"mean": float(x.mean())}
    for q, v in zip(PERCENTILES, np.percentile(x, PERCENTILES)):
        out[f"p{int(q)}"] = float(v)
    return out


# ----- per-iteration table ------------------------------------------------------------------------
def expand_steps(steps: StepLog, n_windows: int, block_size: int) -> dict[str, np.ndarray]:
    """Per-step columns of one engine (vectorized expansion of the decode runs)."""
    n = steps.n_steps
    start = np.zeros(n)
    duration = np.zeros(n)
    pt = np.zeros(n, dtype=np.int32)
    ps = np.zeros(n, dtype=np.int32)
    ds = np.zeros(n, dtype=np.int32)
    loads = np.zeros((n, 4 * n_windows))
    used = np.zeros(n, dtype=np.int32)
    weight = np.zeros(n, dtype=np.int32)
    gap = np.zeros(n)
    swap = np.zeros(n)
    preempted = np.zeros(n, dtype=np.int32)
    if steps.pieces:  # decode-run times: m steps with durations a + c i from start t
        a = _as_array(steps.pieces, 6)
        m = a[:, 1].astype(np.int64)
        piece = np.repeat(np.arange(m.size), m)
        i = (np.arange(int(m.sum())) - np.repeat(np.cumsum(m) - m, m)).astype(np.float64)
        idx = a[piece, 0].astype(np.int64) + i.astype(np.int64)
        i += a[piece, 5]  # the index on the piece's line
        c = a[piece, 4]
        duration[idx] = a[piece, 3] + c * i
        start[idx] = a[piece, 2] + i * a[piece, 3] + c * (i * (i - 1) / 2)
        del a, m, piece, i, idx, c
    gap[:] = duration
    if steps.singles:
        a = _as_array(steps.singles, 11 + 4 * n_windows)
        idx = a[:, 0].astype(np.int64)
        start[idx] = a[:, 1]
        duration[idx] = a[:, 2]
        pt[idx] = a[:, 3]
        ps[idx] = a[:, 4]
        ds[idx] = a[:, 5]
        used[idx] = a[:, 6]
        weight[idx] = a[:, 7]
        gap[idx] = a[:, 8]
        swap[idx] = a[:, 9]
        preempted[idx] = a[:, 10]
        loads[idx] = a[:, 11:]
        del a
    if steps.runs:
        a = _as_array(steps.runs, 8)
        first = a[:, 0].astype(np.int64)
        k = a[:, 1].astype(np.int64)
        b = a[:, 2].astype(np.int64)
        clock0 = a[:, 5].astype(np.int64)
        cnt = _as_array(steps.run_cnts, block_size, np.int32)
        run = np.repeat(np.arange(len(steps.runs)), k)
        offsets = np.cumsum(k) - k
        j = np.arange(int(k.sum())) - np.repeat(offsets, k)
        idx = first[run] + j
        br = b[run]
        ds[idx] = br
        weight[idx] = br
        loads[idx, 3] = a[run, 3] + br * j  # decode runs are full-attention only
        need = cnt[run, (clock0[run] + j) % block_size].astype(np.int64)
        cs = np.cumsum(need)
        before = (cs - need)[offsets]  # cumulative need before each run
        used[idx] = a[run, 4].astype(np.int64) + cs - before[run]
        gap[first] = a[:, 6]
        weight[first] = a[:, 7]
        del a, run, j, idx, br, need, cs
    for first, k, b, x0, used0, weights, batch_loads, starts, durations in steps.batches:  # static batching
        idx = np.arange(first, first + k)
        start[idx] = starts
        duration[idx] = durations
        gap[idx] = durations
        ds[idx] = b
        weight[idx] = weights
        if batch_loads is not None:
            loads[idx] = batch_loads
        else:
            loads[idx, 3] = x0 + b * np.arange(k)
        used[idx] = used0
    return {"start_s": start, "duration_s": duration,
            "prefill_tokens": pt, "prefill_seqs": ps, "decode_seqs": ds, "loads": loads,
            "kv_blocks_used": used, "itl_weight": weight, "itl_gap_s": gap, "swap_s": swap, "preempted": preempted}


def iterations(result: SimulationResult, with_work: bool = True, detail: bool = True) -> dict[str, np.ndarray]:
    """Per-iteration table of all engines (engine-major), with MFU / bandwidth utilization.
    ``detail=False`` leaves out the columns only the files need (engine, replica, step, MFU,
    bandwidth utilization per step), which saves memory on long runs."""
    dep = result.deployment
    nw = len(dep.cost.windows)
    bs = result.scenario.scheduler.block_size
    parts = []
    for e, steps in enumerate(result.engines):
        cols = expand_steps(steps, nw, bs)
        n = cols["duration_s"].size
        if detail:
            cols["engine"] = np.full(n, e, dtype=np.int32)
            cols["replica"] = np.full(n, result.engine_replica[e], dtype=np.int32)
            cols["step"] = np.arange(n, dtype=np.int32)
        parts.append(cols)
    if len(parts) == 1:
        out = parts[0]
    else:
        out = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    del parts
    out["kv_utilization"] = out["kv_blocks_used"] / result.kv_blocks
    loads = out.pop("loads")  # (aggregate attention loads: only needed for the FLOPs and bytes)
    if with_work:
        flops, nbytes = dep.cost.work(out["prefill_tokens"], out["prefill_seqs"], out["decode_seqs"], loads)
        del loads
        out["flops"] = flops
        out["bytes"] = nbytes
        if detail:
            dur = out["duration_s"]
            with np.errstate(divide="ignore", invalid="ignore"):
                out["mfu"] = np.where(dur > 0, flops / (dur * dep.peak_flops), 0.0)
                out["mbu"] = np.where(dur > 0, nbytes / (dur * dep.memory_bandwidth_bytes_per_s), 0.0)
    return out


def _as_array(records, width: int, dtype=np.float64) -> np.ndarray:
    """(records, width) array of a :class:`~infersim.serving.run_logs.Records` (or a list of tuples)."""
    if not records:
        return np.zeros((0, width), dtype=dtype)
    if isinstance(records, Records):
        return np.frombuffer(records, dtype=records.typecode).reshape(-1, width).astype(dtype)
    return np.fromiter(chain.from_iterable(records), dtype=dtype, count=len(records) * width).reshape(-1, width)


def step_totals(result: SimulationResult) -> dict:
    """What the summary needs from the steps, without building the per-step table in step order:
    busy time, FLOPs and bytes (closed forms per decode run), duration-weighted and peak KV use,
    and the inter-token gap sample. Agrees with :func:`iterations` (tests check it)."""
    bs = result.scenario.scheduler.block_size
    totals = new_step_totals()
    values, weights = [], []
    for steps in result.engines:
        add_step_totals(totals, steps, result.deployment.cost, bs, values, weights)
    totals["itl"] = WeightedSample(np.concatenate(values) if values else np.zeros(0),
                                   np.concatenate(weights) if weights else np.zeros(0))
    return totals


def new_step_totals() -> dict:
    return {"busy_s": 0.0, "flops": 0.0, "bytes": 0.0, "iterations": 0, "kv_weighted_blocks": 0.0,
            "kv_peak_blocks": 0}


def add_step_totals(totals: dict, steps: StepLog, cost, bs: int, values: list, weights: list) -> None:
    """Add one engine's step log (or a stretch of it, drained on its own) to running ``totals``
    (:func:`new_step_totals`); its inter-token gaps and their weights go to ``values``, ``weights``."""
    nw = len(cost.windows)
    busy, flops, nbytes = totals["busy_s"], totals["flops"], totals["bytes"]
    kv_weighted, peak = totals["kv_weighted_blocks"], totals["kv_peak_blocks"]
    if steps.batches or not cost.work_fast:  # static batching / slow work path: the full table
        it = expand_steps(steps, nw, bs)
        f, b_ = cost.work(it["prefill_tokens"], it["prefill_seqs"], it["decode_seqs"], it["loads"])
        d = it["duration_s"]
        busy += float(d.sum())
        flops += float(f.sum())
        nbytes += float(b_.sum())
        kv_weighted += float((it["kv_blocks_used"] * d).sum())
        peak = max(peak, int(it["kv_blocks_used"].max()) if d.size else 0)
        values.append(it["itl_gap_s"])
        weights.append(it["itl_weight"])
    else:
        s = _as_array(steps.singles, 11 + 4 * nw)
        if s.size:
            d = s[:, 2]
            f, b_ = cost.work(s[:, 3].astype(np.int64), s[:, 4].astype(np.int64), s[:, 5].astype(np.int64),
                              s[:, 11:])
            busy += float(d.sum())
            flops += float(f.sum())
            nbytes += float(b_.sum())
            kv_weighted += float((s[:, 6] * d).sum())
            peak = max(peak, int(s[:, 6].max()))
            values.append(s[:, 8])
            weights.append(s[:, 7])
        if steps.runs:
            r = _as_array(steps.runs, 8)
            p = _as_array(steps.pieces, 6)
            cnt = _as_array(steps.run_cnts, bs, np.int32)
            k = r[:, 1].astype(np.int64)
            b = r[:, 2].astype(np.int64)
            # durations of the run steps, in step order (pieces subdivide runs, both in order)
            m = p[:, 1].astype(np.int64)
            i = np.arange(int(m.sum()), dtype=np.float64) - np.repeat((np.cumsum(m) - m).astype(np.float64), m)
            i += np.repeat(p[:, 5], m)  # the index on the piece's line
            d = np.repeat(p[:, 3], m) + np.repeat(p[:, 4], m) * i
            del i
            # KV blocks in use at each run step: the blocks before the run plus what its steps took
            run = np.repeat(np.arange(k.size), k)
            offsets = np.cumsum(k) - k
            j = np.arange(int(k.sum())) - np.repeat(offsets, k)
            need = cnt[run, (r[run, 5].astype(np.int64) + j) % bs].astype(np.int64)
            cs = np.cumsum(need)
            used = r[run, 4] + (cs - (cs - need)[offsets][run])
            del run, j, need, cs
            busy += float(d.sum())
            kv_weighted += float((used * d).sum())
            peak = max(peak, int(used.max()))
            del used
            # FLOPs and bytes: k W(batch) + c_dp * sum of the decode pairs k x0 + b k (k - 1) / 2
            lines = {int(v): cost.decode_work(int(v)) for v in np.unique(b).tolist()}
            line = np.array([lines[v] for v in b.tolist()]).reshape(-1, 4)
            sum_x = k * r[:, 3] + b * (k * (k - 1) / 2.0)
            flops += float((k * line[:, 0] + line[:, 1] * sum_x).sum())
            nbytes += float((k * line[:, 2] + line[:, 3] * sum_x).sum())
            # inter-token gaps: every run step's duration, weighted by its batch, except its first
            gap = d
            first = offsets
            gap[first] = r[:, 6]
            w = np.repeat(b, k)
            w[first] = r[:, 7]
            values.append(gap)
            weights.append(w)
    values.append(np.frombuffer(steps.gaps_s, dtype=np.float64))
    weights.append(np.ones(len(steps.gaps_s)))
    totals.update(busy_s=busy, flops=flops, bytes=nbytes, iterations=totals["iterations"] + steps.n_steps,
                  kv_weighted_blocks=kv_weighted, kv_peak_blocks=peak)


def _totals_from_table(result: SimulationResult, it: dict) -> dict:
    d = it["duration_s"]
    return {"busy_s": float(d.sum()), "flops": float(it["flops"].sum()), "bytes": float(it["bytes"].sum()),
            "iterations": int(d.size), "kv_weighted_blocks": float((it["kv_blocks_used"] * d).sum()),
            "kv_peak_blocks": int(it["kv_blocks_used"].max()) if d.size else 0,
            "itl": WeightedSample(*itl_samples(result, it))}


# ----- summary ---------------------------------------------------------------------------------------
@dataclass
class SLOResult:
    metric: str
    percentile: float
    max_s: float
    value_s: float
    met: bool


@dataclass
class Summary:
    scenario: str
    model: str
    hardware: str
    replicas: int
    tp: int
    pp: int
    scheduler: str
    requests: int
    completed: int
    makespan_s: float
    offered_rate: float  # requests/s, (n - 1) / arrival span
    throughput_rps: float
    input_tokens_per_s: float
    output_tokens_per_s: float
    ttft_s: dict
    tpot_s: dict
    itl_s: dict
    e2e_s: dict
    queue_s: dict
    preemptions: int
    preempted_requests: int
    kv_blocks: int
    kv_utilization_mean: float
    kv_utilization_peak: float
    prefix_hit_rate: float
    mfu_mean: float
    mbu_mean: float
    busy_fraction: float
    iterations: int
    mean_in_system: float  # time-average requests in the system
    littles_law_rhs: float  # throughput x mean E2E
    hardware_basis: str = "spec sheet only"  # calibrated on ... / transferred from ... / spec sheet only
    slo: list[SLOResult] = field(default_factory=list)
    slo_attainment: float = _NAN
    slo_met: bool = True
    goodput_rps: float = _NAN
    wall_s: float = 0.0  # host time the simulation took: shown on the terminal, never in the JSON
    runtime: str = "none"  # the serving runtime modelled (infersim.runtime)

    def to_dict(self) -> dict:
        """Every simulated figure; the host's ``wall_s`` is left out, so that the JSON (summary.json,
        --json) of a scenario and seed is the same bytes on every run and machine."""
        out = asdict(self)
        out.pop("wall_s")
        return out


def request_metrics(req: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    arrival = req["arrival_s"]
    first = req["first_token_s"]
    done = req["completion_s"]
    out_tok = req["output_tokens"]
    with np.errstate(divide="ignore", invalid="ignore"):
        tpot = np.where(out_tok > 1, (done - first) / (out_tok - 1), np.nan)
    return {"ttft_s": first - arrival, "tpot_s": tpot, "e2e_s": done - arrival,
            "queue_s": req["first_scheduled_s"] - arrival}


def time_average_in_system(arrival: np.ndarray, completion: np.ndarray, t0: float, t1: float) -> float:
    """Time-average number of requests in the system over [t0, t1] (exact sweep over events)."""
    if t1 <= t0:
        return _NAN
    times = np.concatenate([arrival, completion])
    delta = np.concatenate([np.ones(arrival.size), -np.ones(completion.size)])
    order = np.argsort(times, kind="stable")
    times, delta = times[order], delta[order]
    level = np.cumsum(delta)
    # N(t) = level[i] on [times[i], times[i+1]); clip the pieces to [t0, t1]
    starts = np.clip(times, t0, t1)
    ends = np.clip(np.append(times[1:], t1), t0, t1)
    return float((level * (ends - starts)).sum() / (t1 - t0))


def itl_samples(result: SimulationResult, it: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(gap values, weights): per step, the gap of the requests that also emitted at the previous
    decode step (weighted by how many), plus the single gaps of requests that just joined."""
    if it is None:
        it = iterations(result, with_work=False)
    gaps = np.concatenate([np.frombuffer(s.gaps_s, dtype=np.float64) for s in result.engines]) \
        if result.engines else np.zeros(0)
    values = np.concatenate([it["itl_gap_s"], gaps])
    weights = np.concatenate([it["itl_weight"], np.ones(gaps.size, dtype=np.int32)])
    return values, weights


def request_figures(req: dict[str, np.ndarray], sc) -> dict:
    """What the summary needs from the per-request arrays (:func:`summary_from`); the streaming
    simulator (:mod:`infersim.serving.streaming`) builds the same dict chunk by chunk."""
    rm = request_metrics(req)
    arrival, done = req["arrival_s"], req["completion_s"]
    ok = np.isfinite(done)
    completed = int(ok.sum())
    t0 = float(np.nanmin(arrival)) if arrival.size else 0.0
    t1 = float(np.nanmax(done)) if completed else t0
    fig = {"requests": int(arrival.size), "completed": completed, "t0": t0, "t1": t1,
           "arrival_min": float(arrival.min()) if arrival.size else _NAN,
           "arrival_max": float(arrival.max()) if arrival.size else _NAN,
           "input_tokens": int(req["input_tokens"][ok].sum()), "output_tokens": int(req["output_tokens"][ok].sum()),
           "preemptions": int(req["preemptions"].sum()), "preempted_requests": int((req["preemptions"] > 0).sum()),
           "mean_in_system": time_average_in_system(arrival[ok], done[ok], t0, t1) if completed else _NAN,
           "e2e_mean": float(np.nanmean(rm["e2e_s"])) if completed else _NAN,
           "slo_meets": int(slo_meets(sc, rm).sum()), "slo_values": {}}
    for metric, key in _PER_REQUEST.items():
        fig[key] = _pcts(rm[key])
        fig["slo_values"].update(slo_values(sc, metric, rm[key]))
    return fig


def summarize(result: SimulationResult, it: dict | None = None) -> Summary:
    totals = step_totals(result) if it is None else _totals_from_table(result, it)
    return summary_from(result, totals, request_figures(result.requests, result.scenario))


def summary_from(result: SimulationResult, totals: dict, fig: dict) -> Summary:
    """The summary of a run from its step totals (:func:`step_totals`) and request figures
    (:func:`request_figures`)."""
    sc = result.scenario
    dep = result.deployment
    completed = fig["completed"]
    t0, t1 = fig["t0"], fig["t1"]
    makespan = t1 - t0
    n = fig["requests"]
    lo, hi = fig["arrival_min"], fig["arrival_max"]
    offered = (n - 1) / (hi - lo) if n > 1 and hi > lo else _NAN
    thr = completed / makespan if makespan > 0 else _NAN
    in_tps = float(fig["input_tokens"]) / makespan if makespan > 0 else _NAN
    out_tps = float(fig["output_tokens"]) / makespan if makespan > 0 else _NAN
    itl_sample = totals["itl"]
    itl = {"mean": itl_sample.mean}
    for q in PERCENTILES:
        itl[f"p{int(q)}"] = itl_sample.percentile(q)
    busy = totals["busy_s"]
    mfu = totals["flops"] / (busy * dep.peak_flops) if busy > 0 else _NAN
    mbu = totals["bytes"] / (busy * dep.memory_bandwidth_bytes_per_s) if busy > 0 else _NAN
    lookups = sum(s["lookup_tokens"] for s in result.kv_stats)
    hits = sum(s["hit_tokens"] for s in result.kv_stats)
    n_engines = len(result.engines)
    summary = Summary(
        scenario=sc.name, model=dep.model_name, hardware=dep.device_name, hardware_basis=dep.device_basis,
        replicas=sc.parallelism.replicas,
        tp=sc.parallelism.tp, pp=sc.parallelism.pp, scheduler=sc.scheduler.policy, requests=int(n),
        runtime=dep.runtime.name if dep.runtime is not None else "none",
        completed=completed, makespan_s=makespan, offered_rate=offered, throughput_rps=thr,
        input_tokens_per_s=in_tps, output_tokens_per_s=out_tps,
        ttft_s=fig["ttft_s"], tpot_s=fig["tpot_s"], itl_s=itl, e2e_s=fig["e2e_s"],
        queue_s=fig["queue_s"], preemptions=fig["preemptions"],
        preempted_requests=fig["preempted_requests"], kv_blocks=result.kv_blocks,
        kv_utilization_mean=totals["kv_weighted_blocks"] / (busy * result.kv_blocks) if busy > 0 else _NAN,
        kv_utilization_peak=totals["kv_peak_blocks"] / result.kv_blocks,
        prefix_hit_rate=hits / lookups if lookups else _NAN,
        mfu_mean=mfu, mbu_mean=mbu,
        busy_fraction=busy / (makespan * n_engines) if makespan > 0 else _NAN,
        iterations=totals["iterations"],
        mean_in_system=fig["mean_in_system"],
        littles_law_rhs=thr * fig["e2e_mean"] if completed else _NAN,
        wall_s=result.wall_s,
    )
    _finish_slos(summary, sc, fig["slo_values"], fig["slo_meets"], n, itl_sample, makespan)
    return summary


_PER_REQUEST = {"ttft": "ttft_s", "tpot": "tpot_s", "e2e": "e2e_s", "queue": "queue_s"}


def slo_meets(sc, rm: dict) -> np.ndarray:
    """Per request, whether it meets every per-request SLO of the scenario (finite E2E, and each
    of TTFT, TPOT, E2E, queueing within its limit; a request without the quantity, such as the
    TPOT of a 1-token output, does not violate it)."""
    meets = np.isfinite(rm["e2e_s"])
    for slo in sc.slo or ():
        if slo.metric != "itl":
            x = rm[_PER_REQUEST[slo.metric]]
            meets &= ~(np.isfinite(x) & (x > slo.max_ms / 1e3))
    return meets


def slo_values(sc, metric: str, x: np.ndarray) -> dict:
    """{(metric, percentile): value} of the scenario's SLOs on per-request ``metric`` (all of ``x``)."""
    out = {}
    for slo in sc.slo or ():
        if slo.metric == metric:
            finite = x[np.isfinite(x)]
            out[(metric, slo.percentile)] = float(np.percentile(finite, slo.percentile)) if finite.size else _NAN
    return out


def _apply_slos(summary: Summary, sc, rm: dict, itl: WeightedSample, makespan: float) -> None:
    values = {}
    for metric, key in _PER_REQUEST.items():
        values.update(slo_values(sc, metric, rm[key]))
    _finish_slos(summary, sc, values, int(slo_meets(sc, rm).sum()), rm["e2e_s"].size, itl, makespan)


def _finish_slos(summary: Summary, sc, values: dict, meets: int, n: int, itl, makespan: float) -> None:
    if not sc.slo:
        return
    results = []
    for slo in sc.slo:
        limit = slo.max_ms / 1e3
        value = itl.percentile(slo.percentile) if slo.metric == "itl" else values[(slo.metric, slo.percentile)]
        results.append(SLOResult(slo.metric, slo.percentile, limit, value, bool(value <= limit)))
    summary.slo = results
    summary.slo_met = all(r.met for r in results)
    summary.slo_attainment = float(meets / n) if n else _NAN
    summary.goodput_rps = float(meets / makespan) if makespan > 0 else _NAN
