"""Predict a validation row: its scenario, the cost model and the serving simulator.

Each row becomes a serving :class:`~infersim.serving.scenario.Scenario` with the row's
model, device, TP / PP / EP, precision, scheduler, batch cap, tokens per step and KV
memory (converted from the engine's own definition of its memory fraction), and a
workload drawn from the dataset's length distribution with the row's measured output
tokens per sample as its mean.

* **Offline** rows: every request is queued at t = 0 and the prediction is output tokens
  over the makespan (first arrival to last completion), as MLPerf's Offline scenario and
  ``trtllm-bench throughput`` measure it. Replicas are identical and the requests are
  dealt to them evenly, so one replica is simulated and its throughput multiplied by the
  replica count.
* **Server** rows: Poisson arrivals; the highest rate meeting the row's p99 TTFT and p99
  TPOT constraints is bracketed and bisected (:func:`~infersim.serving.sweep.bracket_and_bisect`),
  never above the Offline throughput of the same deployment, and the prediction is that
  rate times the workload's mean output tokens (in steady state the completion rate equals
  the arrival rate). Each replica gets 1/replicas of the rate as its own Poisson stream.
* Run length: every simulated replica serves several times its batch cap in requests
  (:class:`RunSize`), so a Server run lasts several end-to-end latencies at capacity
  (Little's law: concurrency = rate x latency <= batch cap).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from ..errors import ConfigError
from ..hardware.catalog import get_device
from ..serving.engine import prepare, simulate
from ..serving.metrics import summarize
from ..serving.scenario import Scenario, validate_scenario
from ..serving.sweep import bracket_and_bisect, capacity_of, with_rate
from ..serving.workload import build_workload
from .table import DatasetSpec, SystemMeasurement


@dataclass(frozen=True)
class EngineConvention:
    """How an engine states its KV memory and pages its cache."""

    #: "free": fraction of the memory left after weights and activations; "total": of the device
    kv_fraction_of: str
    kv_block_tokens: int
    source: str


#: defined once; every row's ``engine`` is one of these keys (see :data:`table.ENGINES`)
ENGINE_CONVENTIONS: dict[str, EngineConvention] = {
    "trtllm": EngineConvention(
        "free", 64, "TensorRT-LLM KvCacheConfig.free_gpu_memory_fraction (fraction of the GPU memory free "
                    "after the engine is loaded); trtllm-build --tokens_per_block default 64"),
    "vllm": EngineConvention(
        "total", 16, "vLLM EngineArgs.gpu_memory_utilization (fraction of the device for weights, activations "
                     "and KV cache); EngineArgs.block_size default 16"),
    "sglang": EngineConvention(
        "total", 1, "SGLang ServerArgs.mem_fraction_static (fraction of the device for weights and the KV "
                    "pool); ServerArgs.page_size default 1"),
}

#: the serving-runtime layer modelled per row: none yet (kernels and scheduler only, no engine overheads)
RUNTIME_LABEL = "none"


@dataclass(frozen=True)
class RowPrediction:
    row: SystemMeasurement
    predicted_output_tokens_per_s: float
    runtime: str
    device_basis: str
    requests: int
    simulations: int
    wall_s: float
    capacity_rps: float | None = None
    kv_blocks_per_replica: int = 0

    @property
    def measured(self) -> float:
        return self.row.measured_output_tokens_per_s

    @property
    def signed_error(self) -> float:
        """(predicted - measured) / measured: > 0 means the model is optimistic."""
        return (self.predicted_output_tokens_per_s - self.measured) / self.measured


@functools.lru_cache(maxsize=1)
def _normal_nodes(n: int = 4001) -> np.ndarray:
    nd = NormalDist()
    return np.array([nd.inv_cdf((i + 0.5) / n) for i in range(n)])


def clipped_lognormal_mean(median: float, sigma: float, lo: int, hi: int) -> float:
    """Mean of ``clip(round(median * exp(sigma * Z)), lo, hi)`` for standard normal Z (quadrature on
    4,001 equal-probability nodes; the sampler in :mod:`infersim.serving.workload` draws the same form)."""
    x = np.clip(np.round(median * np.exp(sigma * _normal_nodes())), lo, hi)
    return float(x.mean())


def lognormal_median_for_mean(mean: float, sigma: float, lo: int, hi: int) -> float:
    """The median whose clipped lognormal has ``mean`` (bisection on log median; the mean is
    nondecreasing in the median). ``mean`` must lie strictly between ``lo`` and ``hi``."""
    if not lo < mean < hi:
        raise ValueError(f"a mean of {mean} cannot come from lengths clipped to [{lo}, {hi}]")
    a, b = math.log(lo) - 10 * sigma - 1, math.log(hi) + 10 * sigma + 1
    for _ in range(80):
        m = 0.5 * (a + b)
        if clipped_lognormal_mean(math.exp(m), sigma, lo, hi) < mean:
            a = m
        else:
            b = m
    return math.exp(0.5 * (a + b))


def _where(row: SystemMeasurement) -> str:
    return f"<validation row {row.id}>"


def scenario_for(row: SystemMeasurement, dataset: DatasetSpec, requests: int, *, replicas: int | None = None,
                 seed: int = 0) -> Scenario:
    """The serving scenario of a row (KV blocks from the engine's memory convention)."""
    conv = ENGINE_CONVENTIONS[row.engine]
    out = dataset.output_tokens
    try:
        median = lognormal_median_for_mean(row.output_mean_tokens, out.sigma, out.min, out.max)
    except ValueError as exc:
        raise ConfigError(_where(row), "output_mean_tokens", f"{exc} (dataset {row.dataset})") from None
    slo = []
    if row.scenario == "Server":
        slo = [{"metric": "ttft", "percentile": 99, "max_ms": row.ttft_p99_ms},
               {"metric": "tpot", "percentile": 99, "max_ms": row.tpot_p99_ms}]
    data = {
        "name": row.id, "seed": seed, "model": row.model, "hardware": row.device,
        "parallelism": {"tp": row.tp, "pp": row.pp, "ep": row.ep,
                        "replicas": replicas if replicas is not None else row.replicas},
        "precision": {"weight": row.weight_dtype, "activation": row.act_dtype, "kv_cache": row.kv_dtype},
        "scheduler": {"policy": row.scheduler, "max_num_seqs": row.max_batch,
                      "max_num_batched_tokens": row.max_tokens_per_step, "block_size": conv.kv_block_tokens,
                      "memory_utilization": row.kv_memory_fraction if conv.kv_fraction_of == "total" else 1.0},
        "workload": {"requests": requests, "arrival": {"process": "poisson", "rate": 1.0},
                     "input_tokens": dataset.input_tokens.model_dump(),
                     "output_tokens": {"dist": "lognormal", "median": median, "sigma": out.sigma,
                                       "min": out.min, "max": out.max}},
        "slo": slo,
    }
    sc = validate_scenario(data, _where(row))
    if conv.kv_fraction_of == "free":
        # the engine keeps this fraction of what is free after weights and activations
        wl = build_workload(sc)
        dep = prepare(sc, max_context_tokens=int((wl.input_tokens + wl.output_tokens).max()) + 1)
        blocks = int(row.kv_memory_fraction * dep.kv_capacity_bytes // (dep.kv_bytes_per_token * conv.kv_block_tokens))
        sc = sc.with_changes(**{"scheduler.num_gpu_blocks_override": max(blocks, 1)})
    return sc


def offline_output_tokens_per_s(scenario: Scenario) -> tuple[float, object]:
    """Output tokens / makespan with every request of the scenario's workload queued at t = 0
    (a thin adapter until the serving layer has an offline arrival process)."""
    wl = build_workload(scenario)
    wl = dataclasses.replace(wl, arrival_s=np.zeros_like(wl.arrival_s))
    result = simulate(scenario, workload=wl)
    return summarize(result).output_tokens_per_s, result


def device_basis(name: str) -> str:
    """Where a device's efficiency numbers come from (its efficiency section's ``source``)."""
    return get_device(name).efficiency.source


@dataclass(frozen=True)
class RunSize:
    """Requests per simulated replica: ``batches`` x the row's batch cap, within
    [``min_requests``, ``max_requests``]; ``tolerance`` is the relative width at which the
    Server capacity search stops."""

    batches: float = 4.0
    min_requests: int = 1000
    max_requests: int = 16000
    tolerance: float = 0.03

    def requests(self, row: SystemMeasurement) -> int:
        return int(min(max(self.batches * row.max_batch, self.min_requests), self.max_requests))


def server_capacity_rps(scenario: Scenario, offline_rps: float, tolerance: float) -> tuple[float | None, int]:
    """Highest Poisson rate meeting the scenario's SLOs, and the number of rates tried.

    A rate above ``offline_rps`` (the same deployment's throughput with every request queued
    at once) fails without a run: no arrival process beats a full queue, and a finite run
    above that rate can pass its SLOs only because it ends before its backlog builds up.
    """
    wl = build_workload(scenario)
    dep = prepare(scenario, max_context_tokens=int((wl.input_tokens + wl.output_tokens).max()) + 1)

    def meets(rate: float) -> bool:
        if rate > offline_rps:
            return False
        return summarize(simulate(with_rate(scenario, rate), workload=None, deployment=dep)).slo_met

    tried = bracket_and_bisect(meets, 0.8 * offline_rps, tolerance)
    return capacity_of(tried), len(tried)


def predict_row(row: SystemMeasurement, dataset: DatasetSpec, size: RunSize = RunSize()) -> RowPrediction:
    """Predicted output tokens/s of a row (see the module docstring). One replica is simulated:
    Offline deals the requests to identical replicas evenly; Server gives each replica a Poisson
    stream of 1/replicas of the rate (burstier than a router's split, so slightly pessimistic)."""
    start = time.perf_counter()
    n = size.requests(row)
    sc = scenario_for(row, dataset, n, replicas=1)
    offline_tps, result = offline_output_tokens_per_s(sc)
    common = dict(runtime=RUNTIME_LABEL, device_basis=device_basis(row.device), requests=n,
                  kv_blocks_per_replica=int(result.kv_blocks))
    if row.scenario == "Offline":
        return RowPrediction(row, offline_tps * row.replicas, simulations=1, wall_s=time.perf_counter() - start,
                             **common)
    mean_out = float(result.workload.output_tokens.mean())
    cap, tries = server_capacity_rps(sc, offline_tps / mean_out, size.tolerance)
    cap = cap or 0.0
    return RowPrediction(row, cap * mean_out * row.replicas, simulations=1 + tries,
                         wall_s=time.perf_counter() - start, capacity_rps=cap * row.replicas, **common)
