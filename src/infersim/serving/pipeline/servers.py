"""Queueing servers for the non-LLM stages: batching servers and a KV-cache storage hierarchy.

* :class:`BatchServer` — one server (an encoder device, or one copy of a vector database) with a
  FIFO queue. When it is free and has work it starts a batch of up to ``max_batch`` queued jobs
  (greedy batching: it does not wait to fill a batch) whose time is given by its engine's cost
  model; the jobs finish together at the batch's end. Like a replica's step, a batch's contents
  are fixed when it starts, and a job arriving at that very instant joins it.
* :class:`StorageTier` — the levels of a KV-cache store. A request's KV is found in level ``i``
  with the level's (conditional) hit rate, drawn from the request's own uniform number; each level
  serves one transfer at a time (a FIFO at its bandwidth, after its lookup latency, which
  overlaps with other transfers). A miss in every level costs nothing here: the next LLM stage
  recomputes the tokens (HERMES / LMCache-style tiers; the expected time of the same model is
  :func:`~infersim.perf.retrieval.kv_retrieval_time_s`).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable

from ...perf.retrieval import StorageLevel

INF = math.inf


class BatchServer:
    """One batching server; ``batch_time_s(jobs)`` gives a batch's duration and ``done(job, t)`` is
    called (by the event loop, through ``schedule``) when a job's batch ends."""

    def __init__(self, index: int, max_batch: int, batch_time_s: Callable[[list], float],
                 schedule: Callable, done: Callable) -> None:
        self.index = index
        self.replica_id = index
        self.max_batch = max_batch
        self.batch_time_s = batch_time_s
        self.schedule = schedule
        self.done = done
        self.queue: deque = deque()  # (job, arrival time)
        self.free_at = 0.0
        self.inflight = 0
        self.busy_s = 0.0
        self.batches = 0
        self.jobs = 0

    # the routing view (see infersim.serving.router)
    def outstanding_at(self, t: float) -> int:
        return len(self.queue) + (self.inflight if self.free_at > t else 0)

    def kv_load_at(self, t: float) -> float:
        return 0.0

    def enqueue(self, job, t: float) -> None:
        self.queue.append((job, t))

    def next_time(self) -> float:
        if not self.queue:
            return INF
        return max(self.free_at, self.queue[0][1])

    def advance(self, horizon: float) -> None:
        """Start the next batch (every queued job has arrived by its start: the loop runs events in order)."""
        start = self.next_time()
        queue = self.queue
        batch = [queue.popleft()[0] for _ in range(min(self.max_batch, len(queue)))]
        d = self.batch_time_s(batch)
        end = start + d
        self.free_at = end
        self.inflight = len(batch)
        self.busy_s += d
        self.batches += 1
        self.jobs += len(batch)
        for job in batch:
            self.schedule(end, self.done, job)


class StorageTier:
    """The levels of a KV store, each a FIFO channel (see module docstring)."""

    def __init__(self, levels: list[StorageLevel]) -> None:
        self.levels = levels
        self.free_at = [0.0] * len(levels)
        self.served = [0] * (len(levels) + 1)  # per level, then misses
        self.busy_s = [0.0] * len(levels)
        self.bytes = [0.0] * len(levels)

    def level_for(self, u: float) -> int:
        """The level that serves a request with uniform draw ``u`` (``len(levels)``: a miss everywhere).
        Level ``i`` serves ``u`` in ``[P_i, P_i + hit_i (1 - P_i))`` with ``P_i`` the probability
        that a level above served it."""
        above = 0.0
        for i, level in enumerate(self.levels):
            share = (1.0 - above) * level.hit_rate
            if u < above + share:
                return i
            above += share
        return len(self.levels)

    def fetch(self, t: float, n_bytes: float, u: float) -> tuple[float, int]:
        """(time the KV is in place, level) for a request arriving at ``t``."""
        i = self.level_for(u)
        self.served[i] += 1
        if i == len(self.levels) or n_bytes <= 0:
            return t, i
        level = self.levels[i]
        wire = n_bytes / level.bandwidth_bytes_per_s
        start = max(t + level.latency_s, self.free_at[i])
        end = start + wire
        self.free_at[i] = end
        self.busy_s[i] += wire
        self.bytes[i] += n_bytes
        return end, i
