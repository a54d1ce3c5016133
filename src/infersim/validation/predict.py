"""Predict a validation row: its scenario, the cost model and the serving simulator.

Each row becomes a serving :class:`~infersim.serving.scenario.Scenario` with the row's
model, device, TP / PP / EP, precision, serving runtime (:mod:`infersim.runtime`: host time
per iteration, CUDA-graph padding, the engine's rule for its KV memory fraction), the
scheduler knobs the submission set (policy, batch cap, tokens per step, KV memory
fraction), and a workload drawn from the dataset's length distribution with the row's
measured output tokens per sample as its mean.

* **Offline** rows: every request is queued at t = 0 (arrival process ``offline``) and the
  prediction is output tokens over the makespan
  (:func:`~infersim.serving.throughput.throughput_of`), as MLPerf's Offline scenario and
  ``trtllm-bench throughput`` measure it. Replicas are identical and the requests are
  dealt to them evenly, so one replica is simulated and its throughput multiplied by the
  replica count. The run has as many requests as the measured one (the row's ``samples``:
  LoadGen issues ``max(min_query_count, 1.1 x min_duration x expected QPS)`` samples in one
  query, ``loadgen/test_settings_internal.cc``, and prints the count as ``samples_per_query``),
  so the drain at the end (the last, shrinking batches) weighs as much as it did in the
  measurement: 200,640 samples on four replicas is 50,160 requests each, where a run of a
  few batch caps would spend a tenth or more of its time draining.
* **Server** rows: Poisson arrivals; the highest rate meeting the row's p99 TTFT and p99
  TPOT constraints is bracketed and bisected (:func:`~infersim.serving.sweep.bracket_and_bisect`),
  never above the steady-state Offline throughput of the same deployment (a long run,
  ``RunSize.steady_batches`` batch caps; MLPerf Server runs last ten minutes or more), and the
  prediction is that
  rate times the workload's mean output tokens (in steady state the completion rate equals
  the arrival rate). Each replica gets 1/replicas of the rate as its own Poisson stream.
* Run length: every simulated replica serves several times its batch cap in requests
  (:class:`RunSize`), so a Server run lasts several end-to-end latencies at capacity
  (Little's law: concurrency = rate x latency <= batch cap).
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from ..errors import ConfigError
from ..hardware.catalog import get_device, load_profile
from ..hardware.choices import ENGINE_KERNELS
from ..serving.engine import prepare, simulate
from ..serving.metrics import summarize
from ..serving.scenario import Scenario, validate_scenario
from ..serving.sweep import bracket_and_bisect, capacity_of, with_rate
from ..serving.throughput import throughput_of
from ..serving.workload import build_workload
from .table import DatasetSpec, SystemMeasurement


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


#: ``kernels`` value of the validation functions: each row with its own engine's kernel profile
ROW_ENGINE = "engine"


def row_efficiency(row: SystemMeasurement, kernels: str | None) -> str:
    """The efficiency model a row's device is loaded with. ``kernels``: None, the default profile;
    ``"engine"``, the profile fitted on the kernels of the row's own engine release (its
    ``engine_kernels`` column), else of its engine, where the device ships one (``profiles/<set>/``;
    TensorRT-LLM rows without a release: the default profile, fitted on TensorRT-LLM's newest kernels);
    a kernel set of ``ENGINE_KERNELS``, that set's profile on every row whose device has one."""
    if kernels is None:
        return "calibrated"
    if kernels == ROW_ENGINE:
        engine = row.engine_kernels or row.engine
    elif kernels in ENGINE_KERNELS:
        engine = kernels
    else:
        raise ValueError(f"kernels must be None, '{ROW_ENGINE}' or one of {', '.join(ENGINE_KERNELS)}; got {kernels!r}")
    shipped = engine in ENGINE_KERNELS and load_profile(row.device, engine) is not None
    return engine if shipped else "calibrated"


def scenario_for(row: SystemMeasurement, dataset: DatasetSpec, requests: int, *, replicas: int | None = None,
                 runtime: str | None = None, offline: bool | None = None, seed: int = 0,
                 moe_routing: str | None = None, kernels: str | None = None) -> Scenario:
    """The serving scenario of a row: its layout, dtypes, runtime (``runtime`` overrides the row's) and
    the scheduler knobs the submission set; the runtime applies the row's KV memory fraction by its
    engine's own rule (:meth:`infersim.runtime.Runtime.kv_capacity_bytes`). Requests arrive all at
    t = 0 (``offline``; default: Offline rows) or as a Poisson stream (rate 1/s; see ``with_rate``).
    ``moe_routing``: the MoE routing model (:mod:`infersim.perf.routing`; default: the scenario's);
    ``kernels``: which kernel profile the row's device is loaded with (:func:`row_efficiency`)."""
    out = dataset.output_tokens
    try:
        median = lognormal_median_for_mean(row.output_mean_tokens, out.sigma, out.min, out.max)
    except ValueError as exc:
        raise ConfigError(_where(row), "output_mean_tokens", f"{exc} (dataset {row.dataset})") from None
    offline = row.scenario == "Offline" if offline is None else offline
    slo = []
    if row.scenario == "Server":
        slo = [{"metric": "ttft", "percentile": 99, "max_ms": row.ttft_p99_ms},
               {"metric": "tpot", "percentile": 99, "max_ms": row.tpot_p99_ms}]
    data = {
        "name": row.id, "seed": seed, "model": row.model, "hardware": row.device,
        "efficiency": row_efficiency(row, kernels),
        "runtime": runtime if runtime is not None else row.runtime,
        "parallelism": {"tp": row.tp, "pp": row.pp, "ep": row.ep,
                        "replicas": replicas if replicas is not None else row.replicas,
                        **({"moe_routing": moe_routing} if moe_routing else {})},
        "precision": {"weight": row.weight_dtype, "activation": row.act_dtype, "kv_cache": row.kv_dtype},
        "scheduler": {"policy": row.scheduler, "max_num_seqs": row.max_batch,
                      "max_num_batched_tokens": row.max_tokens_per_step,
                      "memory_utilization": row.kv_memory_fraction, "scheduler_steps": row.scheduler_steps,
                      **({"long_prefill_token_threshold": row.long_prefill_token_threshold}
                         if row.long_prefill_token_threshold is not None else {})},
        "workload": {"requests": requests,
                     "arrival": {"process": "offline"} if offline else {"process": "poisson", "rate": 1.0},
                     "input_tokens": dataset.input_tokens.model_dump(),
                     "output_tokens": {"dist": "lognormal", "median": median, "sigma": out.sigma,
                                       "min": out.min, "max": out.max}},
        "slo": slo,
    }
    return validate_scenario(data, _where(row))


def device_basis(name: str, efficiency: str | None = None) -> str:
    """What a device's efficiency numbers rest on: the catalog's ``Device.basis`` ("calibrated on ...",
    "transferred from ...", "spec sheet only") where the catalog states it, else the ``source`` of the
    device's efficiency section."""
    device = get_device(name, efficiency=efficiency)
    return getattr(device, "basis", None) or device.efficiency.source


@dataclass(frozen=True)
class RunSize:
    """Requests per simulated replica.

    * Server (Poisson) runs: ``batches`` x the row's batch cap, within [``min_requests``,
      ``max_requests``]; ``tolerance`` is the relative width at which the capacity search stops.
    * Offline runs: the measured run's own request count per replica (the row's ``samples``
      divided by its replicas); without one, and for the Offline cap of a Server row,
      ``steady_batches`` batch caps (a steady state: the drain at the end weighs little). Both
      at most ``max_offline_requests``.
    """

    batches: float = 4.0
    min_requests: int = 1000
    max_requests: int = 16000
    tolerance: float = 0.03
    steady_batches: float = 32.0
    max_offline_requests: int = 131072

    def requests(self, row: SystemMeasurement) -> int:
        return int(min(max(self.batches * row.max_batch, self.min_requests), self.max_requests))

    def offline_requests(self, row: SystemMeasurement) -> int:
        if row.samples is not None:
            n = -(-row.samples // row.replicas)
        else:
            n = max(self.steady_batches * row.max_batch, self.min_requests)
        return int(min(n, self.max_offline_requests))


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


def predict_row(row: SystemMeasurement, dataset: DatasetSpec, size: RunSize = RunSize(),
                runtime: str | None = None, moe_routing: str | None = None,
                kernels: str | None = None) -> RowPrediction:
    """Predicted output tokens/s of a row (see the module docstring); ``runtime`` overrides the row's;
    ``kernels``: which kernel profile the row's device is loaded with (:func:`row_efficiency`).

    One replica is simulated: Offline deals the requests to identical replicas evenly; Server gives
    each replica a Poisson stream of 1/replicas of the rate (burstier than a router's split, so
    slightly pessimistic)."""
    start = time.perf_counter()
    n_offline = size.offline_requests(row)
    offline = throughput_of(simulate(scenario_for(row, dataset, n_offline, replicas=1, runtime=runtime,
                                                offline=True, moe_routing=moe_routing,
                                                kernels=kernels)))
    basis = device_basis(row.device, row_efficiency(row, kernels))
    if row.scenario == "Offline":
        return RowPrediction(row, offline.output_tokens_per_s * row.replicas, simulations=1,
                             wall_s=time.perf_counter() - start, runtime=offline.runtime, device_basis=basis,
                             requests=n_offline)
    n = size.requests(row)
    mean_out = offline.output_tokens / offline.requests
    sc = scenario_for(row, dataset, n, replicas=1, runtime=runtime, offline=False, moe_routing=moe_routing,
                      kernels=kernels)
    cap, tries = server_capacity_rps(sc, offline.requests_per_s, size.tolerance)
    cap = cap or 0.0
    return RowPrediction(row, cap * mean_out * row.replicas, simulations=1 + tries,
                         wall_s=time.perf_counter() - start, capacity_rps=cap * row.replicas,
                         runtime=offline.runtime, device_basis=basis, requests=n)
