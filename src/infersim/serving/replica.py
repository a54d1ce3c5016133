"""One serving engine: its queues, running batch, KV cache, clock, and the mechanics of a step.

A :class:`Replica` holds the state a scheduler (:mod:`infersim.serving.scheduler`)
acts on, and the operations every policy shares: admit a request, preempt one,
execute a step, finish a prefill, complete a request, and run many identical
decode steps at once.

Time advances only at step boundaries: a step starts when the previous one ends
(or when work arrives at an idle replica) and lasts the cost model's step time.
Tokens a step produces are emitted at its end.

Decode-phase requests are kept implicitly, so a decode step costs O(1) instead of
O(batch): the replica counts its steps (``clock``); a request that enters decode
at clock ``D0`` with ``kv0`` cached tokens has ``kv = base + clock`` with
``base = kv0 - D0`` and finishes when the clock reaches ``finish`` (a heap gives
the next one). The sum of the decode contexts is ``sum(base) + n * (clock + 1)``,
and since a request needs a new KV block exactly when ``kv % block_size == 0``,
the blocks a decode step needs are ``cnt[clock % block_size]`` with ``cnt[r]``
the number of decoding requests with ``-base = r (mod block_size)``.

Between two events that can change the batch (an arrival, a completion, a KV
block shortage) the batch is fixed and only the contexts grow, so
:meth:`Replica.decode_run` executes those steps in one tight loop, each step's time
from the decode line of :class:`~infersim.serving.cost.StepCost`.
"""

from __future__ import annotations

import heapq
import math
from bisect import bisect_left
from collections import deque

from .cost import StepCost
from .kv_cache import KVCache
from .run_logs import RequestLog, StepLog

NAN = math.nan


def chunk_loads(chunks: list) -> tuple[int, float, float, float]:
    """(prefill tokens, causal pairs, rectangular pairs, KV tokens read) of prefill ``chunks``
    [(seq, tokens)], full attention (the closed forms of :mod:`infersim.perf.shape`)."""
    pt = 0
    pairs = rect = kv_read = 0.0
    for seq, c in chunks:
        p = seq.filled
        pt += c
        pairs += c * p + c * (c + 1) / 2.0
        rect += c * (p + c)
        kv_read += p + c
    return pt, pairs, rect, kv_read


class Seq:
    """A request inside a replica (slim mutable state; outcomes go to the :class:`RequestLog`)."""

    __slots__ = ("rid", "input", "target", "prompt", "filled", "gen", "group", "prefix_blocks", "shared",
                 "blocks", "base", "finish", "decoding", "last_token_s", "kv_saved", "swapped", "loaded",
                 "transferred")

    def __init__(self, rid: int, input_tokens: int, target: int, group: int, prefix_blocks: int) -> None:
        self.rid = rid
        self.input = input_tokens
        self.target = target  # output tokens to generate
        self.prompt = input_tokens  # tokens to prefill in this incarnation (input + generated after recompute)
        self.filled = 0  # prompt tokens whose KV is computed (prefill progress)
        self.gen = 0  # tokens generated (valid when not decoding; decoding: target - finish + clock)
        self.group = group
        self.prefix_blocks = prefix_blocks  # full blocks of the group's shared prefix
        self.shared = 0  # group blocks this request references
        self.blocks = 0  # private blocks held while prefilling (whole prompt allocated at admission)
        self.base = 0
        self.finish = 0
        self.decoding = False
        self.last_token_s = NAN
        self.kv_saved = 0  # swapped out: KV tokens on the host
        self.swapped = False
        self.loaded = 0  # prompt tokens whose KV was loaded from elsewhere (not computed here)
        self.transferred = False  # its KV arrived from another engine: the swap-in copies nothing


def steps_before(t: float, a: float, c: float, horizon: float, n: int) -> int:
    """How many of ``n`` steps with durations ``a + c * i`` (i = 0, 1, ...) that start at ``t``
    start before ``horizon``: step ``i`` starts at ``t + i a + c i (i - 1) / 2``."""
    gap = horizon - t
    if gap <= 0:
        return 0
    # smallest i with i a + c i (i - 1) / 2 >= gap (a root of the quadratic, in a stable form)
    h = a - c / 2.0
    root = gap / h if c == 0 else 2.0 * gap / (h + math.sqrt(h * h + 2.0 * c * gap))
    m = min(n, max(1, int(math.ceil(root))))
    while m > 1 and t + (m - 1) * a + c * ((m - 1) * (m - 2) / 2) >= horizon:
        m -= 1
    while m < n and t + m * a + c * (m * (m - 1) / 2) < horizon:
        m += 1
    return m


class Replica:
    """One engine (a model replica, or one pipeline virtual engine of a replica)."""

    def __init__(self, index: int, replica_id: int, cost: StepCost, kv: KVCache, log: RequestLog, *,
                 max_num_seqs: int, token_budget: int, preemption: str, swap_bytes_per_s: float,
                 kv_bytes_per_token: float) -> None:
        self.index = index
        self.replica_id = replica_id
        self.cost = cost
        self.fast = cost.fast
        self.full_attention = cost.full_attention
        self._segments: dict[int, tuple] = {}  # batch -> (decode-line pieces, their upper ends)
        # the step-time function of mixed steps of a full-attention model (bound once)
        self._time_full = cost.time_full_fn
        self.kv = kv
        self.bs = kv.block_size
        self.log = log
        self.steps = StepLog(len(cost.windows), kv.block_size)
        self.max_num_seqs = max_num_seqs
        self.token_budget = token_budget
        #: tokens one request may prefill in a step (vLLM's long_prefill_token_threshold; chunked policy)
        self.prefill_chunk_cap = token_budget
        self.recompute = preemption == "recompute"
        self.swap_bytes_per_s = swap_bytes_per_s
        self.kv_bytes_per_token = kv_bytes_per_token
        self.on_complete = None  # callback(rid, time) for closed-loop workloads
        self.on_first_token = None  # callback(rid, time) when a request emits its first token
        # True when no router reads this engine's state (one engine, or round robin): an arrival
        # then matters to a decode run only if it could join the next step (see decode_run)
        self.state_private = False
        self.static_batch: list | None = None  # the batch a static-batching scheduler is running
        self.static_plan: list | None = None  # its decode phase, stepped one step at a time (pipeline engines)
        # the stages this engine's micro-batches share with the other engines of its pipeline-parallel
        # replica (infersim.serving.pp_stages.StageClock); None: an engine of its own (pp = 1)
        self.stages = None
        self._run_end_used = -1  # KV blocks in use at the end of the last decode run
        self._piece_end = None  # (next step, batch, decode pairs, time, line piece) after the last run

        self.t = 0.0  # end of the last step = start of the next one when there is work
        self.clock = 0  # decode steps executed (a prefill-only step does not count)
        self.waiting: deque[Seq] = deque()
        self.swapped: deque[Seq] = deque()
        self.running: dict[int, Seq] = {}  # admission order; the last one is the preemption victim
        self.prefilling: dict[int, Seq] = {}  # running requests still prefilling, admission order
        self.dec: dict[int, Seq] = {}  # decoding requests
        self.n_dec = 0
        self.sum_base = 0
        self.cnt = [0] * self.bs
        self.heap: list[tuple[int, int]] = []  # (finish clock, rid)
        self.active = 0  # requests in this replica (waiting + running + swapped)
        self.routed = 0
        self.completed = 0
        self.waiting_tokens = 0
        self.preemptions = 0
        # what the in-flight (last) step will release at its end, for routing decisions inside it
        self.last_completions = 0
        self.last_freed_blocks = 0
        # ITL bookkeeping: when the decoders last emitted, and requests that joined since
        self.last_decode_end = NAN
        self.fresh: dict[int, float] = {}  # rid -> time of its last token (end of its prefill)

    # ----- routing view ---------------------------------------------------------------------------
    def outstanding_at(self, t: float) -> int:
        """Requests routed here and not completed by time ``t``."""
        pending = self.last_completions if self.t > t else 0
        return self.routed - self.completed + pending

    def kv_load_at(self, t: float) -> float:
        """(KV blocks in use + blocks the queued prompts need) / total blocks, at time ``t``."""
        used = self.kv.used + (self.last_freed_blocks if self.t > t else 0)
        return (used + self.waiting_tokens / self.bs) / self.kv.total_blocks

    # ----- arrivals ---------------------------------------------------------------------------------
    def enqueue(self, rid: int, t: float, loaded: int = 0) -> None:
        """Request ``rid`` arrives at ``t``; ``loaded`` leading prompt tokens already have their KV
        (fetched from a storage tier): they need cache blocks but no prefill compute."""
        log = self.log
        seq = Seq(rid, log.input_tokens[rid], log.output_tokens[rid], log.prefix_group[rid],
                  log.prefix_tokens[rid] // self.bs)
        seq.loaded = min(int(loaded), seq.prompt - 1)  # at least one token is computed, to emit one
        self._arrive(seq, t)
        self.waiting.append(seq)
        self.waiting_tokens += seq.prompt

    def enqueue_transferred(self, rid: int, t: float, input_tokens: int, generated: int, target: int,
                            last_token_s: float) -> None:
        """Request ``rid`` arrives at ``t`` with its KV already computed elsewhere (prefill/decode
        disaggregation): ``input_tokens`` prompt tokens plus ``generated - 1`` generated ones (the last
        generated token, emitted at ``last_token_s``, has no KV yet). It waits in the swapped queue and
        joins the decode batch like a swapped-out request when the cache has room (admission by KV
        capacity), without a copy: its swap-in moves no bytes. It stops after ``target`` tokens."""
        seq = Seq(rid, input_tokens, target, -1, 0)
        seq.gen = generated
        seq.filled = seq.prompt
        seq.kv_saved = input_tokens + generated - 1
        seq.swapped = True
        seq.transferred = True
        seq.last_token_s = last_token_s
        self._arrive(seq, t)
        self.swapped.append(seq)

    def _arrive(self, seq: Seq, t: float) -> None:
        if self.active == 0 and self.t < t:
            self.t = t
        self.active += 1
        self.routed += 1
        self.log.replica[seq.rid] = self.replica_id

    # ----- admission ----------------------------------------------------------------------------------
    def admit_blocks(self, seq: Seq) -> tuple[int, int, int]:
        """(prefix blocks reused, new blocks to allocate, blocks the admission check must find:
        the new ones plus any cached prefix blocks it pins) to admit ``seq`` (whole prompt)."""
        if seq.group < 0:
            blocks = -(-seq.prompt // self.bs)
            return 0, blocks, blocks
        hit = self.kv.lookup(seq.group, seq.prompt)
        blocks = -(-seq.prompt // self.bs) - hit
        return hit, blocks, blocks + self.kv.pin_cost(seq.group, hit)

    def admit(self, seq: Seq, hit: int, blocks: int) -> None:
        """Move the head of ``waiting`` into the running batch as a prefill."""
        kv = self.kv
        kv.allocate(blocks)
        if seq.group >= 0:
            kv.acquire(seq.group, hit, seq.prompt)
            self.log.prefix_hit_tokens[seq.rid] += hit * self.bs
        seq.shared = hit
        seq.blocks = blocks
        seq.filled = max(hit * self.bs, seq.loaded)
        self.waiting_tokens -= seq.prompt
        rid = seq.rid
        self.running[rid] = seq
        self.prefilling[rid] = seq
        if self.log.first_scheduled_s[rid] != self.log.first_scheduled_s[rid]:  # NaN: first time
            self.log.first_scheduled_s[rid] = self.t

    def _join_decode(self, seq: Seq, kv_tokens: int, clock: int) -> None:
        """``seq`` decodes from step ``clock`` on with ``kv_tokens`` cached tokens."""
        base = kv_tokens - clock
        seq.base = base
        seq.finish = clock + seq.target - seq.gen
        seq.decoding = True
        self.dec[seq.rid] = seq
        self.n_dec += 1
        self.sum_base += base
        self.cnt[-base % self.bs] += 1
        heapq.heappush(self.heap, (seq.finish, seq.rid))

    def _leave_decode(self, seq: Seq) -> None:
        self.fresh.pop(seq.rid, None)
        seq.decoding = False
        del self.dec[seq.rid]
        self.n_dec -= 1
        self.sum_base -= seq.base
        self.cnt[-seq.base % self.bs] -= 1

    def decode_need(self) -> int:
        """KV blocks the decodes of the next step need."""
        return self.cnt[self.clock % self.bs]

    # ----- preemption --------------------------------------------------------------------------------
    def preempt_last(self, requeue: list) -> float:
        """Preempt the most recently admitted running request (vLLM's victim choice). A request
        to recompute is appended to ``requeue`` (the scheduler puts those back at the head of the
        queue after this step's admissions, as vLLM does). Returns the bytes to swap out."""
        rid = next(reversed(self.running))
        seq = self.running.pop(rid)
        self.preemptions += 1
        self.log.preemptions[rid] += 1
        kv = self.kv
        swap_bytes = 0.0
        was_decoding = seq.decoding
        if was_decoding:
            clock = self.clock
            tokens = seq.base + clock
            seq.gen = seq.target - (seq.finish - clock)
            self._leave_decode(seq)
            seq.last_token_s = self.t  # it emitted a token at the end of the previous step
            kv.release(-(-tokens // self.bs) - seq.shared)
        else:
            del self.prefilling[rid]
            tokens = seq.filled
            kv.release(seq.blocks)
            seq.blocks = 0
        if seq.shared:
            kv.unref(seq.group)
            seq.shared = 0
        if self.recompute or not was_decoding:
            # recompute: all known tokens (prompt + generated) are prefilled again; a request
            # preempted mid-prefill always restarts its prefill (its KV is partial)
            seq.prompt = seq.input + seq.gen
            seq.filled = 0
            seq.loaded = 0  # the loaded KV was freed with the rest
            requeue.append(seq)
        else:
            seq.kv_saved = tokens
            seq.swapped = True
            self.swapped.append(seq)
            swap_bytes = tokens * self.kv_bytes_per_token
        return swap_bytes

    def requeue_front(self, seqs: list) -> None:
        """Put recompute-preempted requests back at the head of the queue, the earliest admitted first."""
        for seq in seqs:  # preempted last-admitted first, so the earliest admitted ends at the head
            self.waiting.appendleft(seq)
            self.waiting_tokens += seq.prompt

    def swap_in_blocks(self, seq: Seq) -> int:
        """Blocks a swapped request needs to rejoin the decode batch at the next step."""
        tokens = seq.kv_saved
        return -(-tokens // self.bs) + (1 if tokens % self.bs == 0 else 0)

    def swap_in(self, seq: Seq, blocks: int) -> float:
        """Bring ``seq`` back (it decodes in the next step); returns the bytes copied in."""
        self.kv.allocate(blocks)
        seq.swapped = False
        self.running[seq.rid] = seq
        tokens = seq.kv_saved
        self._join_decode(seq, tokens, self.clock)
        if seq.transferred:  # its KV was written here by the transfer: nothing to copy
            seq.transferred = False
            if self.log.first_scheduled_s[seq.rid] != self.log.first_scheduled_s[seq.rid]:
                self.log.first_scheduled_s[seq.rid] = self.t
            return 0.0
        return tokens * self.kv_bytes_per_token

    # ----- completion --------------------------------------------------------------------------------
    def _complete(self, seq: Seq, t: float, kv_tokens: int) -> None:
        """``seq`` completes at ``t`` holding ``ceil(kv_tokens / block_size)`` blocks (some shared)."""
        rid = seq.rid
        del self.running[rid]
        freed = -(-kv_tokens // self.bs) - seq.shared
        self.kv.release(freed)
        if seq.shared:
            self.kv.unref(seq.group)
        self.log.completion_s[rid] = t
        self.completed += 1
        self.active -= 1
        self.last_completions += 1
        if self.on_complete is not None:
            self.on_complete(rid, t)

    def _complete_decodes(self, clock: int, t: float) -> None:
        """Complete every decoding request whose finish clock is ``clock``."""
        heap = self.heap
        dec = self.dec
        while heap and heap[0][0] <= clock:
            finish, rid = heapq.heappop(heap)
            seq = dec.get(rid)
            if seq is None or seq.finish != finish:
                continue  # stale entry (preempted or swapped since)
            self._leave_decode(seq)
            self._complete(seq, t, seq.base + finish)

    def next_finish(self) -> int:
        heap = self.heap
        dec = self.dec
        while heap:
            finish, rid = heap[0]
            seq = dec.get(rid)
            if seq is not None and seq.finish == finish:
                return finish
            heapq.heappop(heap)
        return 1 << 62

    def _prefill_done(self, seq: Seq, t: float, clock: int) -> None:
        """``seq``'s prompt is fully in the KV cache at the end of a step: it emits a token."""
        rid = seq.rid
        del self.prefilling[rid]
        seq.gen += 1
        log = self.log
        if log.first_token_s[rid] != log.first_token_s[rid]:
            log.first_token_s[rid] = t
            if self.on_first_token is not None:
                self.on_first_token(rid, t)
        else:
            self.steps.gaps_s.append(t - seq.last_token_s)  # first token after a recompute
        if seq.group >= 0 and seq.prefix_blocks and self.kv.prefix_caching:
            seq.shared = self.kv.donate(seq.group, seq.shared, seq.prefix_blocks)
        seq.blocks = 0
        if seq.gen >= seq.target:
            self._complete(seq, t, seq.prompt)
        else:
            self._join_decode(seq, seq.prompt, clock)
            self.fresh[rid] = t

    # ----- executing steps ---------------------------------------------------------------------------
    def execute(self, chunks: list, swapped_in: list, swap_bytes: float, preempted: int,
                with_decodes: bool = True) -> None:
        """Run one step: the current decodes (unless ``with_decodes`` is False: a prefill-only
        step) plus prefill ``chunks`` [(seq, tokens)], then emit tokens.

        The caller (a scheduler) has already allocated the decodes' blocks, admitted the
        prefills and swapped requests in (``swapped_in`` decode in this step). ``clock``
        counts decode steps, so a prefill-only step leaves the decoding requests' state as is."""
        clock = self.clock
        t = self.t
        b = self.n_dec if with_decodes else 0
        pt, pairs, rect, kv_read = chunk_loads(chunks)
        ps = len(chunks)
        cost = self.cost
        full = self.full_attention
        if full:
            dp = float(self.sum_base + b * (clock + 1)) if b else 0.0
            segs = None
            if b and not pt and self.stages is not None and self.fast:
                # a decode step of a pipeline engine, run alone behind the other engines' micro-batches:
                # the decode line decode runs use (within 1e-12 of the exact time)
                segs, ends = self._decode_line(b)
                i = bisect_left(ends, dp)
                if i < len(segs):
                    x_lo, _, f_lo, slope = segs[i]
                    d = f_lo + slope * (dp - x_lo)
                else:
                    segs = None
            if segs is None:
                d = self._time_full(pt, ps, b, pairs, rect, kv_read, dp)
        else:
            ctx = [s.base + clock + 1 for s in self.dec.values()] if b else []
            lw = cost.stm.loads_for([c for _, c in chunks], [s.filled for s, _ in chunks], ctx)
            d = cost.time_loads(pt, ps, b, lw)
        swap_s = swap_bytes / self.swap_bytes_per_s if swap_bytes else 0.0
        d += swap_s
        if self.stages is None:
            end = t + d
        else:  # formed at t, the micro-batch leaves the last stage at end: the step lasts end - t
            end = self.stages.through(t, d)
            d = end - t
        steps = self.steps
        regular = 0
        gap = d
        if b:
            fresh = self.fresh
            regular = b - len(fresh) - len(swapped_in)  # decoded in the previous decode step too
            if regular:
                gap = end - self.last_decode_end
            for emitted in fresh.values():
                steps.gaps_s.append(end - emitted)
            fresh.clear()
            self.last_decode_end = end
        kv = self.kv
        used_now = kv.total_blocks - kv.free - kv.evictable
        if full:
            steps.singles.append((steps.n_steps, t, d, pt, ps, b, used_now, regular, gap, swap_s, preempted,
                                  pairs, rect, kv_read, dp))
        else:
            steps.singles.append((steps.n_steps, t, d, pt, ps, b, used_now, regular, gap, swap_s, preempted,
                                  *(x for w in cost.windows for x in lw[w])))
        steps.n_steps += 1
        self.t = end
        after = clock + 1 if with_decodes else clock
        self.clock = after
        self.last_completions = 0
        for seq in swapped_in:
            steps.gaps_s.append(end - seq.last_token_s)
        heap = self.heap
        if b and heap and heap[0][0] <= after:
            self._complete_decodes(after, end)
        for seq, c in chunks:
            seq.filled += c
            if seq.filled >= seq.prompt:
                self._prefill_done(seq, end, after)
        self.last_freed_blocks = used_now - (kv.total_blocks - kv.free - kv.evictable)

    def _kv_steps(self, kmax: int, avail: int) -> int:
        """How many of the next ``kmax`` decode steps the available blocks cover."""
        b = self.n_dec
        bs = self.bs
        if avail >= b * -(-kmax // bs):
            return kmax
        cnt = self.cnt
        clock = self.clock
        cycles = min(avail // b, kmax // bs)
        k = cycles * bs
        used = cycles * b
        while k < kmax:
            need = cnt[(clock + k) % bs]
            if used + need > avail:
                break
            used += need
            k += 1
        return k

    def _decode_line(self, b: int) -> tuple:
        """The decode line of batch ``b``: its linear pieces and their upper ends (cached)."""
        line = self._segments.get(b)
        if line is None:
            segs = self.cost.decode_segments(b)
            line = self._segments[b] = (segs, [sg[1] for sg in segs])
        return line

    def decode_run(self, horizon: float) -> bool:
        """Execute decode-only steps of the current batch until the first completion, a KV
        block shortage, or a step that would start at or after ``horizon`` (the next arrival).
        False (nothing run) when the next step's blocks are not available or the fast path is off.

        The horizon is ignored when the queue is not empty and no router reads this engine's
        state: admission is FCFS and the head of the queue could not be admitted at the start
        of the run (that is why it is a decode run), and during the run free blocks only
        shrink while the batch and the token budget stay the same, so a later arrival, queued
        behind it, cannot join any step before the next completion ends the run anyway."""
        b = self.n_dec
        if not self.fast or b == 0:
            return False
        stages = self.stages
        if stages is not None and not stages.clear_at(self.t):
            return False  # a stage may still hold another engine's micro-batch: one step through them
        if self.waiting and self.state_private:
            horizon = math.inf
        clock0 = self.clock
        kmax = self.next_finish() - clock0
        kv = self.kv
        k = self._kv_steps(kmax, kv.free + kv.evictable)
        if k == 0:
            return False
        segs, ends = self._decode_line(b)
        x = float(self.sum_base + b * (clock0 + 1))
        x0 = x
        t = self.t
        steps = self.steps
        first = steps.n_steps
        pieces = steps.pieces
        i = bisect_left(ends, x)  # the first piece that reaches x
        x_lo, x_hi, f_lo, slope = segs[i]
        j = 0
        a0 = -1.0
        anchor = None  # (start, a, c, steps) of the line piece the last steps ran on
        pe = self._piece_end
        if pe is not None and pe[1:5] == (b, x, t, i) and x <= x_hi:  # no step since (t, x would differ)
            # the batch goes on exactly where the last run stopped (cut by a horizon), on the same
            # linear piece: its times are still counted from that piece's start (the log extends
            # the piece's record, or adds one with that offset), so that a run cut into many calls
            # keeps one record and every step's time is the closed form the log expands
            t0, a, c, m0 = pe[5]
            n = min(k, int((x_hi - x) // b) + 1)
            m = n if horizon == math.inf else steps_before(t0, a, c, horizon, m0 + n) - m0
            if m > 0:
                if pe[6] is pieces and pieces:
                    pieces.set_last(1, pieces.last(1) + m)
                else:
                    pieces.append((first, m, t0, a, c, m0))
                a0 = a + c * m0
                total = m0 + m
                anchor = (t0, a, c, total)
                t = t0 + total * a + c * (total * (total - 1) / 2)
                x += b * m
                j = m
                if m < n:
                    k = j  # cut by the horizon: no further piece
        while j < k:
            while x > x_hi:  # the linear piece of the decode line that holds this step's decode pairs
                i += 1
                x_lo, x_hi, f_lo, slope = segs[i]
            # steps left in this piece (x grows by b per step), at most what the run allows;
            # their durations are a + c * m, so their start times have a closed form
            n = min(k - j, int((x_hi - x) // b) + 1)
            a = f_lo + slope * (x - x_lo)
            c = slope * b
            m = n if horizon == math.inf else steps_before(t, a, c, horizon, n)
            if m == 0:
                break
            pieces.append((first + j, m, t, a, c, 0))
            anchor = (t, a, c, m)
            if a0 < 0:
                a0 = a
            t = t + m * a + c * (m * (m - 1) / 2)
            x += b * m
            j += m
            if m < n:
                break
        steps.n_steps = first + j
        self._piece_end = (first + j, b, x, t, i, anchor, pieces)
        bs = self.bs
        cnt = self.cnt
        # blocks the j steps took: b per full cycle of bs steps, plus the residues of the rest
        need = (j // bs) * b
        lo = clock0 % bs
        hi = lo + j % bs
        need += sum(cnt[lo:hi]) if hi <= bs else sum(cnt[lo:]) + sum(cnt[:hi - bs])
        fresh = self.fresh
        end0 = self.t + a0
        regular = b - len(fresh)
        # the gap since the batch's last token: the step's own duration when that token came at the
        # end of the step just before (the same number, without the rounding of end0 - t)
        gap0 = a0 if not regular or self.last_decode_end == self.t else end0 - self.last_decode_end
        for emitted in fresh.values():
            steps.gaps_s.append(end0 - emitted)
        fresh.clear()
        self.last_decode_end = t
        used_before = kv.total_blocks - kv.free - kv.evictable
        runs = steps.runs
        if (runs and regular == b and gap0 == a0 and runs.last(2) == b
                and runs.last(0) + runs.last(1) == first and runs.last(5) + runs.last(1) == clock0
                and runs.last(3) + b * runs.last(1) == x0 and self._run_end_used == used_before
                and steps.run_cnts[-1] == tuple(cnt)):
            runs.set_last(1, runs.last(1) + j)  # the same batch going on: one longer run
        else:
            runs.append((first, j, b, x0, used_before, clock0, gap0, regular))
            steps.run_cnts.append(cnt)
        self._run_end_used = used_before + need
        kv.allocate(need)
        self.t = t
        self.clock = clock0 + j
        self.last_completions = 0
        if stages is not None:  # the steps ran back to back through clear stages
            t0, a, c, total = anchor
            stages.ran(t, a + c * (total - 1))
        if j == kmax:
            used = kv.total_blocks - kv.free - kv.evictable
            self._complete_decodes(clock0 + j, t)
            self.last_freed_blocks = used - (kv.total_blocks - kv.free - kv.evictable)
        else:
            self.last_freed_blocks = 0
        return True
