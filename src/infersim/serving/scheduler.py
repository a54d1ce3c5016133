"""Batch schedulers: which requests run in the next step of a replica.

Each scheduler's :meth:`step` decides one step (or a run of identical decode steps,
see :meth:`~infersim.serving.replica.Replica.decode_run`) and executes it on the
replica. Caps common to all: ``max_num_seqs`` requests in the running batch and
``max_num_batched_tokens`` tokens per step.

* :class:`StaticScheduler` — request-level batching as in FasterTransformer, the
  baseline of Orca (Yu et al., "Orca: A Distributed Serving System for
  Transformer-Based Generative Models", OSDI 2022, section 2.2): when the replica
  is idle it takes up to ``max_num_seqs`` queued requests, prefills them in one
  step and decodes the whole batch until its longest request is done; finished
  requests keep their slot (their tokens are computed as padding) and return only
  when the batch ends. KV blocks for prompt + output are reserved up front, so it
  never preempts.
* :class:`ContinuousScheduler` — iteration-level scheduling (Orca) with a paged KV
  cache, as vLLM v0's default scheduler (Kwon et al., SOSP 2023): every step either
  prefills newly admitted requests (prefill-prioritizing; FCFS while the token
  budget, the sequence cap and the KV watermark allow, and only when nothing is
  swapped out) or, if none can be admitted, decodes every running request. When a
  decode step lacks KV blocks, the most recently admitted request is preempted,
  by recompute (its blocks are freed and it re-prefills prompt + generated tokens
  later, ahead of new requests) or by swap (its KV is copied to host memory over
  PCIe and back when blocks free up; copies are charged to the step at
  ``swap_bandwidth_gb_per_s``, as vLLM v0 runs them before the forward pass).
  Swapped requests come back before any new request is admitted.
* :class:`InflightScheduler` — iteration-level scheduling with selective batching as Orca
  has it and as TensorRT-LLM's in-flight batching runs without chunked context
  (``enable_chunked_context=False``, its default): every step takes every decode, then
  whole prompts, FCFS, while they fit in what the token cap leaves (TensorRT-LLM counts
  context and generation tokens against ``max_num_tokens``). A prompt is never split: the
  first one that does not fit waits for the next step. Preemption as in the continuous
  scheduler.
* :class:`ChunkedPrefillScheduler` — Sarathi-Serve (Agrawal et al., "Taming
  Throughput-Latency Tradeoff in LLM Inference with Sarathi-Serve", OSDI 2024):
  each step first takes every decode (one token each), then fills the rest of the
  token budget with prefill chunks: ongoing prefills first, then swapped-in
  requests, then new ones (FCFS). Stall-free: decodes never wait for a prefill.
  ``long_prefill_token_threshold`` (vLLM's knob of that name) caps one request's chunk
  per step, so a long prompt shares the step's budget with others' chunks.
  Preemption as in the continuous scheduler.

Differences from vLLM worth knowing: blocks for a decode are counted exactly (a
sequence needs a new block only when its last block is full) where vLLM v0 reserves
one per sequence; a request preempted mid-prefill is always recomputed.
"""

from __future__ import annotations

import numpy as np

from .replica import Replica, chunk_loads


class ContinuousScheduler:
    name = "continuous"
    #: a prompt may run in chunks over several steps (False: a step prefills whole prompts)
    split_prompts = False
    #: a request can be preempted and recomputed (re-prefilling its prompt and generated tokens)
    preempts = True

    def step(self, r: Replica, horizon: float) -> None:
        kv = r.kv
        bs = r.bs
        admitted = []
        if not r.swapped and r.waiting:
            budget = r.token_budget
            tokens = 0
            n_run = len(r.running)
            waiting = r.waiting
            while waiting and n_run < r.max_num_seqs:
                seq = waiting[0]
                hit, blocks, check = r.admit_blocks(seq)
                c = seq.prompt - max(hit * bs, seq.loaded)
                if tokens + c > budget or not kv.can_admit(check):
                    break
                waiting.popleft()
                r.admit(seq, hit, blocks)
                admitted.append((seq, c))
                tokens += c
                n_run += 1
        if admitted:
            r.execute(admitted, [], 0.0, 0, with_decodes=False)
            return
        preempted: list = []
        swap_bytes = 0.0
        n_before = r.preemptions
        need = r.decode_need()
        while need > kv.available:
            swap_bytes += r.preempt_last(preempted)
            need = r.decode_need()
        victims = r.preemptions - n_before
        swapped_in = []
        if not victims and r.swapped:
            swap_bytes += _swap_in(r, need, swapped_in)
        if not swapped_in and not victims and r.n_dec and r.decode_run(horizon):
            return
        _finish_step(r, [], swapped_in, swap_bytes, victims, need, preempted)


def _swap_in(r: Replica, need: int, swapped_in: list, limit: int | None = None) -> float:
    """Bring swapped-out requests back, oldest first, while the KV cache (beside the ``need``
    blocks of this step's decodes), ``max_num_seqs`` and ``limit`` allow; appends them to
    ``swapped_in`` and returns the bytes copied back."""
    kv = r.kv
    swap_bytes = 0.0
    while r.swapped and len(r.running) < r.max_num_seqs and (limit is None or len(swapped_in) < limit):
        seq = r.swapped[0]
        blocks = r.swap_in_blocks(seq)
        if not kv.can_admit(blocks + need):
            break
        r.swapped.popleft()
        swap_bytes += r.swap_in(seq, blocks)
        swapped_in.append(seq)
    return swap_bytes


def _finish_step(r: Replica, chunks: list, swapped_in: list, swap_bytes: float, victims: int, need: int,
                 preempted: list) -> None:
    """Execute the decided step; recompute-preempted requests go back to the head of the queue."""
    if chunks or r.n_dec or swap_bytes:
        r.kv.allocate(need)
        r.execute(chunks, swapped_in, swap_bytes, victims)  # (swap-out only: an empty step of copies)
    if preempted:
        r.requeue_front(preempted)
    if not (r.running or r.waiting or r.swapped) and r.active:  # pragma: no cover - invariant
        raise RuntimeError("internal error: a replica has requests but nothing to run")


class ChunkedPrefillScheduler:
    name = "chunked"
    #: the last prompt that overflows the token budget runs as a chunk (False: it waits whole)
    split_prompts = True
    preempts = True

    def step(self, r: Replica, horizon: float) -> None:
        kv = r.kv
        need = r.cnt[r.clock % r.bs]  # blocks this step's decodes need
        preempted = None
        swap_bytes = 0.0
        victims = 0
        if need > kv.free + kv.evictable:
            preempted = []
            n_before = r.preemptions
            while need > kv.free + kv.evictable:
                swap_bytes += r.preempt_last(preempted)
                need = r.cnt[r.clock % r.bs]
            victims = r.preemptions - n_before
        budget = r.token_budget - r.n_dec
        cap = r.prefill_chunk_cap  # tokens one request may prefill in a step
        chunks = []
        if r.prefilling:  # ongoing prefills first
            for seq in r.prefilling.values():
                if budget <= 0:
                    break
                c = seq.prompt - seq.filled
                if c > cap:
                    c = cap
                if c > budget:
                    c = budget
                chunks.append((seq, c))
                budget -= c
        swapped_in = []
        if r.swapped and not victims and budget > 0:
            swap_bytes += _swap_in(r, need, swapped_in, budget)
            budget -= len(swapped_in)  # each resumes with one decode token
        waiting = r.waiting
        if waiting and budget > 0:  # then new requests, FCFS
            n_run = len(r.running)
            while waiting and budget > 0 and n_run < r.max_num_seqs:
                seq = waiting[0]
                hit, blocks, check = r.admit_blocks(seq)
                if not kv.can_admit(check + need):
                    break
                if not self.split_prompts and seq.prompt - max(hit * r.bs, seq.loaded) > budget:
                    break
                waiting.popleft()
                r.admit(seq, hit, blocks)
                c = seq.prompt - seq.filled
                if c > cap:
                    c = cap
                if c > budget:
                    c = budget
                chunks.append((seq, c))
                budget -= c
                n_run += 1
        if not chunks and not swapped_in and not victims and r.n_dec and r.decode_run(horizon):
            return
        _finish_step(r, chunks, swapped_in, swap_bytes, victims, need, preempted)


class InflightScheduler(ChunkedPrefillScheduler):
    """Decodes plus whole prompts in one step (see module docstring)."""

    name = "inflight"
    split_prompts = False


class StaticScheduler:
    """Request-level batching (see module docstring). Keeps its batch on the replica."""

    name = "static"
    split_prompts = False
    preempts = False  # KV for prompt + output is reserved up front

    def step(self, r: Replica, horizon: float) -> None:
        batch = r.static_batch
        if batch:
            if r.stages is None:
                self._decode_batch(r, batch)
                r.static_batch = None
            elif self._decode_step(r, batch):  # a pipeline engine: one step at a time through the stages
                r.static_batch = None
            return
        kv = r.kv
        bs = r.bs
        waiting = r.waiting
        chunks = []
        tokens = 0
        while waiting and len(chunks) < r.max_num_seqs:
            seq = waiting[0]
            hit = kv.lookup(seq.group, seq.prompt) if seq.group >= 0 else 0
            blocks = -(-(seq.input + seq.target) // bs) - hit  # prompt + output reserved up front
            pin = kv.pin_cost(seq.group, hit) if seq.group >= 0 else 0
            c = seq.prompt - max(hit * bs, seq.loaded)
            if tokens + c > r.token_budget or not kv.can_admit(blocks + pin):
                break
            waiting.popleft()
            r.admit(seq, hit, blocks)
            del r.prefilling[seq.rid]
            chunks.append((seq, c))
            tokens += c
        if not chunks:  # pragma: no cover - invariant (an idle replica can always admit its head)
            raise RuntimeError("internal error: static batching could not form a batch")
        r.static_batch = [seq for seq, _ in chunks]
        _prefill_step(r, chunks)

    @staticmethod
    def _decode_plan(r: Replica, batch: list) -> tuple:
        """The decode phase of a static batch: (steps, first decode pairs, step times, tokens each step
        emits, per-window loads or None)."""
        b = len(batch)
        remaining = np.array([seq.target - seq.gen for seq in batch], dtype=np.int64)
        k = int(remaining.max())
        x0 = float(sum(seq.prompt for seq in batch) + b)  # decode pairs of the first decode step
        j = np.arange(k)
        x = x0 + b * j.astype(np.float64)
        cost = r.cost
        loads = None
        if cost.fast:
            d = np.array([cost.decode_time(b, xi) for xi in x.tolist()])
        elif cost.full_attention:
            d = np.array([cost.time_full(0, 0, b, 0.0, 0.0, 0.0, xi) for xi in x.tolist()])
        else:
            d = np.empty(k)
            loads = np.empty((k, 4 * len(cost.windows)))
            for i in range(k):
                ctx = [seq.prompt + i + 1 for seq in batch]
                lw = cost.stm.loads_for([], [], ctx)
                loads[i] = [x for w in cost.windows for x in lw[w]]
                d[i] = cost.time_loads(0, 0, b, lw)
        # tokens emitted per step: requests with decode tokens left (the rest is padding)
        weights = (remaining[None, :] > j[:, None]).sum(axis=1)
        return k, x0, d, weights, loads

    @staticmethod
    def _complete_batch(r: Replica, batch: list, t: float) -> None:
        r.t = t
        r.last_completions = 0
        used = r.kv.used
        for seq in batch:
            seq.gen = seq.target
            r._complete(seq, t, seq.input + seq.target)
        r.last_freed_blocks = used - r.kv.used

    def _decode_step(self, r: Replica, batch: list) -> bool:
        """One decode step of the static batch of a pipeline engine, its micro-batch through the
        replica's stages; True when the batch is done (its requests complete at the step's end)."""
        plan = r.static_plan
        if plan is None:
            plan = r.static_plan = [0, *self._decode_plan(r, batch)]
        i, k, x0, d, weights, loads = plan
        if i < k:
            t = r.t
            end = r.stages.through(t, float(d[i]))
            b = len(batch)
            r.steps.batches.append((r.steps.n_steps, 1, b, x0 + b * i, r.kv.used, weights[i:i + 1],
                                    None if loads is None else loads[i:i + 1], np.array([t]), np.array([end - t])))
            r.steps.n_steps += 1
            r.t = end
            r.last_completions = 0
            r.last_freed_blocks = 0
            plan[0] = i = i + 1
        if i < k:
            return False
        r.static_plan = None
        self._complete_batch(r, batch, r.t)
        return True

    def _decode_batch(self, r: Replica, batch: list) -> None:
        b = len(batch)
        t = r.t
        k, x0, d, weights, loads = self._decode_plan(r, batch)
        if k > 0:
            starts = np.empty(k)
            for i, di in enumerate(d.tolist()):  # sequential sums, as time advances step by step
                starts[i] = t
                t += di
            r.steps.batches.append((r.steps.n_steps, k, b, x0, r.kv.used, weights, loads, starts, d))
            r.steps.n_steps += k
        self._complete_batch(r, batch, t)


def _prefill_step(r: Replica, chunks: list) -> None:
    """Static batching's prefill of the whole batch: every request emits its first token."""
    cost = r.cost
    pt, pairs, rect, kv_read = chunk_loads(chunks)
    ps = len(chunks)
    if cost.full_attention:
        loads = (pairs, rect, kv_read, 0.0)
        d = cost.time_full(pt, ps, 0, pairs, rect, kv_read, 0.0)
    else:
        lw = cost.stm.loads_for([c for _, c in chunks], [s.filled for s, _ in chunks], [])
        loads = tuple(x for w in cost.windows for x in lw[w])
        d = cost.time_loads(pt, ps, 0, lw)
    steps = r.steps
    if r.stages is not None:  # a pipeline engine: formed now, done when it leaves the last stage
        end = r.stages.through(r.t, d)
        d = end - r.t
    else:
        end = r.t + d
    steps.singles.append((steps.n_steps, r.t, d, pt, ps, 0, r.kv.used, 0, d, 0.0, 0, *loads))
    steps.n_steps += 1
    r.t = end
    r.last_completions = 0
    r.last_freed_blocks = 0
    log = r.log
    for seq, c in chunks:
        seq.filled = seq.prompt
        seq.gen = 1
        log.first_token_s[seq.rid] = end
        if r.on_first_token is not None:
            r.on_first_token(seq.rid, end)
        if seq.group >= 0 and seq.prefix_blocks and r.kv.prefix_caching:
            seq.shared = r.kv.donate(seq.group, seq.shared, seq.prefix_blocks)


SCHEDULERS = {"continuous": ContinuousScheduler, "chunked": ChunkedPrefillScheduler, "inflight": InflightScheduler,
              "static": StaticScheduler}


def make_scheduler(policy: str):
    return SCHEDULERS[policy]()
