"""Vectorized static estimate of many batch shapes on one deployment.

:func:`~infersim.perf.estimate.estimate` costs one ``(batch, input, output)``
exactly, one graph over all its decode steps (~1 ms). A design-space search
asks for thousands of shapes on the same (model, device, parallelism,
precision); :func:`batch_estimate` costs all of them with **one** graph build:

* **prefill**: one scenario per distinct prefill step of every configuration,
  planned exactly as :func:`~infersim.perf.estimate.plan_prefill` does under the
  per-step token budget ``max_prefill_tokens`` (chunked-prefill budget): whole
  prompts packed ``floor(budget / input)`` per step, or each prompt in chunks of
  ``budget`` tokens when it is longer. ``ttft_s`` is the mean over the batch's
  requests (estimate's definition, closed form here); ``ttft_p50/p90/p99_s`` are
  nearest-rank percentiles over the same requests; ``prefill_s`` (all prefill
  steps) is the TTFT of the last request.
* **decode**: steps ``s = 1 .. output - 1`` at context ``input + s``. The step time
  is smooth in the context (attention work is linear in it), so the sum over
  steps is taken exactly when there are at most ``decode_nodes`` steps, else by
  composite Simpson's rule on ``decode_nodes`` contexts plus the Euler-Maclaurin
  end correction ``(f(a) + f(b)) / 2`` (exact for a step time linear in the
  context). Tests hold TPOT within 0.5 % of ``estimate``; prefill and TTFT agree to
  floating point.
* **memory**: weights once, KV cache and activation peak as arrays, the same
  formulas as :func:`~infersim.perf.memory.memory_breakdown`.

Throughput, power and energy follow ``estimate`` (pipelines keep ``pp`` batches
in flight; linear power model between idle and TDP driven by busy time).
Configurations that do not fit are not costed (their times are NaN).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InfersimError
from ..hardware.device import Device
from ..models.config import ModelConfig
from ..runtime import Runtime
from .estimate import DEFAULT_MAX_PREFILL_TOKENS, runtime_step_times, speculative_round_s
from .graph import GraphOptions, options_for_device
from .memory import DEFAULT_MEMORY_UTILIZATION, activation_peak_bytes, kv_bytes_per_sequence, weight_bytes_per_device
from .parallel import Parallelism, Precision
from .shape import StepShape
from .transforms import prepare as prepare_transforms
from .transforms import speculation

DEFAULT_DECODE_NODES = 9
FULL_STEP, REST_STEP, CHUNK_STEP = 0, 1, 2


@dataclass(frozen=True)
class BatchEstimate:
    """Arrays over configurations (index ``i`` = the ``i``-th input shape); seconds, bytes, watts."""

    batch: np.ndarray
    input_tokens: np.ndarray
    output_tokens: np.ndarray
    max_prefill_tokens: np.ndarray  # prefill token budget per step (chunked-prefill budget)
    devices: int
    fits: np.ndarray
    weights_bytes: float
    kv_cache_bytes: np.ndarray
    activation_bytes: np.ndarray
    usable_bytes: float
    prefill_s: np.ndarray  # all prefill steps of the batch = TTFT of its last request
    ttft_s: np.ndarray  # mean over the batch's requests (estimate's ttft_s)
    ttft_p50_s: np.ndarray  # nearest-rank percentiles over the batch's requests
    ttft_p90_s: np.ndarray
    ttft_p99_s: np.ndarray
    decode_step_s: np.ndarray  # mean decode step = TPOT (the same for every request of the batch)
    decode_total_s: np.ndarray
    e2e_s: np.ndarray
    output_tokens_per_s: np.ndarray  # per replica
    input_tokens_per_s: np.ndarray
    power_w_per_device: np.ndarray
    joules_per_output_token: np.ndarray
    usd_per_million_output_tokens: np.ndarray  # NaN when the device has no price

    @property
    def tpot_s(self) -> np.ndarray:
        return self.decode_step_s

    @property
    def headroom_bytes(self) -> np.ndarray:
        return self.usable_bytes - (self.weights_bytes + self.kv_cache_bytes + self.activation_bytes)

    def __len__(self) -> int:
        return int(self.batch.size)


def sum_nodes(first: np.ndarray, count: np.ndarray, nodes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nodes and weights with ``sum_{j=first}^{first+count-1} f(j) ~= sum_k w_k f(x_k)``.

    Exact (every integer, weight 1) where ``count <= nodes``; else composite
    Simpson on ``nodes`` (odd) points over ``[first, last]`` plus ``(f(first) + f(last)) / 2``.
    Returns ``(owner, x, w)``: the index of the sum each node belongs to, its abscissa, its weight.
    """
    if nodes < 3 or nodes % 2 == 0:
        raise ValueError(f"nodes must be odd and >= 3, got {nodes}")
    first = np.asarray(first, dtype=np.float64)
    count = np.asarray(count, dtype=np.int64)
    exact = count <= nodes
    # exact sums: one node per integer
    ex_idx = np.flatnonzero(exact & (count > 0))
    ex_counts = count[ex_idx]
    ex_owner = np.repeat(ex_idx, ex_counts)
    starts = np.repeat(np.cumsum(ex_counts) - ex_counts, ex_counts)
    ex_x = first[ex_owner] + (np.arange(ex_owner.size) - starts)
    ex_w = np.ones(ex_owner.size)
    # quadrature sums
    q_idx = np.flatnonzero(~exact)
    span = (count[q_idx] - 1).astype(np.float64)
    h = span / (nodes - 1)
    simpson = np.ones(nodes)
    simpson[1:-1:2] = 4.0
    simpson[2:-1:2] = 2.0
    end = np.zeros(nodes)
    end[[0, -1]] = 0.5
    q_owner = np.repeat(q_idx, nodes)
    q_x = (first[q_idx][:, None] + h[:, None] * np.arange(nodes)[None, :]).ravel()
    q_w = (h[:, None] / 3.0 * simpson[None, :] + end[None, :]).ravel()
    return (np.concatenate([ex_owner, q_owner]), np.concatenate([ex_x, q_x]), np.concatenate([ex_w, q_w]))


def _prefill_scenarios(b: np.ndarray, i: np.ndarray, cap: np.ndarray):
    """Distinct prefill steps of every configuration, as :func:`~infersim.perf.estimate.plan_prefill`.

    Returns ``(owner, seqs, chunk, past, repeats, kind)``, one entry per distinct step; ``kind`` is
    :data:`FULL_STEP` / :data:`REST_STEP` (whole prompts) or :data:`CHUNK_STEP` (one chunk of a prompt).
    """
    whole = i <= cap
    per_step = np.where(whole, cap // np.maximum(i, 1), 1)
    owners, seqs, chunk, past, reps, kinds = [], [], [], [], [], []

    def add(idx, s, ch, p, r, kind):
        owners.append(idx); seqs.append(s); chunk.append(ch); past.append(p); reps.append(r)
        kinds.append(np.full(idx.size, kind))

    idx = np.flatnonzero(whole)
    full, rest = b[idx] // per_step[idx], b[idx] % per_step[idx]
    sel = full > 0
    add(idx[sel], per_step[idx][sel], i[idx][sel], np.zeros(sel.sum()), full[sel], FULL_STEP)
    sel = rest > 0
    add(idx[sel], rest[sel], i[idx][sel], np.zeros(sel.sum()), np.ones(sel.sum()), REST_STEP)
    idx = np.flatnonzero(~whole)
    chunks = -(-i[idx] // cap[idx])
    owner = np.repeat(idx, chunks)
    j = np.arange(owner.size) - np.repeat(np.cumsum(chunks) - chunks, chunks)
    size = np.minimum(cap[owner], i[owner] - j * cap[owner])
    add(owner, np.ones(owner.size), size, j * cap[owner], b[owner], CHUNK_STEP)
    return (np.concatenate(owners).astype(np.int64),
            *(np.concatenate(x).astype(np.float64) for x in (seqs, chunk, past, reps)),
            np.concatenate(kinds).astype(np.int8))


def ttft_quantile_s(b: np.ndarray, i: np.ndarray, cap: np.ndarray, full_step_s: np.ndarray,
                    rest_step_s: np.ndarray, prompt_s: np.ndarray, q: float) -> np.ndarray:
    """TTFT of the request at nearest rank ``ceil(q * batch)`` of the burst (arrays over configurations).

    Whole prompts: request ``r`` (0-based) ends with step ``r // per_step``; the first
    ``batch // per_step`` steps take ``full_step_s``, the last partial one ``rest_step_s``.
    Chunked: request ``r`` ends after ``r + 1`` prompt times ``prompt_s``.
    """
    r = np.maximum(np.ceil(q * b).astype(np.int64) - 1, 0)
    whole = i <= cap
    per_step = np.where(whole, cap // np.maximum(i, 1), 1)
    full = b // per_step
    step = r // per_step
    in_full = step < full
    packed = np.where(in_full, (step + 1) * full_step_s, full * full_step_s + rest_step_s)
    # (full_step_s / rest_step_s are 0 where a configuration has no such step)
    return np.where(whole, packed, (r + 1) * prompt_s)


def batch_estimate(model: ModelConfig, device: Device, par: Parallelism = Parallelism(),
                   prec: Precision = Precision(), *, batch, input_tokens, output_tokens,
                   max_prefill_tokens=DEFAULT_MAX_PREFILL_TOKENS, options: GraphOptions = GraphOptions(),
                   memory_utilization: float = DEFAULT_MEMORY_UTILIZATION,
                   decode_nodes: int = DEFAULT_DECODE_NODES, runtime: Runtime | None = None) -> BatchEstimate:
    """Static estimate of every ``(batch, input, output, max_prefill_tokens)`` (broadcast arrays)
    on one deployment; the semantics of :func:`~infersim.perf.estimate.estimate` (``runtime`` included)."""
    b, i, o, cap = (np.atleast_1d(np.asarray(x)).astype(np.int64) for x in
                    np.broadcast_arrays(batch, input_tokens, output_tokens, max_prefill_tokens))
    for name, arr in (("batch", b), ("input_tokens", i), ("output_tokens", o), ("max_prefill_tokens", cap)):
        if arr.size and arr.min() < 1:
            raise InfersimError(f"{name} must be >= 1, got {int(arr.min())}")
    par.validate(model)
    if options.transforms:
        model, prec = prepare_transforms(model, prec, options.transforms)
        options = options_for_device(options, device)
    n = b.size
    # ----- memory: memory_breakdown's terms with the largest prefill step -------------------
    whole = i <= cap
    step_tokens = np.where(whole, np.minimum(b, cap // i) * i, cap).astype(np.float64)
    context = (i + o).astype(np.float64)
    weights = float(weight_bytes_per_device(model, par, prec, options.transforms).total)
    kv = b * kv_bytes_per_sequence(model, par, prec, context)
    act = activation_peak_bytes(model, par, prec, step_tokens, b.astype(np.float64), options.attention_impl,
                                chunk=step_tokens / b, context=context)
    usable = device.memory_bytes * memory_utilization
    fits = usable - (weights + kv + act) >= 0

    out = {name: np.full(n, np.nan) for name in _TIMED}
    ok = np.flatnonzero(fits)
    if ok.size:
        _cost(model, device, par, prec, options, decode_nodes, ok, b, i, o, cap, out, runtime)
    return BatchEstimate(batch=b, input_tokens=i, output_tokens=o, max_prefill_tokens=cap, devices=par.devices,
                         fits=fits, weights_bytes=weights, kv_cache_bytes=np.asarray(kv, dtype=np.float64),
                         activation_bytes=np.asarray(act, dtype=np.float64), usable_bytes=usable, **out)


_TIMED = ("prefill_s", "ttft_s", "ttft_p50_s", "ttft_p90_s", "ttft_p99_s", "decode_step_s", "decode_total_s",
          "e2e_s", "output_tokens_per_s", "input_tokens_per_s", "power_w_per_device", "joules_per_output_token",
          "usd_per_million_output_tokens")


def _cost(model, device, par, prec, options, decode_nodes, ok, b, i, o, cap, out, runtime=None) -> None:
    """Fill the time / throughput / energy arrays of ``out`` for configurations ``ok``."""
    bk, ik, ok_o, capk = b[ok], i[ok], o[ok], cap[ok]
    m = ok.size
    p_owner, p_seqs, p_chunk, p_past, p_reps, p_kind = _prefill_scenarios(bk, ik, capk)
    d_owner, d_step, d_w = sum_nodes(np.ones(m), ok_o - 1, decode_nodes)
    n_p = p_owner.size
    zeros_p, zeros_d = np.zeros(n_p), np.zeros(d_owner.size)
    shape = StepShape.uniform(
        model,
        prefill_seqs=np.concatenate([p_seqs, zeros_d]),
        chunk=np.concatenate([p_chunk, zeros_d]),
        past=np.concatenate([p_past, zeros_d]),
        decode_seqs=np.concatenate([zeros_p, bk[d_owner].astype(np.float64)]),
        decode_context=np.concatenate([zeros_p, ik[d_owner] + d_step]),
    )
    table, costs, step = runtime_step_times(runtime, model, device, par, prec, shape, options)
    busy_unit = np.maximum(np.maximum(costs.compute_s, costs.memory_s), costs.network_s)
    busy = (busy_unit * costs.count[:, None]).sum(axis=0)
    spec = speculation(options.transforms, model) if options.transforms else None
    if spec is not None and d_owner.size:
        # decode steps are speculative rounds; per emitted token: round / tokens per round
        rounds = speculative_round_s(model, device, par, prec, options, spec, bk[d_owner], ik[d_owner] + d_step)
        step = np.concatenate([step[:n_p], rounds / spec.tokens_per_round])
    p_step = step[:n_p]

    def per_config(owner, values):
        return np.bincount(owner, weights=values, minlength=m)

    prefill = per_config(p_owner, p_reps * p_step)
    kind_time = {k: per_config(p_owner[p_kind == k], p_step[p_kind == k])
                 for k in (FULL_STEP, REST_STEP, CHUNK_STEP)}
    per_step = np.where(ik <= capk, capk // ik, 1)
    full_steps = (bk // per_step).astype(np.float64)
    rest = (bk % per_step).astype(np.float64)
    t_full, t_rest, t_prompt = kind_time[FULL_STEP], kind_time[REST_STEP], kind_time[CHUNK_STEP]
    # mean over requests of the end of their prompt's last step (estimate's _mean_ttft, closed form)
    packed_mean = (per_step * t_full * full_steps * (full_steps + 1) / 2 + rest * (full_steps * t_full + t_rest)) / bk
    ttft_mean = np.where(ik <= capk, packed_mean, t_prompt * (bk + 1) / 2.0)
    decode_total = per_config(d_owner, d_w * step[n_p:])
    owner = np.concatenate([p_owner, d_owner])
    weight = np.concatenate([p_reps, d_w])  # occurrences of each scenario (estimate's busy weights)
    busy_sum = per_config(owner, weight * busy)
    time_sum = per_config(owner, weight * step)
    n_decode = (ok_o - 1).astype(np.float64)
    e2e = prefill + decode_total
    pipelined = par.pp
    out_tps = bk * ok_o / e2e * pipelined
    frac = np.divide(busy_sum, time_sum, out=np.zeros(m), where=time_sum > 0)
    power = device.idle_w + (device.tdp_w - device.idle_w) * frac
    out["prefill_s"][ok] = prefill
    out["ttft_s"][ok] = ttft_mean
    for name, q in (("ttft_p50_s", 0.5), ("ttft_p90_s", 0.9), ("ttft_p99_s", 0.99)):
        out[name][ok] = ttft_quantile_s(bk, ik, capk, t_full, t_rest, t_prompt, q)
    out["decode_step_s"][ok] = np.divide(decode_total, n_decode, out=np.zeros(m), where=n_decode > 0)
    out["decode_total_s"][ok] = decode_total
    out["e2e_s"][ok] = e2e
    out["output_tokens_per_s"][ok] = out_tps
    out["input_tokens_per_s"][ok] = bk * ik / e2e * pipelined
    out["power_w_per_device"][ok] = power
    out["joules_per_output_token"][ok] = power * par.devices * e2e / (bk * ok_o * pipelined)
    if device.usd_per_hour is not None:
        out["usd_per_million_output_tokens"][ok] = device.usd_per_hour * par.devices / (out_tps * 3600.0) * 1e6
