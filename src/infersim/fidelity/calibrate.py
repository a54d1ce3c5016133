"""Fit a device's efficiency parameters to measured kernel latencies (``infersim calibrate``).

Only the :class:`~infersim.hardware.schema.EfficiencySpec` is fitted; the spec-sheet
numbers (peaks, bandwidths, compute units) stay as they are. The parameters are few
and physical (achievable fractions, ramp half-points, fixed costs, tile choice,
collective latency and bandwidth fractions), and each op family is fitted on its own
rows, in order, with what earlier stages fitted held fixed:

1. ``gemm`` (GEMM and elementwise rows): per-dtype compute fraction, FLOP ramp,
   per-tile k-depth cost, memory fraction and ramp, per-dtype GEMM call cost, launch
   cost; the candidate tile set (with or without split-K) is chosen from :data:`TILE_SETS`
   by the best fit, then each dtype may keep only :data:`LARGE_TILES` where that fits better.
2. ``attention`` (GQA / MHA attention rows): per-dtype fraction, ramp, memory fraction,
   per-query bandwidth fraction, call cost (decode apart; the decode memory fraction and the
   prefill per-query fraction per compute dtype where the rows have several, i.e. a bf16 and
   an fp8 KV cache), and the per-thread-block terms: softmax rate, prefill block cost and
   parallelism half-point, decode block costs (grouped per dtype, per query head), the
   decode parallelism half-point and sharpness per dtype, the decode kernels' own compute
   fraction, and the per-query-head kernel's block and launch costs per dtype, half-point
   and cache re-read rate; the decode kernel's largest query group is chosen from
   :data:`DECODE_GROUPS` by the best fit.
3. ``mla`` (MLA rows, their own kernels): fractions, memory fractions, call and block costs
   and the decode parallelism (half-point and sharpness) as ``mla_overrides``; the rest is
   the attention stage's.
4. ``moe``: grouped-GEMM fractions and call cost, with per-expert tiles.
5. ``collective`` rows: per-collective bandwidth fraction, per-step latency, call cost.

The fit minimizes a robust (soft-L1) loss of ``log(predicted / measured)`` with
bounded parameters (``scipy.optimize.least_squares``, trust-region reflective), which
targets relative error as MdAPE does; every op in a stage weighs the same. Large
tables are subsampled deterministically (by row hash) to ``max_rows`` per stage.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from ..errors import InfersimError
from ..hardware.device import Device
from ..hardware.schema import COLLECTIVE_KINDS, EfficiencySpec
from ..perf.operators import COLLECTIVE_NAMES, Collective, OpKind
from ..perf.roofline import attention_head_dim, is_decode_attention
from .kernels import KernelSet, build_kernels
from .measurements import hash_rows
from .metrics import SPLIT_COLUMNS

#: candidate GEMM tile models tried by the fit ("single": the device's one tile, idle-unit
#: wave model; the others enable the padded-tile model with a choice of tile; CPU BLAS
#: runs m = 1 as a matrix-vector kernel)
TILE_SETS: dict[str, dict[str, object]] = {
    "single": {"gemm_tiles": [], "gemm_gemv_max_m": 0},
    "gpu": {"gemm_tiles": [(64, 64), (64, 128), (128, 128), (128, 256)], "gemm_gemv_max_m": 0},
    "gpu-splitk": {"gemm_tiles": [(64, 64), (64, 128), (128, 128), (128, 256)], "gemm_gemv_max_m": 0,
                   "gemm_split_k": 16},
    "cpu": {"gemm_tiles": [(8, 8), (16, 16), (32, 32), (64, 64)], "gemm_gemv_max_m": 1},
}

#: the candidate tiles a GEMM dtype may be restricted to (``gemm_tiles_by_dtype``)
LARGE_TILES: list[tuple[int, int]] = [(128, 128), (128, 256)]
#: decode kernels' largest query group per KV head tried by the fit (TensorRT-LLM's XQA packs up
#: to 32 query heads per KV head; above that it falls back to one block per query head)
DECODE_GROUPS: tuple[int | None, ...] = (None, 32)
#: queries per prefill attention thread block (FlashAttention-2/3 use 128-row query tiles)
ATTENTION_QUERY_TILE = 128

STAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("gemm", ("gemm", "elementwise")),
    ("attention", ("attention_prefill", "attention_decode")),
    ("mla", ("mla_prefill", "mla_decode")),
    ("moe", ("moe",)),
    ("collective", ("allreduce", "allgather", "reducescatter", "alltoall", "p2p")),
)

#: scale-up topologies whose GPUs share bandwidth as a group grows (PCIe switch uplinks, host
#: bridges): the collective stage fits a bandwidth factor per group size on these only; on a
#: switch (NVSwitch) or a direct mesh each GPU keeps its own ports whatever the group
SHARED_FABRICS = ("pcie",)

#: the label of a candidate fitted without warm-cache terms
COLD_CACHE = "no warm cache"

#: soft-L1 scale of the log-ratio residual: errors beyond ~3 % count linearly (close to a median
#: fit, which is what MdAPE scores)
LOSS_SCALE = 0.03


@dataclass(frozen=True)
class Param:
    """One fitted number: a field of EfficiencySpec (``field`` or ``field.key`` for dict fields)."""

    name: str
    lower: float
    upper: float
    initial: float
    log: bool = False  # optimized as log10

    def to_x(self, value: float) -> float:
        v = min(max(value, self.lower), self.upper)
        return math.log10(v) if self.log else v

    def from_x(self, x: float) -> float:
        return 10.0 ** x if self.log else x

    @property
    def bounds(self) -> tuple[float, float]:
        return (math.log10(self.lower), math.log10(self.upper)) if self.log else (self.lower, self.upper)


def apply_params(eff: EfficiencySpec, params: Sequence[Param], values: Sequence[float]) -> EfficiencySpec:
    """``eff`` with the named fields (dotted names: dict entries) set to ``values``."""
    update: dict[str, object] = {}
    for p, v in zip(params, values):
        if "." in p.name:
            name, key = p.name.split(".", 1)
            d = dict(update.get(name, getattr(eff, name)))
            d[int(key) if key.isdigit() else key] = float(v)
            update[name] = d
        else:
            update[p.name] = float(v)
    return eff.model_copy(update=update)


def with_efficiency(device: Device, eff: EfficiencySpec) -> Device:
    """``device`` with another efficiency section (spec and derived view kept in step)."""
    spec = device.spec.model_copy(update={"efficiency": eff})
    return dataclasses.replace(device, efficiency=eff, spec=spec)


def _current(eff: EfficiencySpec, name: str, default: float) -> float:
    """The value of parameter ``name`` in ``eff``; an MLA override not set yet starts from the
    attention rows' value (the MLA stage is fitted after the attention stage)."""
    if "." in name:
        field_name, key = name.split(".", 1)
        table = getattr(eff, field_name)
        key = int(key) if key.isdigit() else key
        if key in table:
            return table[key]
        return _current(eff, key, default) if field_name == "mla_overrides" else default
    value = getattr(eff, name)
    return default if value is None else value


def _op_dtypes(kernels: KernelSet, kind: OpKind) -> list[str]:
    out = set()
    for _, table in kernels.groups:
        out.update(d for k, d in zip(table.kind, table.dtype) if k == kind)
    return sorted(out)


def _collective_kinds(kernels: KernelSet) -> list[str]:
    out = set()
    for _, table in kernels.groups:
        out.update(COLLECTIVE_NAMES[Collective(int(c))] for k, c in zip(table.kind, table.collective)
                   if k == OpKind.COLLECTIVE)
    return sorted(out)


def _collective_group_sizes(kernels: KernelSet) -> list[int]:
    """Group sizes of the scale-up collectives measured (send/recv apart)."""
    out = set()
    for _, table in kernels.groups:
        out.update(int(g) for k, c, g in zip(table.kind, table.collective, table.group_size)
                   if k == OpKind.COLLECTIVE and int(c) != Collective.SEND_RECV and g > 1)
    return sorted(out)


def context_math_from_rows(table: pa.Table, min_matches: int = 10, min_seq_len: int = 1024) -> str | None:
    """Whether context attention over an fp8 KV cache with bf16 activations runs fp8 or bf16
    math on the measured device: "fp8" where such rows time closer to fp8-activation rows of
    the same shape than to bf16 / bf16-cache ones (median over shapes of long, compute-bound
    prefills), "activation" otherwise; None without ``min_matches`` shapes measured all three
    ways."""
    cols = ("op", "batch", "seq_len", "kv_len", "num_heads", "num_kv_heads", "head_dim", "variant", "dtype",
            "kv_dtype", "latency_s")
    if any(c not in table.column_names for c in cols):
        return None
    data = {c: table.column(c).to_pylist() for c in cols}
    times: dict[tuple, dict[tuple, float]] = {}
    for i in range(table.num_rows):
        if data["op"][i] != "attention_prefill" or (data["seq_len"][i] or 0) < min_seq_len:
            continue
        shape = tuple(data[c][i] for c in cols[1:8])
        times.setdefault(shape, {})[(data["dtype"][i], data["kv_dtype"][i] or data["dtype"][i])] = data["latency_s"][i]
    closer_to_fp8 = [abs(math.log(t[("bf16", "fp8")] / t[("bf16", "bf16")])) - abs(math.log(t[("bf16", "fp8")]
                                                                                           / t[("fp8", "fp8")]))
                     for t in times.values() if {("bf16", "bf16"), ("bf16", "fp8"), ("fp8", "fp8")} <= set(t)]
    if len(closer_to_fp8) < min_matches:
        return None
    return "fp8" if float(np.median(closer_to_fp8)) > 0 else "activation"


def native_head_sizes(kernels: KernelSet, device: Device, pred: np.ndarray, meas: np.ndarray, min_rows: int = 20,
                      min_gap: float = math.log(1.4)) -> dict[str, list[int]]:
    """Head sizes with a native (fast) prefill kernel, per compute dtype, where the fitted model
    shows two groups of head sizes: the median log(predicted / measured) of each head size,
    split at the largest gap between neighbours when that gap exceeds ``min_gap``; the head
    sizes above it (measured faster than one fraction explains) are the native ones. Dtypes
    with one group (or one head size) are left out."""
    by_size: dict[tuple[str, int], list[float]] = {}
    residual = np.log(np.maximum(pred, 1e-15) / meas)
    for rows, table in kernels.tables_for(device):
        for i, (name, kind) in enumerate(zip(table.names, table.kind)):
            if kind != OpKind.ATTENTION or table.mla[i] or not name.startswith("attention.prefill"):
                continue
            for row, size in zip(rows, attention_head_dim(table, i)):
                if size > 0 and np.isfinite(residual[row]):
                    by_size.setdefault((table.dtype[i], int(round(size))), []).append(residual[row])
    out: dict[str, list[int]] = {}
    for dtype in sorted({d for d, _ in by_size}):
        medians = sorted((float(np.median(v)), size) for (d, size), v in by_size.items()
                         if d == dtype and len(v) >= min_rows)
        if len(medians) < 2:
            continue
        gaps = [b[0] - a[0] for a, b in zip(medians, medians[1:])]
        cut = int(np.argmax(gaps))
        if gaps[cut] > min_gap:
            out[dtype] = sorted(size for _, size in medians[cut + 1:])
    return out


def _fused_attention(kernels: KernelSet) -> dict:
    """Which fused-attention block terms the rows of ``kernels`` exercise."""
    out = {"any": False, "prefill": False, "decode": False, "per_head": False, "decode_dtypes": set()}
    for _, table in kernels.groups:
        for i, (name, kind) in enumerate(zip(table.names, table.kind)):
            if kind != OpKind.ATTENTION or not np.any(table.seqs[i] > 0):
                continue
            out["any"] = True
            if not is_decode_attention(name):
                out["prefill"] = True
                continue
            out["decode"] = True
            out["decode_dtypes"].add(table.dtype[i])
            if not table.mla[i]:
                kv = table.kv_heads[i]
                group = np.where(kv > 0, table.heads[i] / np.where(kv > 0, kv, 1.0), 1.0)
                out["per_head"] |= bool(np.any(group <= 1.0) and np.any(group > 1.0))
    out["decode_dtypes"] = sorted(out["decode_dtypes"])
    return out


def _attention_dtypes(kernels: KernelSet, decode: bool) -> list[str]:
    """Compute dtypes of the decode (or the other) attention rows of ``kernels``."""
    out = set()
    for _, table in kernels.groups:
        out.update(d for n, k, d in zip(table.names, table.kind, table.dtype)
                   if k == OpKind.ATTENTION and is_decode_attention(n) == decode)
    return sorted(out)


def _per_dtype_param(name: str, dtypes: list[str], lower: float, upper: float, initial: float,
                     log: bool = False) -> list[Param]:
    """``name`` fitted once per dtype (``name_by_dtype.DTYPE``) when the rows have several
    dtypes, else once."""
    if len(dtypes) > 1:
        return [Param(f"{name}_by_dtype.{d}", lower, upper, initial, log) for d in dtypes]
    return [Param(name, lower, upper, initial, log)]


def _decode_memory_params(prefix: str, kernels: KernelSet) -> list[Param]:
    """The decode kernels' memory fraction, per compute dtype where the rows have several: a
    quantized (fp8) KV cache is dequantized in the kernel and streams at its own rate."""
    return _per_dtype_param(f"{prefix}decode_attention_memory_max_fraction", _attention_dtypes(kernels, True),
                            0.02, 1.0, 0.7)


def _query_params(prefix: str, kernels: KernelSet) -> list[Param]:
    """The prefill kernels' per-query bandwidth fraction, per compute dtype where the rows have
    several: an fp8 kernel quantizes its bf16 queries, keys and values first."""
    return _per_dtype_param(f"{prefix}attention_query_bandwidth_fraction", _attention_dtypes(kernels, False),
                            1e-3, 10.0, 0.2, log=True)


def _warm_cache_params(prefix: str, cache_bytes: float) -> list[Param]:
    """The warm-cache capacity and bandwidth ratio. The capacity starts at the device's on-chip
    memory and stays within 1/20 to 1.5 times it: a larger one would only trade the ratio
    against the DRAM fraction (every row warm)."""
    return [Param(f"{prefix}warm_cache_bytes", cache_bytes / 20.0, cache_bytes * 1.5, cache_bytes, log=True),
            Param(f"{prefix}warm_cache_bandwidth_ratio", 1.0, 20.0, 1.5, log=True)]


def stage_params(stage: str, kernels: KernelSet, ops: set[str], gemv: bool = False,
                 blocks: bool = True, group_factors: bool = False, cache_bytes: float = 0.0,
                 tile_choice: bool = False) -> list[Param]:
    """The parameters a stage fits, given the rows it has (dtypes, collectives present),
    whether the tile model runs m = 1 as a matrix-vector kernel (``gemv``), whether
    attention gets its per-thread-block terms (``blocks``), whether larger collective groups
    get their own bandwidth factor (``group_factors``) and the device's on-chip memory
    (``cache_bytes``, where the warm-cache capacity starts; 0: no warm-cache terms) and
    whether the GEMM model chooses among tiles of several sizes (``tile_choice``: their
    operand reuse is fitted)."""
    if stage == "gemm":
        params = []
        gemm_dtypes = _op_dtypes(kernels, OpKind.GEMM)
        for d in gemm_dtypes:
            params.append(Param(f"compute_max_fraction_by_dtype.{d}", 0.02, 1.0, 0.7))
        params += [
            Param("compute_half_flops", 1e3, 1e13, 1e8, log=True),
            Param("memory_max_fraction", 0.02, 1.0, 0.8),
            Param("memory_half_bytes", 1e2, 1e10, 1e6, log=True),
        ]
        if "elementwise" in ops or gemv:
            # streaming kernels (elementwise, matrix-vector) set memory_max_fraction; tiled GEMMs their own
            params.append(Param("gemm_memory_max_fraction", 0.02, 1.0, 0.8))
        if gemm_dtypes:
            params.append(Param("gemm_k_half", 0.0, 8192.0, 64.0))
            if tile_choice:
                params.append(Param("gemm_tile_intensity_half", 0.0, 200.0, 20.0))
        for d in gemm_dtypes:
            params.append(Param(f"gemm_overhead_us_by_dtype.{d}", 0.0, 1e4, 3.0))
        if "elementwise" in ops:
            params.append(Param("kernel_overhead_us", 0.0, 1e4, 3.0))
        if cache_bytes:
            params += _warm_cache_params("", cache_bytes)
        return params
    if stage == "attention":
        params = [Param(f"attention_max_fraction_by_dtype.{d}", 0.02, 1.0, 0.5)
                  for d in _op_dtypes(kernels, OpKind.ATTENTION)]
        params.append(Param("attention_half_flops", 1e3, 1e13, 1e8, log=True))
        names = {n for _, table in kernels.groups for n, k in zip(table.names, table.kind) if k == OpKind.ATTENTION}
        has_decode = any(is_decode_attention(n) for n in names)
        has_other = any(not is_decode_attention(n) for n in names)
        # prefill (and unfused) attention sets the general terms; decode gets its own when both exist
        prefixes = [""]  # the general terms: prefill / unfused attention, or decode when it is alone
        if has_decode and has_other:
            prefixes.append("decode_")
        for prefix in prefixes:
            if prefix == "decode_" or not has_other:
                params += _decode_memory_params("", kernels)
            else:
                params.append(Param(f"{prefix}attention_memory_max_fraction", 0.02, 1.0, 0.7))
            if prefix == "" and has_other:
                params += _query_params("", kernels)
            else:
                params.append(Param(f"{prefix}attention_query_bandwidth_fraction", 1e-3, 10.0, 0.2, log=True))
            params.append(Param(f"{prefix}attention_overhead_us", 0.0, 1e4, 10.0))
        if blocks:
            # per-thread-block terms: only fused kernels (rows that carry their sequences) have them
            fused = _fused_attention(kernels)
            if fused["any"]:
                params.append(Param("attention_softmax_fraction", 1e-4, 10.0, 0.05, log=True))
            if fused["prefill"]:
                params.append(Param("attention_cta_us", 0.0, 1e3, 2.0))
                params.append(Param("attention_parallel_half", 1e-2, 1e5, 1.0, log=True))
            if fused["decode"]:
                params += [Param(f"decode_attention_cta_us_by_dtype.{d}", 0.0, 1e3, 2.0)
                           for d in fused["decode_dtypes"]]
                params += [Param(f"decode_attention_parallel_half_by_dtype.{d}", 1e-2, 1e5, 2.0, log=True)
                           for d in fused["decode_dtypes"]]
                params += [Param(f"decode_attention_parallel_sharpness_by_dtype.{d}", 1.0, 16.0, 1.5, log=True)
                           for d in fused["decode_dtypes"]]
                params.append(Param("decode_attention_max_fraction", 0.01, 1.0, 0.3))
                if fused["per_head"]:
                    params += _per_dtype_param("decode_attention_head_cta_us", fused["decode_dtypes"], 0.0, 1e3, 1.0)
                    params += _per_dtype_param("decode_attention_reread_bandwidth_ratio", fused["decode_dtypes"],
                                               1.0, 50.0, 3.0, log=True)
                    params.append(Param("decode_attention_head_parallel_half", 1e-2, 1e5, 2.0, log=True))
                    params += [Param(f"decode_attention_head_launch_us_by_dtype.{d}", 0.0, 1e3, 1.0)
                               for d in fused["decode_dtypes"]]
        if cache_bytes:
            # a kernel bound by dequantizing its fp8 KV cache gains less from a warm cache
            params.append(_warm_cache_params("attention_", cache_bytes)[0])
            params += [Param(f"attention_warm_cache_bandwidth_ratio_by_dtype.{d}", 1.0, 20.0, 1.5, log=True)
                       for d in _op_dtypes(kernels, OpKind.ATTENTION)]
        return params
    if stage == "mla":
        # MLA kernels are their own: fractions, memory fractions, fixed and block costs apart
        # (EfficiencySpec.mla_overrides), the rest shared with the attention stage's fit
        o = "mla_overrides."
        params = [Param(f"{o}attention_max_fraction_by_dtype.{d}", 0.02, 1.0, 0.5)
                  for d in _op_dtypes(kernels, OpKind.ATTENTION)]
        if blocks:
            # MLA's head sizes (192 / 576) are not the attention rows': its exponentials cost their own share
            params.append(Param(f"{o}attention_softmax_fraction", 1e-4, 10.0, 0.05, log=True))
        params.append(Param(f"{o}attention_half_flops", 1e3, 1e13, 1e8, log=True))
        if "mla_prefill" in ops:
            params.append(Param(f"{o}attention_memory_max_fraction", 0.02, 1.0, 0.7))
            params += _query_params(o, kernels)
            params.append(Param(f"{o}attention_overhead_us", 0.0, 1e4, 10.0))
            if blocks:
                params += [Param(f"{o}attention_cta_us", 0.0, 1e3, 2.0),
                           Param(f"{o}attention_parallel_half", 1e-2, 1e5, 1.0, log=True)]
        if "mla_decode" in ops:
            params += _decode_memory_params(o, kernels)
            params += [Param(f"{o}decode_attention_query_bandwidth_fraction", 1e-3, 10.0, 0.2, log=True),
                       Param(f"{o}decode_attention_overhead_us", 0.0, 1e4, 10.0)]
            if blocks:
                params += [Param(f"{o}decode_attention_cta_us", 0.0, 1e3, 2.0),
                           Param(f"{o}decode_attention_parallel_half", 1e-2, 1e5, 2.0, log=True),
                           Param(f"{o}decode_attention_parallel_sharpness", 1.0, 16.0, 1.5, log=True)]
        if cache_bytes:
            params += _warm_cache_params(f"{o}attention_", cache_bytes)
        return params
    if stage == "moe":
        params = [Param(f"grouped_gemm_max_fraction_by_dtype.{d}", 0.02, 1.0, 0.6)
                  for d in _op_dtypes(kernels, OpKind.GEMM)]
        params.append(Param("grouped_gemm_overhead_us", 0.0, 1e4, 5.0))
        if blocks:
            params += [Param(f"grouped_gemm_memory_fraction_by_dtype.{d}", 0.02, 1.0, 0.7)
                       for d in _op_dtypes(kernels, OpKind.GEMM)]
            params.append(Param("grouped_gemm_act_bandwidth_fraction", 1e-3, 10.0, 0.5, log=True))
        return params
    if stage == "collective":
        params = [Param(f"collective_bandwidth_fraction_by_kind.{k}", 0.02, 2.0, 0.7)
                  for k in _collective_kinds(kernels) if k in COLLECTIVE_KINDS]
        params.append(Param("collective_latency_us", 0.0, 1e3, 1.0))
        params.append(Param("collective_overhead_us", 0.0, 1e4, 5.0))
        # on a shared fabric, the bandwidth of each larger group relative to the smallest
        # (set to 1 by the caller)
        if group_factors:
            params += [Param(f"collective_bandwidth_fraction_by_group_size.{g}", 0.01, 2.0, 1.0, log=True)
                       for g in _collective_group_sizes(kernels)[1:]]
        return params
    raise AssertionError(stage)


@dataclass
class StageFit:
    """What one stage fitted, on how many rows, and how well (train rows, after the fit)."""

    stage: str
    rows: int
    params: dict[str, float]
    tile_set: str | None
    train_mdape: float
    cost: float


@dataclass
class Calibration:
    """A calibrated efficiency section and how it was obtained."""

    efficiency: EfficiencySpec
    device: Device
    stages: list[StageFit] = field(default_factory=list)
    rows: int = 0

    @property
    def train_mdape(self) -> float:
        vals = [s.train_mdape for s in self.stages if s.rows]
        return float(np.median(vals)) if vals else math.nan


def _subsample(table: pa.Table, rows: np.ndarray, ops: np.ndarray, max_rows: int) -> np.ndarray:
    """At most ``max_rows`` of ``rows``, the same share per op, picked by a stable row hash."""
    if rows.size <= max_rows:
        return rows
    h = hash_rows(table.take(pa.array(rows)), SPLIT_COLUMNS, seed=7)
    op_vals = ops[rows]
    uniq = np.unique(op_vals)
    per_op = max(max_rows // len(uniq), 1)
    keep = []
    for op in uniq:
        idx = np.flatnonzero(op_vals == op)
        keep.append(rows[idx[np.argsort(h[idx], kind="stable")[:per_op]]])
    return np.sort(np.concatenate(keep))


def _robust_mdape(pred: np.ndarray, meas: np.ndarray) -> float:
    ok = np.isfinite(pred)
    return float(np.median(np.abs(pred[ok] / meas[ok] - 1.0))) if ok.any() else math.nan


def _warm_attention_start(fitted: EfficiencySpec) -> EfficiencySpec:
    """A cold attention fit as the start of its warm-cache candidate (the ratio no longer 1)."""
    return fitted.model_copy(update={"attention_warm_cache_bandwidth_ratio": None})


def _warm_mla_start(fitted: EfficiencySpec) -> EfficiencySpec:
    """A cold MLA fit as the start of its warm-cache candidate."""
    overrides = {k: v for k, v in fitted.mla_overrides.items() if k != "attention_warm_cache_bandwidth_ratio"}
    return fitted.model_copy(update={"mla_overrides": overrides})


def _fit_stage(device: Device, eff: EfficiencySpec, kernels: KernelSet, meas: np.ndarray, weights: np.ndarray,
               params: list[Param], max_nfev: int) -> tuple[EfficiencySpec, float]:
    try:
        from scipy.optimize import least_squares
    except ImportError:
        raise InfersimError("calibration needs scipy; install it with: pip install 'infersim[fidelity]'") from None

    x0 = np.array([p.to_x(_current(eff, p.name, p.initial)) for p in params])
    lower = np.array([p.bounds[0] for p in params])
    upper = np.array([p.bounds[1] for p in params])
    x0 = np.clip(x0, lower + 1e-9 * (upper - lower), upper - 1e-9 * (upper - lower))
    sqrt_w = np.sqrt(weights)

    def residual(x: np.ndarray) -> np.ndarray:
        e = apply_params(eff, params, [p.from_x(v) for p, v in zip(params, x)])
        pred = kernels.predict(with_efficiency(device, e))
        r = np.log(np.maximum(pred, 1e-15) / meas)
        return np.where(np.isfinite(r), r, 10.0) * sqrt_w

    scale = np.maximum(upper - lower, 1e-12) / 10.0
    res = least_squares(residual, x0, bounds=(lower, upper), loss="soft_l1", f_scale=LOSS_SCALE,
                        x_scale=scale, diff_step=1e-4, max_nfev=max_nfev)
    fitted = apply_params(eff, params, [p.from_x(v) for p, v in zip(params, res.x)])
    return fitted, float(res.cost)


def _round_sig(value: float, digits: int = 4) -> float:
    if value == 0 or not math.isfinite(value):
        return value
    return float(f"{value:.{digits}g}")


def round_efficiency(eff: EfficiencySpec, digits: int = 4) -> EfficiencySpec:
    """Every fitted float of ``eff`` rounded to ``digits`` significant digits (what the YAML holds)."""
    update = {}
    for name, value in eff.model_dump().items():
        if isinstance(value, float):
            update[name] = _round_sig(value, digits)
        elif isinstance(value, dict):
            update[name] = {k: _round_sig(v, digits) if isinstance(v, float) else v for k, v in value.items()}
    return eff.model_copy(update=update)


def calibrate(
    table: pa.Table,
    device: Device,
    *,
    max_rows: int = 20_000,
    tile_sets: Sequence[str] | None = None,
    max_nfev: int = 200,
    source: str | None = None,
    blocks: bool = True,
    warm_cache: bool = True,
    progress=None,
) -> Calibration:
    """Fit ``device``'s efficiency section to the measured rows of ``table``.

    ``table``: long-format measurements, all of this device (the caller selects rows).
    Stages without rows keep the device's values. ``tile_sets``: names from
    :data:`TILE_SETS` to try (default: the GPU and single-tile sets on GPUs, the CPU
    and single-tile sets elsewhere). ``source`` is recorded in the efficiency section.
    ``blocks``: fit the per-thread-block attention terms (False: the FLOPs-and-bytes model).
    ``warm_cache``: fit the warm-cache terms (the measured kernels were run back to back on
    the same buffers; False: every byte from DRAM). ``progress(message, done, total)`` is called
    after each stage.
    """
    if table.num_rows == 0:
        raise InfersimError(f"no measurements to calibrate '{device.name}' on")
    kernels_all = build_kernels(table)
    meas_all = np.asarray(table.column("latency_s").to_numpy(), dtype=np.float64)
    ops = np.asarray(table.column("op").to_numpy(zero_copy_only=False), dtype=object).astype(str)
    if tile_sets is None:
        tile_sets = ("gpu", "gpu-splitk", "single") if device.category == "gpu" else ("cpu", "single")
    for name in tile_sets:
        if name not in TILE_SETS:
            raise InfersimError(f"unknown tile set '{name}'; expected one of {', '.join(TILE_SETS)}")
    eff = device.efficiency
    context_math = context_math_from_rows(table)
    if context_math is not None:
        eff = eff.model_copy(update={"fp8_kv_context_math": context_math})
    fits: list[StageFit] = []
    used = 0
    for done, (stage, stage_ops) in enumerate(STAGES, start=1):
        if progress:
            progress(f"fitting the {stage} stage", done - 1, len(STAGES))
        in_stage = np.isin(ops, stage_ops)
        in_stage[kernels_all.unsupported] = False
        rows = np.flatnonzero(in_stage)
        if rows.size == 0:
            continue
        rows = _subsample(table, rows, ops, max_rows)
        mask = np.zeros(table.num_rows, dtype=bool)
        mask[rows] = True
        kernels = kernels_all.subset(mask)
        meas = meas_all[rows]
        op_rows = ops[rows]
        uniq, counts = np.unique(op_rows, return_counts=True)
        per_op = dict(zip(uniq, counts))
        weights = np.array([rows.size / (len(uniq) * per_op[o]) for o in op_rows])
        best = None
        warm_after = None  # (best fit -> start) of a last candidate: the best one with warm-cache terms
        if stage == "gemm" and "gemm" in per_op:
            candidates = [(t, TILE_SETS[t]) for t in tile_sets]
        elif stage == "attention" and blocks:
            fused = _fused_attention(kernels)
            tile = {"attention_query_tile": ATTENTION_QUERY_TILE} if fused["prefill"] else {}
            # (the chosen group is the efficiency's decode_attention_max_group; no tile label)
            candidates = ([(None, {**tile, "decode_attention_max_group": g}) for g in DECODE_GROUPS]
                          if fused["per_head"] else [(None, tile)])
            if warm_cache:
                # attention kernels fitted without warm-cache terms, then the best of those again
                # with its own (started from that fit, which converges fast): the better fit is
                # kept (the A100's decode follows the DRAM model better, the L40S's does not)
                candidates = [(COLD_CACHE, {**update, "attention_warm_cache_bandwidth_ratio": 1.0})
                              for _, update in candidates]
                warm_after = _warm_attention_start
        elif stage == "moe" and eff.gemm_tiles:
            candidates = [("expert-tiles", {"grouped_gemm_expert_tiles": True}), (None, {})]
        elif stage == "mla" and warm_cache:
            # MLA kernels may not profit from a warm cache where GQA ones do (the L40S's MLA decode
            # does not): fitted without warm-cache terms, then from there with their own
            cold = {"mla_overrides": {**eff.mla_overrides, "attention_warm_cache_bandwidth_ratio": 1.0}}
            candidates = [(COLD_CACHE, cold)]
            warm_after = _warm_mla_start
        elif (stage == "collective" and device.scale_up.topology in SHARED_FABRICS
              and len(groups := _collective_group_sizes(kernels)) > 1):
            # the per-kind fractions are those of the smallest group; larger ones scale them
            candidates = [(None, {"collective_bandwidth_fraction_by_group_size": {groups[0]: 1.0}})]
        else:
            candidates = [(None, {})]
        i = 0
        while i < len(candidates):
            tiles, update = candidates[i]
            i += 1
            if isinstance(update, EfficiencySpec):
                start = update  # a candidate started from an earlier fit
            else:
                start = eff.model_copy(update=update) if update else eff
            params = stage_params(stage, kernels, set(uniq), gemv=start.gemm_gemv_max_m > 0, blocks=blocks,
                                  group_factors=bool(start.collective_bandwidth_fraction_by_group_size),
                                  cache_bytes=device.sram_bytes if warm_cache and tiles != COLD_CACHE else 0.0,
                                  tile_choice=len({tuple(t) for t in start.gemm_tiles}) > 1)
            fitted, cost = _fit_stage(device, start, kernels, meas, weights, params, max_nfev)
            # the candidate tile models are compared on the metric reported: MdAPE on these rows
            score = _robust_mdape(kernels.predict(with_efficiency(device, round_efficiency(fitted))), meas)
            if best is None or score < best[1]:
                best = (fitted, score, tiles, params, cost)
            if i == len(candidates) and warm_after is not None:
                candidates.append((None, warm_after(best[0])))
                warm_after = None
        fitted, score, tiles, params, cost = best
        if stage == "gemm" and tiles in ("gpu", "gpu-splitk"):
            # a dtype whose library kernels only come in large tiles (e.g. block-scaled fp4 on
            # Blackwell) is better described by those: kept where the fit improves
            chosen: dict[str, list] = {}
            for d in _op_dtypes(kernels, OpKind.GEMM):
                trial = round_efficiency(fitted).model_copy(update={"gemm_tiles_by_dtype": {**chosen, d: LARGE_TILES}})
                trial_score = _robust_mdape(kernels.predict(with_efficiency(device, trial)), meas)
                if trial_score < score:
                    chosen[d], score = LARGE_TILES, trial_score
            if chosen:
                tiles = f"{tiles} ({', '.join(chosen)}: large tiles)"
                start = fitted.model_copy(update={"gemm_tiles_by_dtype": chosen})
                refit, cost = _fit_stage(device, start, kernels, meas, weights, params, max_nfev)
                if _robust_mdape(kernels.predict(with_efficiency(device, round_efficiency(refit))), meas) <= score:
                    fitted = refit
                else:
                    fitted = start
        if stage == "attention" and blocks:
            # a dtype with fast kernels for some head sizes only: the others get their own fraction
            native = native_head_sizes(kernels, with_efficiency(device, fitted),
                                       kernels.predict(with_efficiency(device, round_efficiency(fitted))), meas)
            if native:
                start = fitted.model_copy(update={"attention_native_head_dims_by_dtype": native})
                more = params + [Param(f"attention_fallback_fraction_by_dtype.{d}", 0.02, 1.0, 0.3) for d in native]
                refit, refit_cost = _fit_stage(device, start, kernels, meas, weights, more, max_nfev)
                refit_score = _robust_mdape(kernels.predict(with_efficiency(device, round_efficiency(refit))), meas)
                if refit_score < score:
                    fitted, score, params, cost = refit, refit_score, more, refit_cost
                    label = "native head sizes " + "; ".join(f"{d}: {', '.join(map(str, v))}"
                                                             for d, v in native.items())
                    tiles = f"{tiles}, {label}" if tiles else label
        if stage == "gemm" and "elementwise" not in per_op and fitted.gemm_overhead_us_by_dtype:
            # no elementwise rows: the plain launch cost is the cheapest GEMM call's
            fitted = fitted.model_copy(update={"kernel_overhead_us": min(fitted.gemm_overhead_us_by_dtype.values())})
        eff = round_efficiency(fitted)
        pred = kernels.predict(with_efficiency(device, eff))
        fits.append(StageFit(stage, int(rows.size), {p.name: _current(eff, p.name, math.nan) for p in params},
                             tiles, _robust_mdape(pred, meas), cost))
        used += int(rows.size)
    today = _dt.date.today().isoformat()
    train = np.median([f.train_mdape for f in fits]) if fits else math.nan
    if progress:
        progress("fitted every stage", len(STAGES), len(STAGES))
    text = (f"infersim calibrate ({today}): fitted to {source or 'measurements'} ({used} rows used in the fit); "
            f"fit MdAPE {100 * train:.1f}% (median over stages; "
            + ", ".join(f"{f.stage} {100 * f.train_mdape:.1f}%" for f in fits) + ")")
    eff = eff.model_copy(update={"source": text})
    return Calibration(eff, with_efficiency(device, eff), fits, used)
