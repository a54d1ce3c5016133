"""Roofline time of every operator in an :class:`OpTable` on one device (vectorized).

For each operator occurrence::

    compute_s  = flops / (peak_flops[dtype] * eff_compute)
    memory_s   = bytes / (memory_bandwidth * eff_memory)
    time_s     = max(compute_s, memory_s) + kernels * kernel_overhead      (compute ops)
    time_s     = alpha-beta collective time + kernel_overhead             (collectives)

(fused attention adds its non-overlapped per-query time when the device sets
``attention_query_bandwidth_fraction``; see :class:`~infersim.hardware.schema.EfficiencySpec`
for the per-kind fractions and overheads.)

Per-thread-block attention terms (each only when the device sets it; ``U`` compute units):

* softmax: ``compute_s += scores / (attention_softmax_fraction * fp32_peak)``, one
  exponential per attention score on the vector / special-function units, which for
  small head sizes rival the tensor-core time (FlashAttention-3, Shah et al. 2024).
* prefill blocks: a fused prefill kernel runs one thread block per sequence x query head x
  query tile of ``T = attention_query_tile`` queries (FlashAttention, Dao et al. 2022), so
  ``blocks = seqs * heads * ceil(chunk / T)`` with ``chunk = query_tokens / seqs`` (the mean
  chunk when a step mixes chunk sizes); each block pays a fixed ``attention_cta_us`` (loading
  its query tile, the softmax normalization, writing its output tile): ``+ blocks / U * cta``.
  This is where short sequences in large batches lose: a 16-query sequence costs a whole tile.
  Few blocks (one long sequence with few heads) leave compute units idle: the share of the
  machine kept busy is ``r = blocks / (blocks + attention_parallel_half)``, as for decode below.
* decode blocks: FlashDecoding-style kernels (Dao et al. 2023; TensorRT-LLM XQA) run one
  block per sequence x KV head with the query heads of a group packed together; MHA (a group
  of one) and groups above ``decode_attention_max_group`` run one block per sequence x query
  head, each streaming its KV head's cache itself (``decode_attention_head_cta_us`` set):
  ``+ blocks / U * cta``, and the share of the machine a decode keeps busy is
  ``r = blocks / (blocks + decode_attention_parallel_half)`` (its FLOPs, softmax and KV
  bytes are costed as ``work / r`` on the whole machine; the queries a block loads once
  are not): few sequences x heads cannot keep enough loads in flight (Little's law) or,
  where a kernel does not split the KV (FlashDecoding's point), enough compute units busy.
  Such a kernel walks each sequence from one block at a fixed rate until the blocks fill
  the machine: ``r = (1 + (half / blocks)^p)^(-1/p)`` with a sharpness ``p`` > 1
  (``decode_attention_parallel_sharpness``; ``p`` -> inf is ``min(1, blocks / half)``).
  The per-query-head kernel has its own block and launch costs and half-point, and its
  blocks re-read their KV head side by side, from the cache
  (``decode_attention_reread_bandwidth_ratio`` times the DRAM rate) where the device says so.

All of them add to the op's time outside the compute / memory max (``overhead_s`` holds
the block costs).

MoE grouped GEMMs (``moe.experts.*``) may tile each expert's rows apart
(``grouped_gemm_expert_tiles``, :mod:`infersim.perf.efficiency`) and add the token
permutation around them: ``+ act_bytes / (grouped_gemm_act_bandwidth_fraction * bandwidth)``.

Warm cache (``cost_ops(..., warm_cache=True)``, for predicting isolated kernel
microbenchmarks only): of an op's bytes ``W`` the share ``h = 1 / (1 + (W / C)^6)`` moves at
``ratio`` times the DRAM rate, ``memory_s *= 1 - h + h / ratio`` (``C``, ``ratio``: the
device's ``warm_cache_bytes`` and ``warm_cache_bandwidth_ratio``; attention kernels may have
their own), and so does fused attention's per-query term. On decode rows the factor speeds
the machine-wide stream only, not one block's own walk: ``1 / r`` becomes ``(factor^p +
(half / blocks)^p)^(1/p)``. A serving step never uses it: between two runs of a kernel the
rest of the model's weights pass through the cache.

This is the roofline model (Williams, Waterman & Patterson, CACM 2009) with a
size-dependent achievable peak (:mod:`infersim.perf.efficiency`) instead of one
constant, plus a fixed per-kernel launch cost.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from ..hardware.device import Device
from .array_mapping import array_extra_bytes
from .collectives import collective_time_s
from .efficiency import tiled_gemm_utilization, wave_utilization
from .operators import COLLECTIVE_NAMES, Collective, OpKind, OpTable


class Bound(IntEnum):
    COMPUTE = 0
    MEMORY = 1
    NETWORK = 2


BOUND_NAMES = {Bound.COMPUTE: "compute", Bound.MEMORY: "memory", Bound.NETWORK: "network"}


@dataclass
class OpCosts:
    """Per-occurrence times, shape (n_ops, n_scenarios), seconds."""

    compute_s: np.ndarray
    memory_s: np.ndarray
    network_s: np.ndarray
    overhead_s: np.ndarray
    time_s: np.ndarray
    bound: np.ndarray  # Bound codes
    count: np.ndarray  # (n_ops,) occurrences per step

    @property
    def total_time_s(self) -> np.ndarray:
        """Time of each operator row over all its occurrences, (n_ops, S)."""
        return self.time_s * self.count[:, None]

    @property
    def step_time_s(self) -> np.ndarray:
        """Sum over operators: the step time of each scenario, (S,)."""
        return self.total_time_s.sum(axis=0)


def compute_time_s(flops, peak_flops, device: Device, gemm_m=None, gemm_n=None, ramp=True, max_fraction=None,
                   gemm_k=None, half_flops=None, gemm_rows=None, gemm_experts=None, gemm_dtypes=None):
    """Compute-side time of kernels doing ``flops`` (GEMM shape enables wave quantization).

    ``ramp`` applies the size-dependent ramp-up of matrix units (tensor cores / MXUs);
    vector work (elementwise) runs at ``compute_max_fraction`` of the vector peak.
    ``max_fraction`` (scalar or array) overrides the device's ``compute_max_fraction``,
    ``half_flops`` (scalar or array) its ``compute_half_flops``. With GEMM shapes,
    the device's tile model applies (:func:`gemm_utilization`), only to ``gemm_rows``
    (a boolean mask) when given.
    """
    eff = device.efficiency
    fraction = eff.core.compute_max_fraction if max_fraction is None else max_fraction
    half = (eff.core.compute_half_flops if half_flops is None else half_flops) if ramp else 0.0
    flops = np.asarray(flops, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        if np.ndim(half) == 0:
            e = fraction * flops / (flops + half) if half > 0 else fraction * np.ones_like(flops)
        else:
            half = np.asarray(half, dtype=np.float64)
            e = np.where(half > 0, fraction * flops / (flops + half), fraction * np.ones_like(flops))
    if gemm_m is not None:
        if gemm_rows is not None and device.efficiency.gemm.tiles and not np.all(gemm_rows):
            # the tile model on the GEMM rows only (per element: the same numbers), 1 elsewhere
            # (the single-tile wave model gives non-GEMMs, passed as 1e9 x 1e9, ~1 already)
            rows = np.flatnonzero(np.asarray(gemm_rows).reshape(len(gemm_rows), -1)[:, 0])
            sub = (lambda a: a if a is None or np.ndim(a) < 2 else np.asarray(a)[rows])
            util = np.ones(np.broadcast_shapes(np.shape(e), np.shape(gemm_m)))
            util[rows] = gemm_utilization(sub(gemm_m), sub(gemm_n), sub(gemm_k), device, sub(gemm_experts),
                                          None if gemm_dtypes is None else [gemm_dtypes[i] for i in rows])
        else:
            util = gemm_utilization(gemm_m, gemm_n, gemm_k, device, gemm_experts, gemm_dtypes)
        e = e * util
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(flops > 0, flops / (peak_flops * np.maximum(e, 1e-12)), 0.0)


def gemm_utilization(m, n, k, device: Device, experts=None, dtypes=None):
    """Compute-unit utilization of GEMMs: the padded-tile model over the device's candidate
    tiles when it lists some (``gemm_tiles``), else wave quantization of one tile size.
    ``experts``: rows split over that many experts (grouped GEMMs; used by the padded-tile
    model when the device sets ``grouped_gemm_expert_tiles``). ``dtypes`` (one per row of
    2-d inputs): rows whose dtype has its own candidates (``gemm_tiles_by_dtype``) use them."""
    eff = device.efficiency
    if not eff.gemm.tiles:
        return wave_utilization(m, n, eff.gemm.tile_m, eff.gemm.tile_n, device.compute_units)
    k = 1.0 if k is None else k
    experts = experts if eff.moe.expert_tiles else None

    def util(tiles, rows=slice(None)):
        pick = (lambda a: a if a is None or np.ndim(a) < 2 else np.asarray(a)[rows])
        return tiled_gemm_utilization(pick(m), pick(n), pick(k), tiles, device.compute_units, eff.gemm.k_half,
                                      eff.gemm.gemv_max_m, pick(experts), eff.gemm.split_k,
                                      eff.gemm.tile_intensity_half)

    out = util(eff.gemm.tiles)
    if dtypes is not None and eff.gemm.tiles_by_dtype:
        for d in sorted(set(dtypes)):
            tiles = eff.tiles_for(d)
            if tiles != eff.gemm.tiles:
                rows = np.array([x == d for x in dtypes])
                out[rows] = util(tiles, rows)
    return out


def memory_time_s(n_bytes, device: Device, max_fraction=None):
    eff = device.efficiency
    fraction = eff.core.memory_max_fraction if max_fraction is None else max_fraction
    n_bytes = np.asarray(n_bytes, dtype=np.float64)
    half = eff.core.memory_half_bytes
    e = fraction * n_bytes / (n_bytes + half) if half > 0 else fraction * np.ones_like(n_bytes)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(n_bytes > 0, n_bytes / (device.memory_bandwidth_bytes_per_s * np.maximum(e, 1e-12)), 0.0)


# plain ints of the operator kinds compared per row in the loops below (an enum member lookup
# costs more than the comparison)
_GEMM, _ATTENTION, _ELEMENTWISE, _COLLECTIVE = (int(OpKind.GEMM), int(OpKind.ATTENTION), int(OpKind.ELEMENTWISE),
                                                int(OpKind.COLLECTIVE))


def collective_device(device: Device, kind: int) -> Device:
    """``device`` as the collective model should see it for ``kind``: the calibrated per-step
    latency on the scale-up link (per collective where set) and the per-collective bandwidth
    fraction, when set."""
    eff = device.efficiency
    name = COLLECTIVE_NAMES[Collective(kind)]
    fraction = eff.collectives.bandwidth_fraction_by_kind.get(name)
    latency_us = eff.collectives.latency_for(name)
    if latency_us is None and fraction is None:
        return device
    up = device.scale_up
    if latency_us is not None:
        up = dataclasses.replace(up, latency_s=latency_us * 1e-6)
    if fraction is not None:
        eff = eff.model_copy(update={"collective_bandwidth_fraction": fraction})
    return dataclasses.replace(device, scale_up=up, efficiency=eff)


#: the operator a kernel microbenchmark of a quantized linear (fp8, nvfp4) runs before its GEMM:
#: one pass over the ``m x k`` activations, 16-bit in, quantized out (TensorRT-LLM's ``Linear``
#: calls ``fp4_quantize`` / ``static_quantize_e4m3_per_tensor`` on a bf16 input, then the GEMM).
#: Priced at the device's ``gemm_quantize_bandwidth_fraction_by_dtype`` of the memory bandwidth
#: (no launch cost of its own: the GEMM's call cost covers the pair), or not at all where that
#: is unset. A serving step has no such operator: TensorRT-LLM's producers (the fused
#: all-reduce / residual / RMSNorm / quantize kernels, ``AllReduceFusionOp.*_QUANT_*``) hand the
#: linear its input already quantized (engines that do not are discussed in docs/validation.md).
QUANTIZE_INPUT = "gemm.quantize_input"


def is_decode_attention(name: str) -> bool:
    """The step graph's decode attention rows (one query per sequence)."""
    return name.startswith("attention.decode")


def is_grouped_gemm(name: str) -> bool:
    """The step graph's MoE expert GEMMs (one grouped kernel over the local experts)."""
    return name.startswith("moe.experts")


def op_overheads_s(table: OpTable, device: Device) -> np.ndarray:
    """Fixed cost of one occurrence of each operator (n_ops,): launches x per-launch cost;
    GEMMs, fused attention and collectives use their own calibrated cost when set."""
    eff = device.efficiency
    per_launch = []
    for name, kind, dtype, collective in zip(table.names, table.kind, table.dtype, table.collective):
        cost = None
        if kind == _GEMM:
            cost = eff.gemm_overhead_us(dtype)
            if eff.moe.overhead_us is not None and is_grouped_gemm(name):
                cost = eff.moe.overhead_us
        elif kind == _ATTENTION:
            cost = eff.attention_terms(is_decode_attention(name))[2]
        elif kind == _COLLECTIVE:
            cost = eff.collectives.overhead_for(COLLECTIVE_NAMES[Collective(int(collective))])
        per_launch.append(eff.core.kernel_overhead_us if cost is None else cost)
    return table.kernels * np.asarray(per_launch, dtype=np.float64) * 1e-6


def _attention_columns(table: OpTable, device: Device) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Per-row (memory fraction, per-query bandwidth in bytes/s; 0 = none), shape (n_ops, 1),
    or None where no attention-specific value is set."""
    eff = device.efficiency
    mem = np.full(len(table.names), eff.core.memory_max_fraction)
    query_bw = np.zeros(len(table.names))
    any_mem = any_query = False
    for i, (name, kind, dtype) in enumerate(zip(table.names, table.kind, table.dtype)):
        if kind != _ATTENTION:
            continue
        m, q, _ = eff.attention_terms(is_decode_attention(name), dtype)
        if m is not None:
            mem[i], any_mem = m, True
        if q is not None:
            query_bw[i], any_query = device.memory_bandwidth_bytes_per_s * q, True
    return (mem[:, None] if any_mem else None), (query_bw[:, None] if any_query else None)


@dataclass
class BlockTerms:
    """Per-thread-block attention terms of every operator, shape (n_ops, S) (see the module
    docstring): softmax seconds (compute side), fixed block seconds, extra KV bytes streamed by
    per-query-head decode blocks, and the decode parallelism ramp (1 = none)."""

    softmax_s: np.ndarray
    block_s: np.ndarray
    kv_extra_bytes: np.ndarray
    parallel_ramp: np.ndarray
    decode: np.ndarray  # (n_ops, 1): decode attention rows, whose ramp slows their KV stream only
    sharpness: np.ndarray | float = 1.0  # p of the decode rows' ramps (parallel_share)


def decode_units(heads, kv_heads, mla, eff) -> tuple[np.ndarray, np.ndarray]:
    """(blocks per sequence, per-query-head kernel?) of decode attention rows: KV heads for the
    grouped kernel; query heads for MHA and groups above ``decode_attention_max_group`` when the
    device has a per-head kernel (``decode_attention_head_cta_us``). MLA decodes (``mla``)
    attend over one shared latent: always grouped."""
    heads = np.asarray(heads, dtype=np.float64)
    kv_heads = np.asarray(kv_heads, dtype=np.float64)
    if not eff.per_head_decode:
        return kv_heads, np.zeros(heads.shape, dtype=bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        group = np.where(kv_heads > 0, heads / np.where(kv_heads > 0, kv_heads, 1.0), 1.0)
    per_head = group <= 1.0
    if eff.decode.max_group is not None:
        per_head = per_head | (group > eff.decode.max_group)
    per_head = per_head & ~np.asarray(mla, dtype=bool)
    return np.where(per_head, heads, kv_heads), per_head


def block_terms(table: OpTable, device: Device) -> BlockTerms | None:
    """The per-thread-block attention terms of ``table`` on ``device``; None when the device
    sets none of them. Only attention rows have them: those rows are costed alone (per element,
    the same numbers) and the others get the neutral terms (no time, no extra bytes, ramp 1)."""
    if not device.efficiency.block_terms:
        return None
    attn = np.flatnonzero(table.kind == OpKind.ATTENTION)
    if attn.size == len(table.names):
        return _block_terms(table, device)
    sub = _block_terms(table.take_ops(attn), device)
    rows = len(table.names)

    def spread(x, fill):
        x = np.asarray(x)
        if x.ndim == 0:
            return x
        out = np.full((rows, x.shape[1]), fill, dtype=x.dtype)
        out[attn] = x
        return out

    return BlockTerms(spread(sub.softmax_s, 0.0), spread(sub.block_s, 0.0), spread(sub.kv_extra_bytes, 0.0),
                      spread(sub.parallel_ramp, 1.0), spread(sub.decode, False),
                      sub.sharpness if np.ndim(sub.sharpness) == 0 else spread(sub.sharpness, 1.0))


def _block_terms(table: OpTable, device: Device) -> BlockTerms:
    eff = device.efficiency
    shape = table.flops.shape
    attn = (table.kind == OpKind.ATTENTION)[:, None]
    decode = np.array([is_decode_attention(n) for n in table.names], dtype=bool)[:, None] & attn
    prefill = attn & ~decode
    units = float(max(device.compute_units, 1))
    seqs = table.seqs
    zero = np.zeros(shape)
    softmax = zero
    if eff.attention.softmax_fraction is not None:
        rate = eff.attention.softmax_fraction * device.peak_flops("fp32")
        softmax = np.where(attn, table.scores / rate, 0.0)
    block = zero
    ramp = np.ones(shape)
    if eff.attention.cta_us is not None or eff.attention.parallel_half is not None:
        tile = float(eff.attention.query_tile or 128)
        with np.errstate(divide="ignore", invalid="ignore"):
            tiles = np.ceil(table.query_tokens / np.where(seqs > 0, seqs, 1.0) / tile - 1e-9)
        blocks = np.where(prefill & (seqs > 0), seqs * table.heads * tiles, 0.0)
        if eff.attention.cta_us is not None:
            block = block + blocks / units * (eff.attention.cta_us * 1e-6)
        if eff.attention.parallel_half is not None:
            ramp = np.where(blocks > 0, blocks / (blocks + eff.attention.parallel_half), 1.0)
    extra = zero
    if not decode.any():
        return BlockTerms(softmax, block, extra, ramp, decode)
    per_unit, per_head = decode_units(table.heads, table.kv_heads, table.mla[:, None], eff)
    dec_blocks = np.where(decode & (seqs > 0), seqs * per_unit, 0.0)
    # per op: the grouped and the per-query-head kernel's terms; per scenario: the one that runs
    grouped = [eff.decode_kernel(d) for d in table.dtype]
    head = [eff.decode_kernel(d, per_head=True) for d in table.dtype] if eff.per_head_decode else None

    def pick(name: str, missing: float = 0.0) -> np.ndarray:
        def column(kernels):
            return np.array([missing if getattr(k, name) is None else getattr(k, name) for k in kernels])[:, None]
        return column(grouped) if head is None else np.where(per_head, column(head), column(grouped))

    if eff.per_head_decode:
        launch_us = pick("launch_us")
        if launch_us.any():
            block = block + np.where(decode & per_head & (seqs > 0), launch_us * 1e-6, 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            group = np.where(table.kv_heads > 0, table.heads / np.where(table.kv_heads > 0, table.kv_heads, 1.0), 1.0)
        # each query head's block streams its KV head's cache: (group - 1) more reads of it
        extra = np.where(decode & per_head & (seqs > 0), table.kv_bytes * (group - 1.0), 0.0)
    block = block + dec_blocks / units * (pick("cta_us") * 1e-6)
    half, sharp = pick("half", np.nan), pick("sharpness")
    ramp = np.where((dec_blocks > 0) & ~np.isnan(half), parallel_share(dec_blocks, np.nan_to_num(half), sharp), ramp)
    return BlockTerms(softmax, block, extra, ramp, decode, sharp)


def parallel_share(blocks, half, sharpness=1.0):
    """Share of the machine ``blocks`` thread blocks keep busy: ``(1 + (half / blocks)^p)^(-1/p)``
    with ``p = sharpness`` (arrays broadcast; ``blocks > 0``). ``p = 1`` is ``blocks / (blocks +
    half)``, a soft ramp (loads in flight per block, Little's law); a large ``p`` tends to
    ``min(1, blocks / half)``: blocks that each stream their sequence at a fixed rate until
    ``half`` of them fill the machine (a decode kernel that does not split the KV sequence)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if np.all(np.asarray(sharpness) == 1.0):
            return blocks / (blocks + half)
        return (1.0 + (half / blocks) ** sharpness) ** (-1.0 / sharpness)


def mla_device(device: Device) -> Device:
    """``device`` as MLA attention rows see it: its ``mla_overrides`` applied."""
    eff = device.efficiency
    return device if not eff.mla.overrides else dataclasses.replace(device, efficiency=eff.for_mla())


#: steepness of the warm-cache hit share in the working set (``h = 1 / (1 + (W / C)^s)``): a
#: cyclic scan of a working set larger than an LRU-like cache mostly misses
WARM_CACHE_STEEPNESS = 6.0


def warm_cache_factor(working_bytes, capacity_bytes, ratio):
    """Factor on the DRAM time of ``working_bytes`` when a share ``h = 1 / (1 + (W / C)^6)`` of
    them is cache-resident and moves ``ratio`` times faster: ``1 - h + h / ratio`` (arrays
    broadcast; a ratio of 1 gives 1)."""
    w = np.asarray(working_bytes, dtype=np.float64)
    hit = 1.0 / (1.0 + (w / capacity_bytes) ** WARM_CACHE_STEEPNESS)
    return 1.0 - hit + hit / ratio


def attention_head_dim(table: OpTable, i: int) -> np.ndarray:
    """Head size of attention row ``i`` per scenario: ``flops / (4 scores)`` (QK^T and PV, two
    FLOPs per score and head dimension each); 0 where it has no scores."""
    scores = table.scores[i]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(scores > 0, table.flops[i] / (4.0 * np.where(scores > 0, scores, 1.0)), 0.0)


def _head_size_fractions(table: OpTable, eff, fractions: np.ndarray) -> np.ndarray:
    """``fractions`` (n_ops, 1) with non-MLA prefill attention rows at head sizes without a
    native kernel in their dtype at the dtype's fallback fraction, (n_ops, S). (Decode kernels
    are another family, compiled for every head size.)"""
    out = np.broadcast_to(fractions, table.flops.shape).copy()
    for i, (name, kind, dtype) in enumerate(zip(table.names, table.kind, table.dtype)):
        if kind == _ATTENTION and dtype in eff.attention.native_head_dims_by_dtype:
            out[i] = eff.attention_row_fraction(dtype, attention_head_dim(table, i),
                                                decode=is_decode_attention(name), mla=bool(table.mla[i]))
    return out


def _warm_cache_factors(table: OpTable, device: Device, working_bytes: np.ndarray) -> np.ndarray | None:
    eff = device.efficiency
    terms = [eff.warm_cache_terms(k == _ATTENTION, d) for k, d in zip(table.kind, table.dtype)]
    if all(size is None or ratio <= 1.0 for size, ratio in terms):
        return None
    # per op; no capacity (or no faster cache) -> ratio 1, a factor of 1
    capacity = np.array([1.0 if size is None else size for size, _ in terms])[:, None]
    ratio = np.array([1.0 if size is None else max(r, 1.0) for size, r in terms])[:, None]
    return warm_cache_factor(working_bytes, capacity, ratio)


def cost_ops(table: OpTable, device: Device, sparse: bool = False, warm_cache: bool = False) -> OpCosts:
    """Roofline time of every operator occurrence in ``table`` on ``device``.

    MLA attention rows use the device's ``mla_overrides`` (their own kernels).
    ``warm_cache``: the ops are isolated kernels run back to back on the same buffers (a
    kernel microbenchmark), whose working set may stay in the last-level cache."""
    if device.efficiency.mla.overrides and table.mla.any():
        if table.mla.all():
            return _cost_ops(table, mla_device(device), sparse, warm_cache)
        costs = _cost_ops(table, device, sparse, warm_cache)
        idx = np.flatnonzero(table.mla)
        alt = _cost_ops(table.take_ops(idx), mla_device(device), sparse, warm_cache)
        for name in ("compute_s", "memory_s", "network_s", "overhead_s", "time_s", "bound"):
            getattr(costs, name)[idx] = getattr(alt, name)
        return costs
    return _cost_ops(table, device, sparse, warm_cache)


def _cost_ops(table: OpTable, device: Device, sparse: bool, warm_cache: bool = False) -> OpCosts:
    # elementwise math runs on the vector units (fp32 CUDA-core / VPU peak), not tensor cores
    vector_peak = device.peak_flops("fp32")
    peaks = np.array([vector_peak if k == _ELEMENTWISE else device.peak_flops(d, sparse=sparse)
                      for k, d in zip(table.kind, table.dtype)])[:, None]
    is_gemm = (table.kind == OpKind.GEMM)[:, None]
    is_attn = (table.kind == OpKind.ATTENTION)[:, None]
    is_matrix = (table.kind != OpKind.ELEMENTWISE)[:, None]
    eff = device.efficiency
    fractions = np.array([eff.gemm_fraction(d, grouped=is_grouped_gemm(name)) if k == _GEMM
                          else eff.attention_row_fraction(d, decode=is_decode_attention(name), mla=mla)
                          if k == _ATTENTION else eff.compute_fraction(d)
                          for name, k, d, mla in zip(table.names, table.kind, table.dtype, table.mla)])[:, None]
    if eff.attention.native_head_dims_by_dtype and eff.attention.fallback_fraction_by_dtype:
        fractions = _head_size_fractions(table, eff, fractions)
    half = eff.core.compute_half_flops
    if eff.attention.half_flops is not None:
        half = np.where(is_attn, eff.attention.half_flops, eff.core.compute_half_flops)
    blocks = block_terms(table, device)
    # a decode kernel keeping only a share of the machine busy (parallelism ramp) takes as long
    # as one doing its work / share on the whole machine (start-up costs unchanged)
    flops = table.flops if blocks is None else table.flops / blocks.parallel_ramp
    compute = compute_time_s(
        flops, peaks, device,
        gemm_m=np.where(is_gemm, table.gemm_m, 1e9),  # non-GEMMs: no wave penalty
        gemm_n=np.where(is_gemm, table.gemm_n, 1e9),
        gemm_k=np.where(is_gemm, table.gemm_k, 1e9),
        max_fraction=fractions, half_flops=half, gemm_rows=is_gemm,
        gemm_experts=np.where(is_gemm, table.experts, 0.0) if eff.moe.expert_tiles else None,
        gemm_dtypes=table.dtype,
    )
    if not is_matrix.all():
        vector = compute_time_s(table.flops, peaks, device, ramp=False)
        compute = np.where(is_matrix, compute, vector)
    mem_fraction, query_bw = _attention_columns(table, device)
    if eff.gemm.memory_max_fraction is not None and is_gemm.any():
        # tiled GEMMs (not matrix-vector ones) stream at their own fraction
        base = eff.core.memory_max_fraction if mem_fraction is None else mem_fraction
        tiled = is_gemm & (table.gemm_m > eff.gemm.gemv_max_m)
        mem_fraction = np.where(tiled, eff.gemm.memory_max_fraction, base)
    if eff.moe.memory_fraction_by_dtype and is_gemm.any():
        grouped = [eff.grouped_memory_fraction(d) if k == _GEMM and is_grouped_gemm(n) else None
                   for n, k, d in zip(table.names, table.kind, table.dtype)]
        if any(g is not None for g in grouped):
            base = eff.core.memory_max_fraction if mem_fraction is None else mem_fraction
            mem_fraction = np.where(np.array([g is not None for g in grouped])[:, None],
                                    np.array([g or 0.0 for g in grouped])[:, None], base)
    # warm cache: the working set is the op's distinct bytes (re-reads of a KV head hit it again)
    factor = _warm_cache_factors(table, device, table.total_bytes) if warm_cache else None
    if blocks is None:
        # template devices: operand re-reads the SRAM cannot hold, unfused attention (array_mapping)
        extra = array_extra_bytes(table, device)
        memory = memory_time_s(table.total_bytes if extra is None else table.total_bytes + extra, device,
                               mem_fraction)
        if factor is not None:
            memory = memory * factor
    else:
        compute = compute + blocks.softmax_s / blocks.parallel_ramp
        memory = _block_memory_s(table, device, blocks, mem_fraction, factor)
    if query_bw is not None:
        # per-query work of fused attention that does not overlap its main loop
        with np.errstate(divide="ignore", invalid="ignore"):
            query = np.where(query_bw > 0, table.act_bytes / np.where(query_bw > 0, query_bw, 1.0), 0.0)
        if factor is not None:
            query = query * factor  # its bytes are the op's: cache-resident alike
    else:
        query = 0.0
    network = np.zeros_like(compute)
    is_coll = table.kind == OpKind.COLLECTIVE
    for i in np.flatnonzero(is_coll):
        kind = int(table.collective[i])
        network[i] = collective_time_s(kind, table.comm_bytes[i], int(table.group_size[i]),
                                       collective_device(device, kind))
    active = (table.flops + table.total_bytes + table.comm_bytes) > 0
    overhead = np.where(active, op_overheads_s(table, device)[:, None], 0.0)
    if blocks is not None:
        overhead = overhead + blocks.block_s
    if QUANTIZE_INPUT in table.names:
        compute, memory = _quantize_input_s(table, device, compute, memory, factor)
    time = np.maximum(np.maximum(compute, memory), network)
    if query_bw is not None:
        time += query
        memory = memory + query
    if eff.moe.act_bandwidth_fraction is not None:
        # token permutation around MoE grouped GEMMs: their activation rows move once more
        grouped = np.array([k == _GEMM and is_grouped_gemm(n) for n, k in zip(table.names, table.kind)])[:, None]
        if grouped.any():
            permute = np.where(grouped, table.act_bytes, 0.0) / (
                device.memory_bandwidth_bytes_per_s * eff.moe.act_bandwidth_fraction)
            time += permute
            memory = memory + permute
    time += overhead
    bound = np.where(is_coll[:, None], Bound.NETWORK, np.where(compute >= memory, Bound.COMPUTE, Bound.MEMORY))
    return OpCosts(compute, memory, network, overhead, time, bound.astype(np.int8), table.count)


def _quantize_input_s(table: OpTable, device: Device, compute: np.ndarray, memory: np.ndarray,
                      factor: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(compute, memory) seconds with the :data:`QUANTIZE_INPUT` rows priced as one pass over
    their bytes at ``gemm_quantize_bandwidth_fraction_by_dtype`` of the bandwidth (times the warm
    cache ``factor`` where given), and as nothing where the device sets no fraction for the dtype."""
    fractions = device.efficiency.gemm.quantize_fraction_by_dtype
    rows = np.array([n == QUANTIZE_INPUT for n in table.names])[:, None]
    frac = np.array([fractions.get(d, 0.0) if n == QUANTIZE_INPUT else 0.0
                     for n, d in zip(table.names, table.dtype)])[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(frac > 0, table.total_bytes / (device.memory_bandwidth_bytes_per_s * np.where(frac > 0, frac, 1.0)),
                     0.0)
    if factor is not None:
        q = q * factor
    return np.where(rows, 0.0, compute), np.where(rows, q, memory)


def _block_memory_s(table: OpTable, device: Device, blocks: BlockTerms, mem_fraction, factor) -> np.ndarray:
    """Memory time of the ops of a device with per-thread-block terms (see the module
    docstring): the parallelism ramp slows a decode's KV stream, not the queries a block loads
    once; per-query-head blocks re-read their KV head from DRAM, or at their cache rate where
    the device sets one; ``factor`` (warm cache, or None) speeds the machine-wide stream."""
    eff = device.efficiency
    reread_ratio = None
    if eff.decode.reread_bandwidth_ratio is not None or eff.decode.reread_bandwidth_ratio_by_dtype:
        # per op; NaN: re-reads from DRAM
        reread_ratio = np.array([np.nan if (r := eff.decode_kernel(d, per_head=True).reread_ratio) is None else r
                                 for d in table.dtype])[:, None]
    dram_extra = blocks.kv_extra_bytes if reread_ratio is None else np.where(np.isnan(reread_ratio),
                                                                              blocks.kv_extra_bytes, 0.0)
    once = np.where(blocks.decode, table.act_bytes, 0.0)
    stream = table.total_bytes - once + dram_extra
    if factor is None:
        memory = memory_time_s(stream / blocks.parallel_ramp + once, device, mem_fraction)
    else:
        # a warm cache speeds the machine-wide stream, not one block's own walk along its
        # sequence: the stream's 1 / r = (1 + (half / blocks)^p)^(1/p) becomes
        # (factor^p + (half / blocks)^p)^(1/p) on decode rows (factor / r elsewhere), written
        # relative to the factor, which scales the whole memory time as for the other ops
        p = blocks.sharpness
        lone = np.maximum(blocks.parallel_ramp ** -p - 1.0, 0.0)
        relative = np.where(blocks.decode, (1.0 + lone / factor ** p) ** (1.0 / p), 1.0 / blocks.parallel_ramp)
        memory = memory_time_s(stream * relative + once, device, mem_fraction) * factor
    if reread_ratio is not None:
        fraction = eff.core.memory_max_fraction if mem_fraction is None else mem_fraction
        cached = np.where(np.isnan(reread_ratio), 0.0, blocks.kv_extra_bytes)
        memory = memory + cached / blocks.parallel_ramp / (
            np.nan_to_num(reread_ratio, nan=1.0) * device.memory_bandwidth_bytes_per_s * fraction)
    return memory
