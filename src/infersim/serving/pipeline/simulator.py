"""The multi-stage event loop: requests flowing through a graph of engines.

Entities are the LLM engines (serving :class:`~infersim.serving.replica.Replica` objects, with
their schedulers, KV caches and step costs, unchanged) and the batching servers
(:class:`~infersim.serving.pipeline.servers.BatchServer`). Events are kept in one heap of
``(time, sequence number, action)``: request arrivals, stage hand-offs, KV transfers landing,
server batches ending. Each iteration runs whichever comes first, the earliest event or the
earliest entity's next step (an event at the same instant first, so that a request arriving when
a step starts joins it, as in the single-engine simulator); ties between events go by sequence
number, so a run is deterministic.

An entity's step is run with a horizon = the earliest of the next event and every other entity's
next step: a decode run (many identical steps at once) stops before a step that would start at
or after it, since another engine could hand a request over by then. A hand-off produced inside a
step (a request completing, a first token) is never applied there: it is queued as an event at
its time and applied by the loop, so no engine ever receives a request before the instant it is
sent. This is exact: every step starts no earlier than every event that could change its batch.

Per request, a stage starts when all its predecessors are done. What each stage kind does:

* ``llm`` / ``reasoning``: prefill + decode on one replica (its first token is the stage's first
  token). ``branches`` > 1: when the shared prefill emits its first token, the other branches join
  the same replica's decode batch holding their own copy of the prompt's KV (the copies are
  counted separately, which overstates their memory: vLLM shares the prompt's blocks);
* ``llm_prefill``: a one-token request (the first token of the response) on the prefill pool;
* ``llm_decode``: the KV transfer (:func:`~infersim.perf.disagg.kv_transfer_time_s`, bytes from
  :func:`~infersim.perf.disagg.kv_transfer_bytes`) from the prefill engine over the stage's link,
  with ``min(devices of a prefill replica, of a decode replica)`` links in parallel, overlapped
  layer by layer with the request's prefill (first scheduled to first token) when ``layerwise``;
  then the request waits for KV room in a decode replica (admission by KV capacity, through the
  swap-in path) and decodes its remaining tokens. Transfers do not contend for the link. The
  prefill replica frees the request's KV when its prefill ends (DistServe keeps it until the
  decode side pulls it, which this model does not charge);
* ``encoder`` / ``retrieval``: a job on a batching server (one query per request, ``queries`` for
  a retrieval stage);
* ``kv_retrieval``: the next LLM stage's leading tokens (the shared prefix, or ``tokens``) are
  fetched from the KV store; on a hit that stage needs their cache blocks but does not compute them;
* iterative retrieval (``retrieve_every_tokens``): after every N generated tokens the request
  leaves its replica's batch, queries the retrieval engine and comes back to the same replica,
  admitted like a swapped request (its KV is kept off the GPU meanwhile at no cost); the other
  requests keep decoding.

Request metrics follow the single-engine definitions with the pipeline's end points: arrival =
arrival at the first stage; first token = the first output token of the final generation stage
(for ``llm_decode`` the one its prefill emits; for a final stage that generates nothing, its
completion); completion = the end of the final stage; output tokens = the final stage's per branch.
"""

from __future__ import annotations

import heapq
import math
import time
from dataclasses import dataclass, field

import numpy as np

from ...errors import ConfigError
from ...perf.disagg import kv_transfer_bytes, kv_transfer_time_s
from ..engine import _check_fits, build_replicas
from ..memory_guard import PIPELINE_BYTES_PER_REQUEST, check_fits_in_memory
from ..replica import Replica
from ..run_logs import RequestLog
from ..router import Router
from ..workload import Workload, build_workload, sample_lengths
from .deploy import (
    EncoderEngine,
    KVStoreEngine,
    LLMEngine,
    PipelineDeployment,
    RetrievalEngine,
    ensure_context,
    prepare_pipeline,
    resolve_link,
)
from .servers import BatchServer, StorageTier
from .spec import GENERATION_KINDS, PREFILLING_KINDS, PipelineScenario, StageSpec

INF = math.inf
NAN = math.nan
_STAGE_STREAM = 7907  # spawn keys of the stages' own random streams (apart from the workload's)


@dataclass
class StagePlan:
    """One stage's per-request token counts and its place in the graph."""

    index: int
    spec: StageSpec
    preds: list[int]
    succs: list[int]
    input_tokens: np.ndarray  # prompt (llm stages, encoder: tokens per query)
    output_tokens: np.ndarray  # generated per branch (generation stages), 1 for llm_prefill
    prefix_group: np.ndarray
    prefix_tokens: np.ndarray
    kv_tokens: np.ndarray | None = None  # kv_retrieval: tokens fetched

    @property
    def kind(self) -> str:
        return self.spec.kind


def _stage_rng(seed: int, stage: int, stream: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_STAGE_STREAM, stage, stream)))


def plan_stages(sc: PipelineScenario, wl: Workload) -> list[StagePlan]:
    """Token counts of every stage, deterministic in the seed (each stage has its own streams)."""
    n = wl.n
    plans: list[StagePlan] = []
    for i, st in enumerate(sc.graph):
        preds, succs = sc.predecessors(i), sc.successors(i)
        group, prefix = wl.prefix_group, wl.prefix_tokens
        if st.kind == "llm_decode":
            src = plans[preds[0]]
            inp, group, prefix = src.input_tokens, src.prefix_group, src.prefix_tokens
        elif st.input_tokens is None:
            inp = wl.input_tokens + st.extra_input_tokens
        else:
            inp = sample_lengths(st.input_tokens, n, _stage_rng(sc.seed, i, 0), sc, f"graph[{i}].input_tokens") \
                + st.extra_input_tokens
            group, prefix = np.full(n, -1, dtype=np.int64), np.zeros(n, dtype=np.int64)
        if st.kind in GENERATION_KINDS:
            out = wl.output_tokens if st.output_tokens is None else sample_lengths(
                st.output_tokens, n, _stage_rng(sc.seed, i, 1), sc, f"graph[{i}].output_tokens")
        else:
            out = np.ones(n, dtype=np.int64)
        plans.append(StagePlan(i, st, preds, succs, np.asarray(inp, dtype=np.int64),
                               np.asarray(out, dtype=np.int64), np.asarray(group), np.asarray(prefix)))
    for p in plans:
        if p.kind == "kv_retrieval":
            nxt = plans[p.succs[0]]
            want = nxt.prefix_tokens if p.spec.tokens == "prefix" else np.full(n, int(p.spec.tokens))
            p.kv_tokens = np.minimum(want, nxt.input_tokens - 1).astype(np.int64)
    return plans


class LLMPool:
    """The replicas of one LLM engine in a run. Each (stage, branch) that uses the pool gets a slot;
    a request's local id in the pool is ``slot * n + request``."""

    def __init__(self, engine: LLMEngine, n: int, slots: list[tuple[int, int]], first_index: int) -> None:
        self.engine = engine
        self.n = n
        self.slots = slots
        self.slot_of = {key: k for k, key in enumerate(slots)}
        size = n * len(slots)
        self.log = RequestLog([NAN] * size, [1] * size, [1] * size, [-1] * size, [0] * size)
        dep = engine.deployment
        self.engines, self.replicas = build_replicas(dep, self.log, engine.replicas, first_index)
        self.router = Router(dep.scenario.router.policy, self.replicas)
        self.where: list[Replica | None] = [None] * size
        for e in self.engines:
            e.state_private = False  # hand-offs may arrive at any time (see Replica.decode_run)

    def lrid(self, stage: int, branch: int, rid: int) -> int:
        return self.slot_of[(stage, branch)] * self.n + rid

    def decode(self, lrid: int) -> tuple[int, int, int]:
        slot, rid = divmod(lrid, self.n)
        stage, branch = self.slots[slot]
        return stage, branch, rid

    def used(self) -> list[int]:
        return [i for i, a in enumerate(self.log.arrival_s) if not math.isnan(a)]


class _ReplicaClock:
    """A replica as an entity of the loop."""

    __slots__ = ("r",)

    def __init__(self, r: Replica) -> None:
        self.r = r

    def next_time(self) -> float:
        r = self.r
        return r.t if r.active else INF

    def advance(self, horizon: float) -> None:
        r = self.r
        if horizon <= r.t:  # tied with another entity: run this step alone
            horizon = math.nextafter(r.t, INF)
        r.scheduler.step(r, horizon)


class _StageRouter:
    """Picks (pool, unit) for a stage over the engines it names (see StageRouteSpec)."""

    def __init__(self, spec: StageSpec, pools: list, routers: list[Router], units: list[list]) -> None:
        self.policy = spec.route.policy
        self.thresholds = spec.route.thresholds_tokens
        self.pools = pools
        self.routers = routers
        self.owner = {id(u): p for p, us in zip(pools, units) for u in us}
        if len(pools) > 1 and self.policy != "size":
            self.joint = Router(self.policy, [grp for r in routers for grp in r.replicas])
        else:
            self.joint = None

    def route(self, t: float, tokens: int):
        if len(self.pools) == 1:
            return self.pools[0], self.routers[0].route(t)
        if self.joint is not None:
            u = self.joint.route(t)
            return self.owner[id(u)], u
        k = next((i for i, th in enumerate(self.thresholds) if tokens <= th), len(self.thresholds))
        return self.pools[k], self.routers[k].route(t)


@dataclass
class PipelineResult:
    """Raw outcome of one pipeline simulation (metrics: :func:`.metrics.summarize_pipeline`)."""

    scenario: PipelineScenario
    deployment: PipelineDeployment
    workload: Workload
    plans: list[StagePlan]
    requests: dict[str, np.ndarray]
    stage_start_s: np.ndarray  # (stages, n)
    stage_end_s: np.ndarray
    transfer_s: np.ndarray  # (stages, n): KV transfer of llm_decode stages
    kv_level: np.ndarray  # (stages, n): level that served a kv_retrieval (-1: none)
    stalls: np.ndarray  # (n,) iterative retrievals per request
    pools: dict[str, LLMPool]
    servers: dict[str, list[BatchServer]]
    tiers: dict[str, StorageTier]
    wall_s: float = 0.0
    extra: dict = field(default_factory=dict)


class PipelineRun:
    def __init__(self, sc: PipelineScenario, dep: PipelineDeployment, wl: Workload,
                 plans: list[StagePlan] | None = None) -> None:
        self.sc, self.dep, self.wl = sc, dep, wl
        n = wl.n
        self.n = n
        self.plans = plans = plans if plans is not None else plan_stages(sc, wl)
        self.final = sc.final_stage
        self.heap: list = []
        self.seq = 0
        S = len(plans)
        self.start_s = [[NAN] * n for _ in range(S)]
        self.end_s = [[NAN] * n for _ in range(S)]
        self.first_token = [[NAN] * n for _ in range(S)]
        self.transfer = [[NAN] * n for _ in range(S)]
        self.level = [[-1] * n for _ in range(S)]
        self.pending = [[len(p.preds)] * n for p in plans]
        self.branches_left = [[p.spec.branches] * n for p in plans]
        self.loaded = [[0] * n for _ in range(S)]
        self.target = [[0] * n for _ in range(S)]  # segment end (tokens generated) of iterative retrieval
        self.stall_at = [NAN] * n
        self.stalls = [0] * n
        self.placed: list[list] = [[None] * n for _ in range(S)]
        self._build_engines()
        self._check_capacity()

    # ----- setup ------------------------------------------------------------------------------------
    def _build_engines(self) -> None:
        sc, dep, plans = self.sc, self.dep, self.plans
        slots: dict[str, list[tuple[int, int]]] = {}
        for p in plans:
            if p.kind in GENERATION_KINDS or p.kind == "llm_prefill":
                for name in p.spec.engines:
                    slots.setdefault(name, []).extend((p.index, b) for b in range(p.spec.branches))
        self.pools: dict[str, LLMPool] = {}
        self.servers: dict[str, list[BatchServer]] = {}
        self.tiers: dict[str, StorageTier] = {}
        entities = []
        index = 0
        for name, eng in dep.engines.items():
            if isinstance(eng, LLMEngine):
                if name not in slots:
                    continue
                pool = LLMPool(eng, self.n, slots[name], index)
                index += len(pool.engines)
                for e in pool.engines:
                    e.on_complete = self._llm_callback(pool, self._llm_done)
                    e.on_first_token = self._llm_callback(pool, self._first_token)
                    entities.append(_ReplicaClock(e))
                self.pools[name] = pool
            elif isinstance(eng, EncoderEngine):
                units = [BatchServer(i, eng.max_batch, self._encoder_time(eng), self.schedule, self._server_done)
                         for i in range(eng.servers)]
                self.servers[name] = units
                entities.extend(units)
            elif isinstance(eng, RetrievalEngine):
                units = [BatchServer(g, eng.max_batch, self._retrieval_time(eng, g), self.schedule,
                                     self._server_done) for g in range(len(eng.group_servers))]
                self.servers[name] = units
                entities.extend(units)
            elif isinstance(eng, KVStoreEngine):
                self.tiers[name] = StorageTier(eng.levels)
        self.entities = entities
        self.routers: list[_StageRouter | None] = []
        for p in plans:
            self.routers.append(self._stage_router(p.spec) if p.kind != "kv_retrieval" else None)
        self.iter_routers = {p.index: self._stage_router(p.spec, [p.spec.retrieval_engine])
                             for p in plans if p.spec.retrieval_engine}
        self.transfer_params = {p.index: self._transfer_params(p) for p in plans if p.kind == "llm_decode"}
        self.kv_uniform = {p.index: _stage_rng(sc.seed, p.index, 2).random(self.n).tolist()
                           for p in plans if p.kind == "kv_retrieval"}

    def _stage_router(self, spec: StageSpec, names: list[str] | None = None) -> _StageRouter:
        pools, routers, units = [], [], []
        for name in names or spec.engines:
            if name in self.pools:
                pool = self.pools[name]
                pools.append(pool)
                routers.append(pool.router)
                units.append(pool.engines)
            else:
                us = self.servers[name]
                pools.append(us)
                routers.append(Router(self.dep.engines[name].router_policy, [[u] for u in us]))
                units.append(us)
        return _StageRouter(spec, pools, routers, units)

    def _transfer_params(self, plan: StagePlan) -> tuple:
        """(model, kv dtype, aggregate bandwidth, latency, layers or 1) of a KV transfer."""
        prefill_stage = self.plans[plan.preds[0]]
        src: LLMEngine = self.dep.engines[prefill_stage.spec.engines[0]]
        dst: LLMEngine = self.dep.engines[plan.spec.engines[0]]
        spec = plan.spec.transfer
        link_ref = spec.link if spec is not None else "scale_out"
        device = src.devices[0][0]
        link = resolve_link(self.sc, link_ref, device)
        links = min(src.devices_per_replica, dst.devices_per_replica)
        if src.model.name != dst.model.name:
            raise ConfigError(self.sc.origin, f"graph[{plan.index}].engine",
                              f"the decode engine runs {dst.model.name} but its prefill stage's engine runs "
                              f"{src.model.name}; a KV cache moves only between replicas of one model")
        layers = src.model.num_layers if (spec is not None and spec.layerwise) else 1
        return (src.model, src.deployment.precision.kv_cache, link.bandwidth_bytes_per_s * links, link.latency_s,
                layers)

    def _check_capacity(self) -> None:
        """Every LLM stage's largest request fits its engines' KV caches (and step budgets)."""
        wl = self.wl
        for p in self.plans:
            if p.kind not in GENERATION_KINDS and p.kind != "llm_prefill":
                continue
            out = p.output_tokens if p.kind != "llm_prefill" else np.ones(self.n, dtype=np.int64)
            check = Workload(wl.arrival_s, p.input_tokens, out, p.prefix_group, p.prefix_tokens)
            for name in p.spec.engines:
                eng = self.dep.engines[name]
                try:
                    if p.kind == "llm_decode":  # no prefill step on the decode side: only the KV must fit
                        _check_fits(eng.deployment.scenario.with_changes(**{"scheduler.policy": "chunked"}),
                                    eng.deployment, check)
                    else:
                        _check_fits(eng.deployment.scenario, eng.deployment, check)
                except ConfigError as exc:
                    raise ConfigError(self.sc.origin, f"graph[{p.index}]", f"on engine '{name}': {exc.problem}"
                                      ) from None

    def _encoder_time(self, eng: EncoderEngine):
        plans = self.plans

        def batch_time(jobs: list) -> float:
            return eng.batch_time_s([int(plans[s].input_tokens[rid]) for s, rid, _ in jobs])
        return batch_time

    def _retrieval_time(self, eng: RetrievalEngine, group: int):
        plans = self.plans

        def batch_time(jobs: list) -> float:
            q = sum(plans[s].spec.queries if tag is None else 1 for s, rid, tag in jobs)
            return eng.batch_time_s(q, group)
        return batch_time

    def _llm_callback(self, pool: LLMPool, action):
        schedule = self.schedule

        def callback(lrid: int, t: float) -> None:
            schedule(t, action, pool, lrid)  # applied by the loop, never inside the step
        return callback

    # ----- the loop ---------------------------------------------------------------------------------
    def schedule(self, t: float, action, *args) -> None:
        heapq.heappush(self.heap, (t, self.seq, action, args))
        self.seq += 1

    def run(self) -> None:
        sources = [p.index for p in self.plans if not p.preds]
        for rid, ta in enumerate(self.wl.arrival_s.tolist()):
            self.schedule(ta, self._arrive, rid, sources)
        heap, entities = self.heap, self.entities
        pop = heapq.heappop
        while True:
            ta = heap[0][0] if heap else INF
            best = None
            bt = second = INF
            for e in entities:
                nt = e.next_time()
                if nt < bt:
                    second = bt
                    best, bt = e, nt
                elif nt < second:
                    second = nt
            if best is None and not heap:
                break
            if ta <= bt:
                t, _, action, args = pop(heap)
                action(t, *args)
            else:
                best.advance(min(ta, second))

    # ----- actions (all run by the loop at their time) ------------------------------------------------
    def _arrive(self, t: float, rid: int, sources: list[int]) -> None:
        for s in sources:
            self._start(t, s, rid)

    def _start(self, t: float, s: int, rid: int) -> None:
        plan = self.plans[s]
        self.start_s[s][rid] = t
        kind = plan.kind
        if kind in PREFILLING_KINDS:
            pool, eng = self.routers[s].route(t, int(plan.input_tokens[rid]))
            self.placed[s][rid] = pool
            lrid = pool.lrid(s, 0, rid)
            target = 1 if kind == "llm_prefill" else self._first_target(plan, rid)
            self._write_log(pool, lrid, t, plan, rid, target)
            pool.where[lrid] = eng
            eng.enqueue(lrid, t, loaded=self.loaded[s][rid])
        elif kind == "llm_decode":
            if plan.output_tokens[rid] <= 1:  # the prefill's token was the whole response
                self._finish(t, s, rid)
                return
            model, dtype, bw, latency, layers = self.transfer_params[s]
            src = self.plans[plan.preds[0]]
            ppool = self.placed[src.index][rid]
            plrid = ppool.lrid(src.index, 0, rid)
            window = ppool.log.first_token_s[plrid] - ppool.log.first_scheduled_s[plrid]
            n_bytes = float(kv_transfer_bytes(model, dtype, int(plan.input_tokens[rid]))[0])
            d = float(kv_transfer_time_s(n_bytes, bw, latency, layers=layers, overlap_with_s=window))
            self.transfer[s][rid] = d
            self.schedule(t + d, self._land, s, rid)
        elif kind in ("encoder", "retrieval"):
            pool, unit = self.routers[s].route(t, int(plan.input_tokens[rid]))
            self.placed[s][rid] = pool
            unit.enqueue((s, rid, None), t)
        else:  # kv_retrieval
            tier = self.tiers[plan.spec.engines[0]]
            nxt = self.plans[plan.succs[0]]
            tokens = int(plan.kv_tokens[rid])
            end, level = t, -1
            if tokens > 0:
                eng: LLMEngine = self.dep.engines[nxt.spec.engines[0]]
                n_bytes = float(kv_transfer_bytes(eng.model, eng.deployment.precision.kv_cache, tokens)[0])
                end, level = tier.fetch(t, n_bytes, self.kv_uniform[s][rid])
                if level < len(tier.levels):
                    self.loaded[nxt.index][rid] = tokens
            self.level[s][rid] = level
            self.schedule(end, self._finish, s, rid)

    def _first_target(self, plan: StagePlan, rid: int, generated: int = 0) -> int:
        out = int(plan.output_tokens[rid])
        every = plan.spec.retrieve_every_tokens
        target = out if every is None else min(out, generated + every)
        self.target[plan.index][rid] = target
        return target

    def _write_log(self, pool: LLMPool, lrid: int, t: float, plan: StagePlan, rid: int, target: int) -> None:
        log = pool.log
        log.arrival_s[lrid] = t
        log.input_tokens[lrid] = int(plan.input_tokens[rid])
        log.output_tokens[lrid] = target
        log.prefix_group[lrid] = int(plan.prefix_group[rid])
        log.prefix_tokens[lrid] = int(plan.prefix_tokens[rid])

    def _land(self, t: float, s: int, rid: int) -> None:
        """The KV of ``rid`` is on the decode side: every branch waits for room in one replica."""
        plan = self.plans[s]
        pool, eng = self.routers[s].route(t, int(plan.input_tokens[rid]))
        self.placed[s][rid] = pool
        first = self.first_token[plan.preds[0]][rid]
        self.first_token[s][rid] = first
        target = self._first_target(plan, rid, 1)
        for b in range(plan.spec.branches):
            lrid = pool.lrid(s, b, rid)
            self._write_log(pool, lrid, t, plan, rid, target)
            pool.log.first_token_s[lrid] = first
            pool.where[lrid] = eng
            eng.enqueue_transferred(lrid, t, int(plan.input_tokens[rid]), 1, target, first)

    def _first_token(self, t: float, pool: LLMPool, lrid: int) -> None:
        s, b, rid = pool.decode(lrid)
        if b or self.first_token[s][rid] == self.first_token[s][rid]:
            return
        self.first_token[s][rid] = t
        plan = self.plans[s]
        if plan.spec.branches > 1 and plan.kind != "llm_decode":
            eng = pool.where[lrid]
            for k in range(1, plan.spec.branches):  # the other branches share this prefill
                other = pool.lrid(s, k, rid)
                self._write_log(pool, other, t, plan, rid, int(plan.output_tokens[rid]))
                pool.log.first_token_s[other] = t
                pool.where[other] = eng
                eng.enqueue_transferred(other, t, int(plan.input_tokens[rid]), 1, int(plan.output_tokens[rid]), t)

    def _llm_done(self, t: float, pool: LLMPool, lrid: int) -> None:
        s, _, rid = pool.decode(lrid)
        plan = self.plans[s]
        done = self.target[s][rid]
        if plan.spec.retrieval_engine is not None and done < int(plan.output_tokens[rid]):
            self.stall_at[rid] = t
            self.stalls[rid] += 1
            _, unit = self.iter_routers[s].route(t, int(plan.input_tokens[rid]))
            unit.enqueue((s, rid, "iterative"), t)
            return
        self.branches_left[s][rid] -= 1
        if self.branches_left[s][rid] == 0:
            self._finish(t, s, rid)

    def _resume(self, t: float, s: int, rid: int) -> None:
        """Back from an iterative retrieval: the request rejoins its replica for the next segment."""
        plan = self.plans[s]
        pool = self.placed[s][rid]
        lrid = pool.lrid(s, 0, rid)
        generated = self.target[s][rid]
        target = self._first_target(plan, rid, generated)
        pool.log.output_tokens[lrid] = target
        pool.where[lrid].enqueue_transferred(lrid, t, int(plan.input_tokens[rid]), generated, target,
                                             self.stall_at[rid])

    def _server_done(self, t: float, job: tuple) -> None:
        s, rid, tag = job
        if tag is None:
            self._finish(t, s, rid)
        else:
            self._resume(t, s, rid)

    def _finish(self, t: float, s: int, rid: int) -> None:
        self.end_s[s][rid] = t
        for nxt in self.plans[s].succs:
            left = self.pending[nxt][rid] - 1
            self.pending[nxt][rid] = left
            if left == 0:
                self._start(t, nxt, rid)

    # ----- result -----------------------------------------------------------------------------------
    def result(self, wall_s: float) -> PipelineResult:
        wl, plans, f = self.wl, self.plans, self.final
        final = plans[f]
        completion = np.array(self.end_s[f])
        if final.kind in GENERATION_KINDS:
            first = np.array(self.first_token[f])
            out = final.output_tokens
            branches = final.spec.branches
        else:
            first, out, branches = completion.copy(), np.ones(self.n, dtype=np.int64), 1
        starts = np.array(self.start_s)
        scheduled = np.full(self.n, NAN)  # service start at the first stage, when it is an LLM stage
        first_stage = plans[0]
        if first_stage.kind in PREFILLING_KINDS:
            for rid in range(self.n):
                pool = self.placed[0][rid]
                if pool is not None:
                    scheduled[rid] = pool.log.first_scheduled_s[pool.lrid(0, 0, rid)]
        requests = {
            "arrival_s": np.asarray(wl.arrival_s, dtype=np.float64),
            "input_tokens": np.asarray(wl.input_tokens, dtype=np.int64),
            "output_tokens": np.asarray(out, dtype=np.int64),
            "total_output_tokens": np.asarray(out, dtype=np.int64) * branches,
            "first_scheduled_s": scheduled,
            "first_token_s": first,
            "completion_s": completion,
        }
        return PipelineResult(self.sc, self.dep, wl, plans, requests, starts, np.array(self.end_s),
                              np.array(self.transfer), np.array(self.level), np.array(self.stalls),
                              self.pools, self.servers, self.tiers, wall_s)


def simulate_pipeline(sc: PipelineScenario, workload: Workload | None = None,
                      deployment: PipelineDeployment | None = None) -> PipelineResult:
    """Run one pipeline scenario (its own workload unless one is given) and return the raw result."""
    start = time.perf_counter()
    if sc.workload.arrival is not None and sc.workload.arrival.process == "closed_loop":
        raise ConfigError(sc.origin, "workload.arrival.process",
                          "pipelines take open-loop arrivals (poisson, gamma, constant) or a trace")
    if workload is None and sc.workload.requests:  # before the workload's arrays are allocated
        check_fits_in_memory(sc.workload.requests, PIPELINE_BYTES_PER_REQUEST, sc.origin)
    wl = workload if workload is not None else build_workload(sc)
    check_fits_in_memory(wl.n, PIPELINE_BYTES_PER_REQUEST, sc.origin)
    plans = plan_stages(sc, wl)
    longest = max((int((p.input_tokens + p.output_tokens).max()) + 1 for p in plans if wl.n), default=2)
    if deployment is None:
        deployment = prepare_pipeline(sc, max_context_tokens=longest)
    else:
        ensure_context(deployment, longest)
    run = PipelineRun(sc, deployment, wl, plans)
    run.run()
    return run.result(time.perf_counter() - start)
