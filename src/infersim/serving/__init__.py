"""Discrete-event simulation of LLM serving: tail latency, throughput and capacity under load.

``infersim simulate [SCENARIO]`` runs a scenario (a YAML file, see
``examples/scenarios/``; without one, a built-in default) and prints TTFT / TPOT /
inter-token / end-to-end latency percentiles, queueing delay, throughput, preemptions,
KV-cache use, MFU and SLO attainment / goodput; ``--out DIR`` also writes
``requests.csv``, ``iterations.csv`` and a Chrome/Perfetto ``trace.json``.
``infersim sweep-rate SCENARIO`` finds the highest request rate meeting the
scenario's SLOs.

What is simulated
-----------------
* **Workload** (:mod:`.workload`): Poisson, Gamma (bursty, with a CV), constant-rate,
  offline (every request queued at t = 0) or closed-loop (users with think time) arrivals; fixed, uniform, lognormal or empirical
  (CSV) lengths; or a CSV trace in the Azure LLM inference layout; shared-prefix groups.
  One seed makes a run reproducible to the byte.
* **Replicas and router** (:mod:`.replica`, :mod:`.router`): ``replicas`` copies of a
  ``tp x pp`` layout; pipeline parallel replicas run ``pp`` virtual engines (batches in
  flight), as vLLM does, whose micro-batches pass through the replica's shared stages
  (:mod:`.pp_stages`). Routing: round robin, least outstanding requests, least KV load.
* **Schedulers** (:mod:`.scheduler`): static batching (the Orca paper's baseline),
  iteration-level continuous batching with a paged KV cache as in vLLM v0 (Orca, OSDI
  2022; PagedAttention, SOSP 2023) with preemption by recompute or swap, and Sarathi-Serve
  chunked prefill (OSDI 2024); ``max_num_seqs`` and ``max_num_batched_tokens`` caps.
* **KV cache** (:mod:`.kv_cache`): paged blocks, watermark, prefix caching with LRU
  eviction and hit accounting.
* **Step time** (:mod:`.cost`): the foundation's exact cost model
  (:class:`~infersim.perf.step_time.StepTimeModel`) for every step's actual batch (prefill
  chunks with their cached prefixes, decodes with their contexts). Decode-only steps of an
  unchanged batch run in one loop from a piecewise-linear form of the step time recovered
  from that model, so a long simulation costs microseconds per step.

* **Runtime** (:mod:`infersim.runtime`): the serving engine modelled (``runtime:`` in a
  scenario): host time per iteration, CUDA-graph padding of decode steps, scheduler defaults.
* **Offline throughput** (:mod:`.throughput`): :func:`offline_throughput` queues every request
  at t = 0 and reports output tokens / makespan, as ``trtllm-bench throughput`` does.

Definitions (:mod:`.metrics`)
-----------------------------
* TTFT = first token - arrival (queueing included); TPOT = (completion - first token) /
  (output tokens - 1); ITL = every gap between consecutive tokens (percentiles over all
  gaps); E2E = completion - arrival; queueing delay = first scheduled - arrival.
* Throughput = completed requests (tokens) per second from the first arrival to the last
  completion; goodput = requests per second that meet every per-request SLO.
* MFU and memory-bandwidth utilization per iteration = FLOPs and bytes per device over the
  step's duration times the device's peak.

Python API::

    from infersim.serving import load_scenario, simulate, summarize
    result = simulate(load_scenario("examples/scenarios/chunked-prefill.yaml"))
    print(summarize(result).ttft_s["p99"])
"""

from ..lazy import lazy_exports

_EXPORTS = {
    "Deployment": ".engine",
    "SimulationResult": ".engine",
    "prepare": ".engine",
    "simulate": ".engine",
    "Summary": ".metrics",
    "iterations": ".metrics",
    "summarize": ".metrics",
    "write_outputs": ".outputs",
    "Scenario": ".scenario",
    "default_scenario": ".scenario",
    "load_scenario": ".scenario",
    "validate_scenario": ".scenario",
    "SweepResult": ".sweep",
    "find_capacity": ".sweep",
    "sweep_rates": ".sweep",
    "with_rate": ".sweep",
    "Throughput": ".throughput",
    "offline_throughput": ".throughput",
    "throughput_of": ".throughput",
    "Workload": ".workload",
    "build_workload": ".workload",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
