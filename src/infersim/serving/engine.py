"""The discrete-event loop: arrivals, routing, and the replicas' steps, in time order.

Steps are the only events besides arrivals, so instead of one global event heap
each replica keeps its own next-step time (SimPy-style processes reduced to their
essence; entities / scheduler / event separation after Vidur, Agrawal et al.,
MLSys 2024). For an open-loop workload, before each arrival every replica runs
the steps that *start* before it (a step's batch is fixed when it starts; an
arrival at the same instant joins the step that starts then), then the router
picks a replica from the state at that instant. Replicas do not interact
between arrivals, so this is exact. The ``pp`` engines of a pipeline-parallel
replica do interact: their micro-batches share the replica's stages
(:class:`~infersim.serving.pp_stages.StageClock`), so they are advanced together,
always the engine whose next step forms first (:func:`advance_stage_coupled`).
Closed-loop workloads issue a user's next
request a think time after a completion, so their loop advances the replica with
the earliest next step, one step at a time, never past the next pending arrival
or another replica's next step.

:func:`prepare` builds what does not depend on the workload (model, device, cost
model, KV capacity); :func:`simulate` runs one workload on it. A rate sweep
prepares once and simulates many times.
"""

from __future__ import annotations

import heapq
import math
import time
from dataclasses import dataclass, field

import numpy as np

from ..errors import ConfigError, InfersimError
from ..hardware import get_device
from ..models import get_model
from ..perf.graph import GraphOptions
from ..perf.memory import activation_peak_bytes, weight_bytes_per_device
from ..perf.spec_step import speculative_step_model
from ..perf.transforms import prepare as prepare_transforms
from ..perf.parallel import Parallelism, Precision
from ..perf.step_time import StepTimeModel
from ..runtime import Runtime, get_runtime
from .cost import StepCost
from .kv_cache import KVCache
from .pp_stages import StageClock
from .replica import Replica
from .run_logs import RequestLog, StepLog
from .router import Router
from .scenario import OfflineArrivals, Scenario, SchedulerSpec
from .scheduler import SCHEDULERS, make_scheduler
from .workload import Workload, build_workload
from .memory_guard import SIMULATE_BYTES_PER_REQUEST, STREAM_BYTES_PER_REQUEST, check_fits_in_memory

INF = math.inf


@dataclass
class Deployment:
    """Everything about a scenario that a workload does not change."""

    scenario: Scenario
    model_name: str
    device_name: str
    parallel: Parallelism
    precision: Precision
    stm: StepTimeModel
    cost: StepCost
    blocks_per_engine: int
    kv_bytes_per_token: float  # per device
    weights_bytes: float  # per device
    kv_capacity_bytes: float  # per device
    peak_flops: float  # per device, in the GEMM dtype
    memory_bandwidth_bytes_per_s: float
    runtime: Runtime | None = None  # the serving engine modelled (None: kernels only)
    device_basis: str = "spec sheet only"  # what the device's efficiency numbers rest on (Device.basis)

    @property
    def engines_per_replica(self) -> int:
        return self.parallel.pp

    @property
    def n_engines(self) -> int:
        return self.scenario.parallelism.replicas * self.parallel.pp


def scenario_runtime(scenario) -> Runtime:
    """The runtime a scenario (or pipeline) names, or the default one; errors name the ``runtime`` key."""
    try:
        return get_runtime(scenario.runtime)
    except InfersimError as exc:
        raise ConfigError(scenario.origin, "runtime", str(exc)) from None


def effective_scheduler(scenario: Scenario, runtime: Runtime, device_memory_bytes: float, device_name: str,
                        max_model_len: int | None = None) -> SchedulerSpec:
    """The scenario's scheduler with the runtime's defaults for every key the scenario left unset
    (explicit settings always win); ``max_model_len``: the model's context length."""
    sched = scenario.scheduler
    offline = isinstance(scenario.workload.arrival, OfflineArrivals)
    defaults = runtime.scheduler_defaults(device_memory_bytes, device_name, scenario.parallelism.tp, offline,
                                          max_model_len=max_model_len)
    given = sched.model_fields_set
    changes = {k: v for k, v in defaults.as_dict().items() if k not in given}
    if not changes:
        return sched
    return SchedulerSpec.model_validate({**changes, **sched.model_dump(include=given)})


def prepare(scenario: Scenario, max_context_tokens: int | None = None) -> Deployment:
    """Model, device, runtime, cost model and KV capacity of a scenario (errors name the scenario key).

    The deployment's ``scenario`` carries the effective scheduler (the runtime's defaults filled in).
    ``max_context_tokens``: the longest request + 1 the cost tables cover (default: the model's
    context + 1, at most 131,073)."""
    origin = scenario.origin
    runtime = scenario_runtime(scenario)
    try:
        model = get_model(scenario.model)
    except InfersimError as exc:
        raise ConfigError(origin, "model", str(exc)) from None
    try:
        device = get_device(scenario.hardware, efficiency=scenario.efficiency)
    except InfersimError as exc:
        raise ConfigError(origin, "hardware", str(exc)) from None
    runtime = runtime.for_device(device.memory_bytes)
    sched = effective_scheduler(scenario, runtime, device.memory_bytes, device.name,
                                max_model_len=model.max_position_embeddings)
    runtime = runtime.with_scheduler_steps(sched.scheduler_steps)
    if sched is not scenario.scheduler:
        scenario = scenario.model_copy(update={"scheduler": sched})
    p = scenario.parallelism
    par = Parallelism(tp=p.tp, pp=p.pp, ep=p.ep, dp_attention=p.dp_attention)
    pr = scenario.precision
    prec = Precision(pr.weight, pr.activation, pr.kv_cache)
    try:
        par.validate(model)
    except InfersimError as exc:
        raise ConfigError(origin, "parallelism", str(exc)) from None
    if max_context_tokens is None:
        max_context_tokens = min(model.max_position_embeddings, 131072) + 1
    problem = model.context_problem(max_context_tokens - 1)
    if problem:
        raise ConfigError(origin, "workload", f"the longest request: {problem}; lower the length limits")
    transforms = scenario.parsed_transforms()
    if transforms:
        model, prec = prepare_transforms(model, prec, transforms)
    stm = StepTimeModel(model, device, par, prec, GraphOptions(attention_impl=sched.attention, transforms=transforms,
                                                                moe_routing=p.moe_routing))
    stm = speculative_step_model(stm, transforms)
    cost = StepCost(stm, max_context_tokens, runtime=runtime)
    weights = weight_bytes_per_device(model, par, prec, transforms).total
    budget = sched.token_budget
    act = float(activation_peak_bytes(model, par, prec, budget, min(budget, sched.max_num_seqs)))
    kv_capacity = runtime.kv_capacity_bytes(device.memory_bytes, weights, act, sched.memory_utilization)
    per_token = stm.kv_bytes_per_token()
    if kv_capacity <= 0:
        usable = device.memory_bytes * sched.memory_utilization
        raise ConfigError(origin, "parallelism",
                          f"{model.name} does not fit on {device.name} with tp={par.tp} pp={par.pp}: "
                          f"{weights / 1e9:.1f} GB of weights and {act / 1e9:.2f} GB of activations per "
                          f"device, {usable / 1e9:.1f} GB usable; use more devices, narrower dtypes, or a "
                          "smaller scheduler.max_num_batched_tokens")
    blocks = int(kv_capacity // (per_token * sched.block_size))
    if par.dp_attention:
        # each device caches only its own requests' KV: the replica's cache is tp devices' worth
        # (requests are assumed spread evenly over the attention ranks)
        blocks *= par.tp
    if sched.num_gpu_blocks_override is not None:
        blocks = sched.num_gpu_blocks_override
    per_engine = blocks // par.pp
    if per_engine < 1:
        raise ConfigError(origin, "parallelism", f"no room for a single KV block of {sched.block_size} tokens per "
                                                 f"pipeline engine ({blocks} blocks for {par.pp} engines)")
    return Deployment(scenario=scenario, model_name=model.name, device_name=device.name, parallel=par,
                      precision=prec, stm=stm, cost=cost, blocks_per_engine=per_engine,
                      kv_bytes_per_token=per_token, weights_bytes=weights, kv_capacity_bytes=kv_capacity,
                      peak_flops=device.peak_flops(prec.gemm_compute),
                      memory_bandwidth_bytes_per_s=device.memory_bandwidth_bytes_per_s, runtime=runtime,
                      device_basis=device.basis)


@dataclass
class SimulationResult:
    """Raw outcome of one simulation (metrics: :func:`infersim.serving.metrics.summarize`)."""

    scenario: Scenario
    deployment: Deployment
    workload: Workload
    requests: dict[str, np.ndarray]
    engines: list[StepLog]
    engine_replica: list[int]
    kv_blocks: int  # per engine
    kv_stats: list[dict]
    wall_s: float = 0.0
    extra: dict = field(default_factory=dict)


def _check_fits(scenario: Scenario, dep: Deployment, wl: Workload) -> None:
    sched = scenario.scheduler
    origin = scenario.origin
    bs = sched.block_size
    total = dep.blocks_per_engine
    watermark = int(sched.watermark * total)
    need = -(-(wl.input_tokens + wl.output_tokens) // bs)
    worst = int(np.argmax(need)) if need.size else 0
    if need.size and need[worst] + watermark > total:
        raise ConfigError(origin, "workload",
                          f"request {worst} ({int(wl.input_tokens[worst])} prompt + "
                          f"{int(wl.output_tokens[worst])} output tokens) needs {int(need[worst])} KV blocks, "
                          f"but a replica's cache holds {total} blocks of {bs} tokens ({watermark} kept free); "
                          "lower the length limits or give the KV cache more memory")
    policy = SCHEDULERS[sched.policy]
    if not policy.split_prompts and wl.n:
        # a step prefills whole prompts, and a recompute re-prefills prompt + generated tokens
        longest = wl.input_tokens + (wl.output_tokens - 1 if policy.preempts else 0)
        i = int(np.argmax(longest))
        if longest[i] > sched.token_budget:
            raise ConfigError(origin, "scheduler.max_num_batched_tokens",
                              f"request {i} needs {int(longest[i])} tokens in one step but the cap is "
                              f"{sched.token_budget}; raise it (or use policy: chunked)")


def simulate(scenario: Scenario, workload: Workload | None = None, deployment: Deployment | None = None,
             sink=None) -> SimulationResult:
    """Run one scenario (its own workload unless one is given) and return the raw result (whose
    ``scenario`` carries the effective scheduler: the runtime's defaults for unset keys).

    ``sink`` (a :class:`~infersim.serving.streaming.RequestSink`) streams the run: it provides the
    request log, takes requests and steps out of it every ``sink.chunk`` arrivals, and the result
    then has no per-request arrays (:func:`~infersim.serving.streaming.simulate_streaming`)."""
    start = time.perf_counter()
    per_request = SIMULATE_BYTES_PER_REQUEST if sink is None else STREAM_BYTES_PER_REQUEST
    if workload is None and scenario.workload.requests:  # before the workload's arrays are allocated
        check_fits_in_memory(scenario.workload.requests, per_request, scenario.origin)
    wl = workload if workload is not None else build_workload(scenario)
    check_fits_in_memory(wl.n, per_request, scenario.origin)
    if deployment is None:
        max_ctx = int((wl.input_tokens + wl.output_tokens).max()) + 1 if wl.n else 2
        deployment = prepare(scenario, max_context_tokens=max_ctx)
    elif wl.n:
        deployment.cost.ensure_context(int((wl.input_tokens + wl.output_tokens).max()) + 1)
    dep = deployment
    if dep.scenario.scheduler is not scenario.scheduler:  # the runtime's defaults filled in
        scenario = scenario.model_copy(update={"scheduler": dep.scenario.scheduler})
    _check_fits(scenario, dep, wl)
    if sink is None:
        log = RequestLog(wl.arrival_s.tolist(), wl.input_tokens.tolist(), wl.output_tokens.tolist(),
                         wl.prefix_group.tolist(), wl.prefix_tokens.tolist())
    else:
        log = sink.request_log(scenario, wl)
    engines, replicas = build_replicas(dep, log, scenario.parallelism.replicas)
    router = Router(scenario.router.policy, replicas)
    private = len(engines) == 1 or (scenario.router.policy == "round_robin" and dep.engines_per_replica == 1)
    for e in engines:
        e.state_private = private
    hook = None if sink is None else (lambda issued: sink.drain(engines, issued))
    chunk = 0 if sink is None else sink.chunk
    if wl.closed_loop:
        _closed_loop(engines, router, log, wl, hook, chunk)
    else:
        _open_loop(engines, router, wl, hook, chunk)
    if sink is not None:
        sink.drain(engines, None)
        return _result(scenario, dep, wl, {}, engines, start)
    requests = {
        "arrival_s": np.array(log.arrival_s, dtype=np.float64),
        "input_tokens": np.asarray(wl.input_tokens, dtype=np.int64),
        "output_tokens": np.asarray(wl.output_tokens, dtype=np.int64),
        "prefix_group": np.asarray(wl.prefix_group, dtype=np.int64),
        "prefix_hit_tokens": np.array(log.prefix_hit_tokens, dtype=np.int64),
        "replica": np.array(log.replica, dtype=np.int64),
        "first_scheduled_s": np.array(log.first_scheduled_s, dtype=np.float64),
        "first_token_s": np.array(log.first_token_s, dtype=np.float64),
        "completion_s": np.array(log.completion_s, dtype=np.float64),
        "preemptions": np.array(log.preemptions, dtype=np.int64),
    }
    return _result(scenario, dep, wl, requests, engines, start)


def _result(scenario: Scenario, dep: Deployment, wl: Workload, requests: dict, engines: list[Replica],
            start: float) -> SimulationResult:
    kv_stats = [{"hit_tokens": e.kv.hit_tokens, "lookup_tokens": e.kv.lookup_tokens,
                 "evicted_blocks": e.kv.evicted_blocks, "used_blocks_at_end": e.kv.used,
                 "free_blocks_at_end": e.kv.free, "evictable_blocks_at_end": e.kv.evictable} for e in engines]
    return SimulationResult(scenario=scenario, deployment=dep, workload=wl, requests=requests,
                            engines=[e.steps for e in engines], engine_replica=[e.replica_id for e in engines],
                            kv_blocks=dep.blocks_per_engine, kv_stats=kv_stats,
                            wall_s=time.perf_counter() - start)


def build_replicas(dep: Deployment, log: RequestLog, n_replicas: int, first_index: int = 0
                   ) -> tuple[list[Replica], list[list[Replica]]]:
    """``n_replicas`` replicas of a deployment (``pp`` engines each, with their KV caches and
    schedulers) writing to ``log``: (all engines, engines per replica)."""
    sched = dep.scenario.scheduler
    engines: list[Replica] = []
    replicas: list[list[Replica]] = []
    pp = dep.engines_per_replica
    for r in range(n_replicas):
        group = []
        stages = StageClock(pp) if pp > 1 else None  # the replica's pipeline stages, shared by its engines
        for v in range(dep.engines_per_replica):
            kv = KVCache(dep.blocks_per_engine, sched.block_size, sched.watermark, sched.prefix_caching)
            e = Replica(first_index + len(engines), r, dep.cost, kv, log, max_num_seqs=sched.max_num_seqs,
                        token_budget=sched.token_budget, preemption=sched.preemption,
                        swap_bytes_per_s=sched.swap_bandwidth_gb_per_s * 1e9,
                        kv_bytes_per_token=dep.kv_bytes_per_token)
            e.scheduler = make_scheduler(sched.policy)
            e.prefill_chunk_cap = sched.long_prefill_token_threshold or sched.token_budget
            e.stages = stages
            engines.append(e)
            group.append(e)
        replicas.append(group)
    return engines, replicas


def _open_loop(engines: list[Replica], router: Router, wl: Workload, on_chunk=None, chunk: int = 0) -> None:
    """Arrivals in order; ``on_chunk(issued)`` (if given) after every ``chunk`` arrivals, between steps."""
    arrivals = wl.arrival_s.tolist() if on_chunk is None else None
    n = wl.n
    size = chunk if on_chunk is not None else max(n, 1)
    coupled = [grp for grp in router.replicas if len(grp) > 1]  # pipeline-parallel replicas
    single = [e for e in engines if e.stages is None] if coupled else engines
    for lo in range(0, n, size):
        hi = min(n, lo + size)
        part = arrivals[lo:hi] if arrivals is not None else wl.arrival_s[lo:hi].tolist()
        if len(engines) == 1:
            e = engines[0]
            step = e.scheduler.step
            for rid, ta in enumerate(part, lo):
                while e.active and e.t < ta:
                    step(e, ta)
                e.enqueue(rid, ta)
        else:
            for rid, ta in enumerate(part, lo):
                for e in single:
                    step = e.scheduler.step
                    while e.active and e.t < ta:
                        step(e, ta)
                for grp in coupled:
                    advance_stage_coupled(grp, ta)
                router.route(ta).enqueue(rid, ta)
        if on_chunk is not None:
            on_chunk(hi)
    for e in single:
        step = e.scheduler.step
        while e.active:
            step(e, INF)
    for grp in coupled:
        advance_stage_coupled(grp, INF)


def advance_stage_coupled(group: list[Replica], horizon: float) -> None:
    """Run the steps of one pipeline-parallel replica's engines that start before ``horizon``, in
    the order they start (ties: the lower engine first), so that their micro-batches pass the shared
    stages in that order. An engine's decode run stops before the next step another engine of the
    replica forms (its micro-batch could hold a stage by then)."""
    while True:
        best = None
        bt = second = horizon
        for e in group:
            if e.active:
                t = e.t
                if t < bt:
                    second = bt
                    best, bt = e, t
                elif t < second:
                    second = t
        if best is None:
            return
        best.scheduler.step(best, second if second > bt else math.nextafter(bt, INF))


def _closed_loop(engines: list[Replica], router: Router, log: RequestLog, wl: Workload, on_chunk=None,
                 chunk: int = 0) -> None:
    """Users issue requests a think time after their last completes; ``on_chunk(issued)`` (if
    given) after every ``chunk`` arrivals, between steps."""
    n = wl.n
    think = wl.think_s.tolist()
    users = min(wl.closed_loop_users, n)
    pending: list[tuple[float, int]] = [(think[i], i) for i in range(users)]
    heapq.heapify(pending)
    issued = [users]

    def on_complete(rid: int, t: float) -> None:
        k = issued[0]
        if k < n:
            heapq.heappush(pending, (t + think[k], k))
            issued[0] = k + 1

    for e in engines:
        e.on_complete = on_complete
    while True:
        ta = pending[0][0] if pending else INF
        best = None
        bt = INF
        second = INF
        for e in engines:
            if e.active:
                if e.t < bt:
                    second = bt
                    best, bt = e, e.t
                elif e.t < second:
                    second = e.t
        if best is None and not pending:
            break
        if ta <= bt:
            ta, rid = heapq.heappop(pending)
            log.arrival_s[rid] = ta
            router.route(ta).enqueue(rid, ta)
            if on_chunk is not None and (rid + 1) % chunk == 0:
                on_chunk(rid + 1)
        else:
            # another replica's completion (at or after its next step) may issue a request
            horizon = min(ta, second)
            if horizon <= bt:  # tied with another replica: run this one's step alone (a decode run
                horizon = math.nextafter(bt, INF)  # with a horizon at its own start runs no step)
            best.scheduler.step(best, horizon)
