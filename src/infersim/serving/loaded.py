"""Latency under load of an iteration-level scheduler, in closed form (vectorized).

The discrete-event simulator (:mod:`infersim.serving.engine`) answers "what latencies does this
deployment give at this request rate" one event at a time. This module answers the same question
for whole grids of deployments at once, from the stationary state of the schedulers the simulator
implements, with fixed prompt length ``I`` and output length ``O`` (the first output token comes
from the prefill, ``O - 1`` from decode steps). Every server here is one *engine* of the simulator
(a replica with ``pp`` stages runs ``pp`` engines, each with its share of the KV cache and its own
scheduler), receiving ``1 / servers`` of the Poisson arrivals.

Stationary batch (Little's law)
-------------------------------
Parametrize the state by ``B``, the time-average number of requests in their decode phase. A
request spends ``O - 1`` steps decoding, so with ``S`` steps per second, ``B = lambda (O - 1) / S``
(Little's law, ``L = lambda W`` with ``W = (O - 1) / S``). Steps come in two kinds: plain decode
steps of ``B`` sequences (``t_d``) and *interrupted* steps that also carry prefill work (``t_m``):

* **colocated, chunked prefill** (Sarathi-Serve, Agrawal et al., OSDI 2024, what
  ``scheduler: chunked`` simulates): a step takes every decode and fills the rest of the token
  budget ``T`` with prompt chunks, so a prompt needs ``k = ceil(I / c)`` mixed steps of
  ``c = min(I, T - B)`` prompt tokens (the chunk sees on average ``c (k - 1) / 2`` cached tokens);
* **decode pool** of a prefill/decode-disaggregated deployment (DistServe, Zhong et al., OSDI
  2024; ``scheduler: continuous``): an arriving request's KV is already computed, its admission is
  one step without decodes (``k = 1``, ``t_m - t_d`` = that step's time ``t_a``).

Per second ``lambda k`` interrupted steps and ``(1 - lambda k t_m) / t_d`` decode steps run, and
``B S = lambda (O - 1)`` gives the rate a stationary batch ``B`` sustains::

    lambda(B) = B / ((O - 1) t_d + B k (t_m - t_d))
    TPOT(B)   = B / (lambda (O - 1)) = t_d + B k (t_m - t_d) / (O - 1)

Decode sequences are costed at the mean context ``I + O / 2``. ``B`` is bounded by the sequence
cap (one slot kept for the request being prefilled), the KV blocks (``B (I + O / 2) + I`` tokens),
and the token budget (``T - B >= 1``).

TTFT: the prefill queue
-----------------------
Prompt tokens are served first come first served by the scheduler's prefill share: the queue
drains ``T - B`` prompt tokens per full-budget step, so its utilization is
``rho = lambda I t_full / (T - B)``. A prompt that starts a busy period occupies the server for its
own prefill (``k - 1`` full steps and its short last chunk) instead: an M/G/1 queue with an
exceptional first service (Welch 1964), its wait taken as a two-piece M/D/1 (Erlang's exact form on
the first service interval, an exponential tail with Pollaczek-Khinchine's mean), scaled by the
gaps' squared coefficient of variation (``1 / n`` when a round-robin router splits a Poisson stream
over ``n`` servers: Kingman / Allen-Cunneen). The prompt's last chunk shares its step with the next
prompt's first chunk when that prompt arrived before the last step (probability
``1 - exp(-lambda (a + W))`` given the wait ``W``); a prompt that does not wait also waits for the
running decode step (``t_d / 2``). The distribution and its quantiles:
:mod:`infersim.serving.queueing`. A prefill pool (whole prompts batched into steps of up to ``T``
tokens) is the same queue with the own service ``t_p``, an atom ``1 - rho`` at zero and
Kingman's exponential wait given a wait, and no decode step to wait for.

Pipeline-parallel replicas
--------------------------
The ``pp`` engines of a replica pass their micro-batches through shared stages, so a round of the
engines takes its slowest step (:mod:`infersim.serving.pp_stages`, as the simulator steps them): a
colocated engine's decode and last-chunk steps are stretched towards the other engines' full-budget
prefill steps, with the full steps clustered along the stage order (:func:`_stage_coupled`). Decode
pools (equal steps, no bubble) and prefill pools (``pp = 1`` in the plan's grid) are left as they are.

What it leaves out: batching several queued prompts into one step (it makes the real queue
faster at high load, so TTFT here is an upper bound there), preemption (the KV bound keeps the
batch below it), variance of the batch around ``B`` (the step time is nearly linear in it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..perf.graph import GraphOptions
from ..perf.parallel import Parallelism, Precision
from ..perf.shape import StepShape
from .pp_stages import chained_lockstep_steps_s
from .queueing import ChunkedTTFT, pooled_prefill_ttft_s

#: columns of the stationary-batch grid per server: B = Bmax (j / BATCH_COLUMNS)^BATCH_SPACING, j = 1..;
#: denser at light load (the first column is ~0.2 % of Bmax), ~2.4 % apart at the top
BATCH_COLUMNS = 64
BATCH_SPACING = 1.5


def batch_grid(b_max: np.ndarray) -> np.ndarray:
    """Stationary decode batches to cost, ``(points, BATCH_COLUMNS)``, from each point's bound ``b_max``."""
    cols = (np.arange(1, BATCH_COLUMNS + 1, dtype=np.float64) / BATCH_COLUMNS) ** BATCH_SPACING
    return np.maximum(np.asarray(b_max, dtype=np.float64), 0.0).reshape(-1, 1) * cols[None, :]
#: utilization grid of a prefill-only server
RHO_GRID = np.linspace(0.02, 0.98, 49)


def stationary_rate(batch, output_tokens, decode_step_s, interrupt_extra_s, interrupts_per_request) -> np.ndarray:
    """``lambda(B) = B / ((O - 1) t_d + B k (t_m - t_d))``: requests/s one server sustains at a
    stationary decode batch ``B`` (see the module docstring)."""
    b = np.asarray(batch, dtype=np.float64)
    return b / ((np.asarray(output_tokens) - 1.0) * decode_step_s + b * interrupts_per_request * interrupt_extra_s)


@dataclass(frozen=True)
class LoadCurve:
    """One server's operating points, arrays of shape ``(points, columns)``: at each column a
    stationary state with arrival rate ``rate_rps``. Columns are ordered by rate (increasing)."""

    rate_rps: np.ndarray
    batch: np.ndarray  # stationary decode batch (NaN for prefill-only servers)
    tpot_s: np.ndarray  # NaN for prefill-only servers
    service_s: np.ndarray  # prefill service time per request
    rho: np.ndarray  # prefill utilization
    residual_s: np.ndarray  # mean wait for the running decode step when the prefill queue is idle
    valid: np.ndarray
    #: chunked-prefill servers only (None for prefill-only servers, whose steps hold whole prompts):
    #: the extra own prefill time when the prompt's last step is shared with the next prompt's first
    #: chunk (a full-budget step instead of a short one), which happens when another prompt arrived
    #: before that step; the time from the start of the prompt's first step to its last step
    #: (``(k - 1)`` full steps); and the queue's service time per prompt (its tokens at the rate of
    #: full-budget steps, ``rho / rate``). See :mod:`infersim.serving.queueing`.
    shared_extra_s: np.ndarray | None = None
    before_last_s: np.ndarray | None = None
    queue_service_s: np.ndarray | None = None

    def ttft_s(self, q: float | None, arrival_scv=1.0, servers=1) -> np.ndarray:
        """TTFT at every column: the mean with ``q=None``, else quantile ``q`` (:meth:`ttft`)."""
        return self.ttft([q], arrival_scv, servers)[q]

    def ttft(self, qs, arrival_scv=1.0, servers=1) -> dict:
        """``{q: TTFT}`` at every column for each ``q`` of ``qs`` (``None``: the mean). Chunked-prefill
        rows: :class:`~infersim.serving.queueing.ChunkedTTFT` (each server on its own, its arrivals'
        squared coefficient of variation ``arrival_scv``). Prefill-only rows (NaN ``batch``): a pool of
        ``servers`` behind a least-outstanding router,
        :func:`~infersim.serving.queueing.pooled_prefill_ttft_s`. ``arrival_scv`` and ``servers``
        broadcast over the rows."""
        shape = self.rho.shape
        qs = list(qs)
        out = {q: np.full(shape, np.inf) for q in qs}
        pooled = np.isnan(self.batch).all(axis=1)
        rows = ~pooled
        if rows.any():
            scv = np.broadcast_to(np.asarray(arrival_scv, dtype=np.float64), shape)
            with np.errstate(invalid="ignore", over="ignore"):
                dist = ChunkedTTFT(rho=self.rho[rows], rate=self.rate_rps[rows], queue_s=self.queue_service_s[rows],
                                   scv=scv[rows], s_lo=self.service_s[rows],
                                   s_hi=self.service_s[rows] + self.shared_extra_s[rows],
                                   residual_s=self.residual_s[rows], before_last_s=self.before_last_s[rows])
                values = dist.quantiles([q for q in qs if q is not None])
                if None in qs:
                    values[None] = dist.mean()
            for q in qs:
                out[q][rows] = values[q]
        if pooled.any():
            n = np.broadcast_to(np.asarray(servers, dtype=np.float64), shape)
            for q in qs:
                with np.errstate(invalid="ignore", over="ignore"):
                    out[q][pooled] = pooled_prefill_ttft_s(
                        q, rho=self.rho[pooled], rate=self.rate_rps[pooled], queue_s=self.queue_service_s[pooled],
                        service_s=self.service_s[pooled], servers=n[pooled],
                        shared_extra_s=self.shared_extra_s[pooled])
        return out

    def at_rate(self, rate_rps, values: np.ndarray) -> np.ndarray:
        """``values`` (same shape as the curve) linearly interpolated at ``rate_rps`` per point (held
        at the first column below it); NaN where the rate is above the last valid column."""
        rate = np.broadcast_to(np.asarray(rate_rps, dtype=np.float64), (self.rate_rps.shape[0],))
        r = np.where(self.valid, self.rate_rps, np.inf)
        out = np.full(rate.shape, np.nan)
        for i in range(r.shape[0]):  # points are few (deployments), columns many
            row = r[i]
            finite = np.where(np.isfinite(row), row, -np.inf)
            # the increasing envelope (a step-time knee can make the rate dip for one column)
            ok = np.isfinite(row) & (finite >= np.maximum.accumulate(finite))
            ok[1:] &= finite[1:] > np.maximum.accumulate(finite)[:-1]
            if not ok.any() or rate[i] > row[ok][-1] * (1 + 1e-9):
                continue
            out[i] = np.interp(rate[i], row[ok], values[i][ok])
        return out


def _step_times(model, device, par, prec, options, *, prefill_seqs, chunk, past, decode_seqs, decode_context,
                runtime=None):
    """Wall times of uniform steps: the kernels', plus a serving runtime's host time per step and
    CUDA-graph padding of decode-only steps when ``runtime`` is given
    (:func:`~infersim.perf.estimate.runtime_step_times`)."""
    from ..perf.estimate import runtime_step_times_s

    # steps repeat across points (e.g. the same decode batch under several token budgets): cost
    # each distinct step once (steps cost independently of one another)
    steps = np.stack(np.broadcast_arrays(*(np.atleast_1d(np.asarray(x, dtype=np.float64)) for x in
                                           (prefill_seqs, chunk, past, decode_seqs, decode_context))), axis=1)
    distinct, where = unique_rows(steps)
    shape = StepShape.uniform(model, prefill_seqs=distinct[:, 0], chunk=distinct[:, 1], past=distinct[:, 2],
                              decode_seqs=distinct[:, 3], decode_context=distinct[:, 4])
    return runtime_step_times_s(runtime, model, device, par, prec, shape, options)[where]


def unique_rows(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows of a 2-D float array (sorted) and, per row, the index of its distinct row:
    ``np.unique(rows, axis=0, return_inverse=True)`` by a lexicographic sort of the columns, several
    times faster (``np.unique`` sorts the rows as structured records)."""
    if rows.shape[0] == 0:
        return rows, np.zeros(0, dtype=np.intp)
    order = np.lexsort(rows.T[::-1])
    ordered = rows[order]
    new = np.empty(rows.shape[0], dtype=bool)
    new[0] = True
    np.any(ordered[1:] != ordered[:-1], axis=1, out=new[1:])
    where = np.empty(rows.shape[0], dtype=np.intp)
    where[order] = np.cumsum(new) - 1
    return ordered[new], where


def _stage_coupled(t_d, t_last, t_full, b, i, o, t, k, last, rate, pp: int):
    """A colocated server's decode step, last-chunk step, own prefill time and rate when it is one of
    the ``pp`` engines of a pipeline-parallel replica, whose micro-batches pass through shared stages
    so that a round of the engines takes its slowest step (:mod:`infersim.serving.pp_stages`).

    An engine's steps are of three kinds: full-budget prefill-bearing steps (``t_full``), a prompt's
    last chunk alone (``t_last``) and decode-only steps (``t_d``). Every step decodes all ``B``, so
    ``B / (O - 1)`` requests start per step. A prompt's last chunk shares a full step with the next
    prompt's first chunk when that one is already queued, taken with the prefill queue's utilization
    ``rho``; so a request brings ``(I - (1 - rho) last) / (T - B)`` full steps and ``1 - rho``
    last-chunk steps. Full steps cluster: the router hands the next prompt to another engine, and a
    long step collects arrivals, so a micro-batch that follows a full one is full with the probability
    that the prefill queue is still busy, ``rho`` (at least the full steps' share; measured in the
    simulator: 0.50 at rho 0.56 for PP2, 0.57 at 0.60 for PP4), against ``0.28`` and ``0.40``
    independently (:func:`~infersim.serving.pp_stages.chained_lockstep_steps_s`). ``rho`` depends on the
    rate, which the coupling lowers: two fixed-point passes from the uncoupled rate."""
    per_step = b / (o - 1.0)
    for _ in range(2):
        rho = np.clip(rate * i * t_full / (t - b), 0.0, 1.0)
        full = np.minimum(per_step * (i - (1.0 - rho) * last) / (t - b), 1.0)
        alone = np.minimum(per_step * (1.0 - rho), 1.0 - full)
        (t_dc, t_lc), t_fc = chained_lockstep_steps_s([t_d, t_last], [1.0 - full - alone, alone], t_full, full,
                                                      np.maximum(rho, full), pp)
        service = (k - 1.0) * t_fc + t_lc
        rate = stationary_rate(b, o, t_dc, service - k * t_dc, 1.0)
    return t_dc, t_lc, service, rate


def colocated_curve(model, device, par: Parallelism, prec: Precision, options: GraphOptions, *, input_tokens,
                    output_tokens, token_budget, max_batch, kv_tokens, runtime=None) -> LoadCurve:
    """Operating points of chunked-prefill servers (arrays over points: ``input_tokens`` ... ``kv_tokens``,
    the KV cache of one server in tokens)."""
    i, o, t, cap, kv = (np.asarray(x, dtype=np.float64)[:, None] for x in
                        np.broadcast_arrays(input_tokens, output_tokens, token_budget, max_batch, kv_tokens))
    ctx = i + o / 2.0
    b_max = np.minimum.reduce([cap - 1.0, (kv - i) / ctx, t - 1.0])
    b = batch_grid(b_max)
    c = np.minimum(i, np.floor(t - b))
    valid = (b[:, :1] >= 1e-3) & (c >= 1)
    c = np.maximum(c, 1.0)
    k = np.ceil(i / c)
    last = i - (k - 1.0) * c
    n = b.size
    shape = b.shape
    flat = [np.broadcast_to(x, shape).ravel() for x in (b, ctx, c, last, k)]
    bb, cc, chunk, rest, kk = flat
    zeros, ones = np.zeros(n), np.ones(n)
    # the decode step; a full budget of prompt tokens (T - B: one chunk at the mean past of the full
    # chunks, or (T - B) / I whole prompts packed); the prompt's last chunk (the whole prompt if k = 1)
    packed = (t - b) / c
    # the prompt's last step shared with the next prompt's first chunk: min(last + I, T - B) tokens
    shared = np.broadcast_to(np.minimum(last + i, t - b), shape).ravel()
    times = _step_times(model, device, par, prec, options, runtime=runtime,
                        prefill_seqs=np.concatenate([zeros, np.broadcast_to(packed, shape).ravel(), ones, 2 * ones]),
                        chunk=np.concatenate([zeros, chunk, rest, shared / 2.0]),
                        past=np.concatenate([zeros, chunk * np.maximum(kk - 2.0, 0.0) / 2.0, (kk - 1.0) * chunk,
                                             zeros]),
                        decode_seqs=np.concatenate([bb, bb, bb, bb]),
                        decode_context=np.concatenate([cc, cc, cc, cc]))
    t_d, t_full, t_last, t_shared = (times[j * n:(j + 1) * n].reshape(shape) for j in range(4))
    # own prefill latency: k - 1 full chunks then the last one (a full step holds exactly one chunk if k > 1)
    service = (k - 1.0) * t_full + t_last
    rate = stationary_rate(b, o, t_d, service - k * t_d, 1.0)
    if par.pp > 1:
        t_d, t_last, service, rate = _stage_coupled(t_d, t_last, t_full, b, i, o, t, k, last, rate, par.pp)
    # the prefill queue's utilization: prompt tokens at the rate of full-budget steps (queued prompts
    # share steps: a prompt's short last chunk rides with the next prompt's first)
    rho = rate * i * t_full / (t - b)
    valid &= rho < 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        tpot = b / (rate * (o - 1.0))
    # the last step is shared when another prompt arrived before it starts (queueing.chunked_ttft_s)
    with np.errstate(divide="ignore", invalid="ignore"):
        queue_s = i * t_full / (t - b)  # rho / rate
    return LoadCurve(rate, b, tpot, service, rho, t_d / 2.0, valid, np.maximum(t_shared - t_last, 0.0),
                     (k - 1.0) * t_full, np.broadcast_to(queue_s, shape).copy())


def decode_curve(model, device, par: Parallelism, prec: Precision, options: GraphOptions, *, input_tokens,
                 output_tokens, max_batch, kv_tokens, runtime=None) -> LoadCurve:
    """Operating points of decode-pool servers. A transferred request's KV arrives computed; its
    admission step has no tokens and costs nothing in the simulator (a step of zero tokens), so
    ``k (t_m - t_d) = 0`` and ``lambda = B / ((O - 1) t_d)``."""
    i, o, cap, kv = (np.asarray(x, dtype=np.float64)[:, None] for x in
                     np.broadcast_arrays(input_tokens, output_tokens, max_batch, kv_tokens))
    ctx = i + o / 2.0
    b_max = np.minimum(cap, kv / ctx)
    b = batch_grid(b_max)
    valid = np.broadcast_to(b[:, :1] >= 1e-3, b.shape).copy()
    shape = b.shape
    t_d = _step_times(model, device, par, prec, options, runtime=runtime, prefill_seqs=0.0, chunk=0.0, past=0.0,
                      decode_seqs=b.ravel(), decode_context=np.broadcast_to(ctx, shape).ravel()).reshape(shape)
    rate = stationary_rate(b, o, t_d, 0.0, 0.0)
    zeros = np.zeros(shape)
    return LoadCurve(rate, b, t_d, zeros, zeros, zeros, valid)


def prefill_curve(model, device, par: Parallelism, prec: Precision, options: GraphOptions, *, input_tokens,
                  token_budget, runtime=None) -> LoadCurve:
    """Operating points of prefill-pool servers over :data:`RHO_GRID`: the colocated prefill queue
    without decodes. A prompt's own service is its chunks (``k = ceil(I / T)``; one step when it fits
    the budget); the queue drains at the rate of full-budget steps (queued prompts batched together,
    ``T / I`` whole prompts a step). A prompt arriving at an idle server starts at once (no running
    step), and a step takes the prompts waiting when it starts: a prompt that waited shares its last
    step with the prompts that arrived during its wait (``shared_extra_s``: a step of
    ``min(last + I, T)`` prompt tokens instead of ``last``)."""
    i, t = (np.asarray(x, dtype=np.float64) for x in np.broadcast_arrays(input_tokens, token_budget))
    c = np.minimum(i, t)
    k = np.ceil(i / c)
    last = i - (k - 1.0) * c
    shared = np.minimum(last + i, t)
    ones = np.ones(i.size)
    times = _step_times(model, device, par, prec, options, runtime=runtime,
                        prefill_seqs=np.concatenate([t / c, ones, 2.0 * ones]),
                        chunk=np.concatenate([c, last, shared / 2.0]),
                        past=np.concatenate([c * np.maximum(k - 2.0, 0.0) / 2.0, (k - 1.0) * c, 0.0 * ones]),
                        decode_seqs=0.0, decode_context=0.0)
    t_full, t_last, t_shared = times[:i.size], times[i.size:2 * i.size], times[2 * i.size:]
    service = (k - 1.0) * t_full + t_last
    max_rate = t / (i * t_full)  # prompt tokens at the rate of full-budget steps
    shape = (i.size, RHO_GRID.size)
    rho = np.broadcast_to(RHO_GRID[None, :], shape).copy()
    nan = np.full(shape, np.nan)
    zeros = np.zeros(shape)

    def col(x):
        return np.broadcast_to(np.asarray(x)[:, None], shape).copy()

    return LoadCurve(rho * max_rate[:, None], nan, nan, col(service), rho, zeros, np.ones(shape, dtype=bool),
                     col(np.maximum(t_shared - t_last, 0.0)), zeros, col(1.0 / max_rate))


def server_kv_tokens(model, device, par: Parallelism, prec: Precision, *, token_budget, max_batch,
                     memory_utilization: float) -> np.ndarray:
    """KV-cache tokens of one server (one pipeline engine), as :func:`~infersim.serving.engine.prepare`
    sizes it: usable memory less weights and the activation peak of a full token budget, over the
    KV bytes per token, split over the ``pp`` engines; <= 0 where the weights do not fit."""
    from ..perf.memory import activation_peak_bytes, kv_bytes_per_token_per_device, weight_bytes_per_device

    budget, seqs = (np.asarray(x, dtype=np.float64) for x in np.broadcast_arrays(token_budget, max_batch))
    weights = weight_bytes_per_device(model, par, prec).total
    act = activation_peak_bytes(model, par, prec, budget, np.minimum(budget, seqs))
    free = device.memory_bytes * memory_utilization - weights - act
    per_token = float(kv_bytes_per_token_per_device(model, par, prec).sum())
    tokens = free / per_token * (par.tp if par.dp_attention else 1)
    return tokens / par.pp
