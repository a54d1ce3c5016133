"""Tile-level mapping of accelerator-template devices: what the arrays and the SRAM add to the roofline.

Template devices (a :class:`~infersim.hardware.schema.ArraySpec` on the device) are charged from
their architecture instead of calibrated curves:

* **GEMM folds** (compute): an R x C output-stationary array computes one R x C output tile over the
  reduction depth k in ``2 R + C + k - 2`` cycles (SCALE-Sim's fold, Samajdar et al. ISPASS 2020),
  tiles spread over all arrays in waves. This is the padded-tile model of
  :mod:`infersim.perf.efficiency` with one tile ``(R, C)`` and ``gemm_k_half = 2 R + C - 2``, which
  the derivation writes into the device's efficiency section.
* **SRAM-limited tiling** (GEMM off-chip traffic, :func:`gemm_reread_bytes`): the output is computed
  in square ``b x b`` blocks whose working set fits the on-chip SRAM (global buffer plus every
  core's local SRAM). Each block streams its A rows and B columns from off-chip, so A is read
  ``ceil(n / b)`` times and B ``ceil(m / b)`` times: the blocked-GEMM traffic ``~2 m n k / b`` of
  Hong & Kung's I/O bound ("I/O complexity: the red-blue pebble game", STOC 1981). The block is
  the larger of two mappings a mapper can choose (LLMCompass's tile search, Zhang et al. ISCA 2024,
  picks among such tilings): whole-depth operand panels double-buffered in the SRAM,
  ``2 (b + b) k bpe <= S``, or fp32 partial sums of the block in half of it, ``4 b^2 <= S / 2``,
  with k-chunks of the operands streaming through the other half. Re-reads beyond the first
  read are charged as extra DRAM bytes; a GEMM whose rows fit one block (decode) pays none.
* **FLAT attention** (:func:`attention_unfused_bytes`): attention runs fused at row granularity
  (Kao et al., "FLAT: an optimized dataflow for mitigating attention bottlenecks", ASPLOS 2023):
  a core holds a block of r query rows, their logit rows (r x N) and a double-buffered K/V tile,
  an on-chip footprint linear in the keys N
  (:func:`~infersim.hardware.template.fused_attention_footprint_bytes`). The core takes the
  largest r up to its array rows that fits its local SRAM (:func:`flat_row_block`); when not even
  one row fits, the kernel runs unfused and the N x N logits go off-chip: written by QK^T, read
  and written by the softmax, read by PV, ``4 x scores x bytes`` of extra DRAM traffic (FLAT's
  unfused baseline). N is the row's mean keys per query, ``scores / (heads x query tokens)``.
"""

from __future__ import annotations

import math

import numpy as np

from ..dtypes import DTYPE_BYTES
from ..hardware.device import Device
from ..hardware.schema import ArraySpec
from .operators import OpKind, OpTable

#: bytes of one partial sum held on chip (fp32 accumulation)
PARTIAL_SUM_BYTES = 4.0
#: off-chip passes over the logits of unfused attention: QK^T writes, softmax reads and writes, PV reads
UNFUSED_LOGIT_PASSES = 4.0


def gemm_block_side(k, sram_bytes: float, element_bytes):
    """Side ``b`` of the square output block of a blocked GEMM on ``sram_bytes`` of SRAM:
    ``max(S / (4 k bpe), sqrt(S / (2 x 4)))`` (whole-depth panels double-buffered, or fp32
    partial sums in half of S), at least 1 (see the module docstring)."""
    k = np.asarray(k, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        panels = np.where(k > 0, sram_bytes / (4.0 * np.maximum(k, 1.0) * element_bytes), np.inf)
    psums = np.sqrt(sram_bytes / (2.0 * PARTIAL_SUM_BYTES))
    return np.maximum(np.floor(np.maximum(panels, psums)), 1.0)


def gemm_reread_bytes(m, n, k, a_bytes, b_bytes, sram_bytes: float, element_bytes, experts=None):
    """Extra off-chip bytes of an ``m x k @ k x n`` GEMM whose output blocks fit ``sram_bytes``:
    ``A (ceil(n / bn) - 1) + B (ceil(m_e / bm) - 1)``, where ``A`` and ``B`` are the bytes of one
    read of each operand and ``m_e`` the rows per expert (grouped GEMMs: each expert's weights
    are re-read for its own rows only). ``bm = min(m_e, b)`` with ``b`` the square side of
    :func:`gemm_block_side`; the columns take what the rows leave, the larger of the two mappings:
    ``bn = max(S / (2 k bpe) - bm, S / (8 bm))``."""
    m = np.asarray(m, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    k = np.asarray(k, dtype=np.float64)
    rows = m if experts is None else np.where(experts > 0, m / np.maximum(experts, 1.0), m)
    bm = np.maximum(np.minimum(rows, gemm_block_side(k, sram_bytes, element_bytes)), 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        panels = np.where(k > 0, sram_bytes / (2.0 * np.maximum(k, 1.0) * element_bytes) - bm, np.inf)
    bn = np.maximum(np.floor(np.maximum(panels, sram_bytes / (2.0 * PARTIAL_SUM_BYTES * bm))), 1.0)
    a_reads = np.maximum(np.ceil(n / bn - 1e-9), 1.0)
    b_reads = np.maximum(np.ceil(rows / bm - 1e-9), 1.0)
    return np.where((m > 0) & (n > 0), a_bytes * (a_reads - 1.0) + b_bytes * (b_reads - 1.0), 0.0)


def flat_row_block(keys, head_dim, kv_tile: int, element_bytes, sram_bytes: float, max_rows: int):
    """Query rows ``r`` of FLAT's fused tile on one core: the largest ``r <= max_rows`` with
    ``bpe (2 r d + r N + 2 T d) <= S`` (the footprint of
    :func:`~infersim.hardware.template.fused_attention_footprint_bytes`); 0 when one row does not fit."""
    keys = np.asarray(keys, dtype=np.float64)
    head_dim = np.asarray(head_dim, dtype=np.float64)
    room = sram_bytes / element_bytes - 2.0 * kv_tile * head_dim
    with np.errstate(divide="ignore", invalid="ignore"):
        rows = np.where(keys > 0, np.floor(np.maximum(room, 0.0) / (2.0 * head_dim + keys)), float(max_rows))
    return np.clip(rows, 0.0, float(max_rows))


def attention_unfused_bytes(scores, heads, query_tokens, head_dim, element_bytes, array: ArraySpec):
    """Extra off-chip bytes of attention rows on ``array``'s cores: ``4 x scores x bpe`` where
    FLAT's fused tile of one query row does not fit a core's local SRAM, else 0."""
    scores = np.asarray(scores, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        keys = np.where(scores > 0, scores / np.maximum(heads * query_tokens, 1e-300), 0.0)
    rows = flat_row_block(keys, head_dim, array.cols, element_bytes, array.local_sram_bytes, array.rows)
    return np.where((scores > 0) & (rows < 1.0), UNFUSED_LOGIT_PASSES * scores * element_bytes, 0.0)


def gemm_reread_bytes_scalar(m: float, n: float, k: float, a_bytes: float, b_bytes: float, sram_bytes: float,
                             element_bytes: float, experts: float = 0.0) -> float:
    """:func:`gemm_reread_bytes` for one GEMM in plain floats (the simulator's step model)."""
    if m <= 0 or n <= 0:
        return 0.0
    rows = m / experts if experts > 0 else m
    panels = sram_bytes / (4.0 * max(k, 1.0) * element_bytes) if k > 0 else math.inf
    side = max(math.floor(max(panels, math.sqrt(sram_bytes / (2.0 * PARTIAL_SUM_BYTES)))), 1.0)
    bm = max(min(rows, side), 1.0)
    wide = sram_bytes / (2.0 * max(k, 1.0) * element_bytes) - bm if k > 0 else math.inf
    bn = max(math.floor(max(wide, sram_bytes / (2.0 * PARTIAL_SUM_BYTES * bm))), 1.0)
    a_reads = max(math.ceil(n / bn - 1e-9), 1)
    b_reads = max(math.ceil(rows / bm - 1e-9), 1)
    return a_bytes * (a_reads - 1) + b_bytes * (b_reads - 1)


def attention_unfused_bytes_scalar(scores: float, heads: float, query_tokens: float, head_dim: float,
                                   element_bytes: float, array: ArraySpec) -> float:
    """:func:`attention_unfused_bytes` for one attention row in plain floats (the simulator's step model)."""
    if scores <= 0:
        return 0.0
    keys = scores / max(heads * query_tokens, 1e-300)
    room = array.local_sram_bytes / element_bytes - 2.0 * array.cols * head_dim
    rows = min(math.floor(max(room, 0.0) / (2.0 * head_dim + keys)), array.rows)
    return UNFUSED_LOGIT_PASSES * scores * element_bytes if rows < 1 else 0.0


def array_extra_bytes(table: OpTable, device: Device):
    """Extra DRAM bytes per occurrence of every operator of ``table`` on a template device,
    shape (n_ops, S); None for a device without an array mapping (catalog devices)."""
    array = device.spec.array
    if array is None:
        return None
    from .roofline import attention_head_dim  # (roofline imports this module)

    extra = np.zeros_like(table.flops, dtype=np.float64)
    sram = array.onchip_sram_bytes
    for i, (kind, dtype) in enumerate(zip(table.kind, table.dtype)):
        bpe = DTYPE_BYTES[dtype]
        if kind == OpKind.GEMM:
            m, n, k = table.gemm_m[i], table.gemm_n[i], table.gemm_k[i]
            weights = table.weight_bytes[i]
            b_bytes = np.where(weights > 0, weights, k * n * bpe)
            experts = table.experts[i] if np.any(table.experts[i] > 0) else None
            extra[i] = gemm_reread_bytes(m, n, k, m * k * bpe, b_bytes, sram, bpe, experts)
        elif kind == OpKind.ATTENTION:
            extra[i] = attention_unfused_bytes(table.scores[i], table.heads[i], table.query_tokens[i],
                                               attention_head_dim(table, i), bpe, array)
    return extra
