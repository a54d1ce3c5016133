"""Calibration stages: one per family of kernels, each fitting its sections of the efficiency
model (:mod:`infersim.hardware.efficiency`), registered once in :data:`CALIBRATION_STAGES` and
run in that order by :func:`infersim.fidelity.calibrate.calibrate`, with what earlier stages
fitted held fixed:

1. ``gemm`` (GEMM and elementwise rows; sections ``core``, ``gemm``, ``cache``): per-dtype
   compute fraction, FLOP ramp, per-tile k-depth cost, memory fraction and ramp, per-dtype GEMM
   call cost, launch cost; the candidate tile set (with or without split-K) is chosen from
   :data:`TILE_SETS` by the best fit; then each quantized dtype's activation-quantization pass
   (fp8 / fp4 linears on bf16 inputs, :data:`~infersim.perf.roofline.QUANTIZE_INPUT`) gets its
   own bandwidth fraction, and each dtype may keep only one of :data:`DTYPE_TILES` (the large
   tiles, or the largest alone), each where the refit scores better.
2. ``attention`` (GQA / MHA attention rows; ``attention``, ``decode``, ``cache``): per-dtype
   fraction, ramp, memory fraction, per-query bandwidth fraction, call cost (decode apart; the
   decode memory fraction and the prefill per-query fraction per compute dtype where the rows
   have several, i.e. a bf16 and an fp8 KV cache), and the per-thread-block terms: softmax
   rate, prefill block cost and parallelism half-point, decode block costs (grouped per dtype,
   per query head), the decode parallelism half-point and sharpness per dtype, the decode
   kernels' own compute fraction, and the per-query-head kernel's block and launch costs per
   dtype, half-point and cache re-read rate; the decode kernel's largest query group is chosen
   from :data:`DECODE_GROUPS` by the best fit; then the native head sizes per dtype.
3. ``mla`` (MLA rows, their own kernels; ``mla``): fractions, memory fractions, call and block
   costs and the decode parallelism (half-point and sharpness) as ``mla.overrides``; the rest
   is the attention stage's.
4. ``moe`` (``moe``): grouped-GEMM fractions and call cost, with per-expert tiles.
5. ``collective`` rows (``collectives``): per-collective bandwidth fraction, per-step latency,
   call cost (shared by every kind, or per kind where that scores better on the validation
   rows), and on shared fabrics a bandwidth factor per group size.

A stage says which parameters it fits for the rows it has (:meth:`CalibrationStage.params`),
which starting points it tries (:meth:`CalibrationStage.candidates`: tile sets, query groups,
with and without warm-cache terms) and what it refines after the best one
(:meth:`CalibrationStage.refine`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..hardware.device import Device
from ..hardware.schema import COLLECTIVE_KINDS, EfficiencySpec
from ..perf.operators import COLLECTIVE_NAMES, Collective, OpKind
from ..perf.roofline import QUANTIZE_INPUT, attention_head_dim, is_decode_attention
from ..registry import registrar
from .fitting import Param, fit_stage, robust_mdape, round_efficiency, with_efficiency
from .kernels import KernelSet

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
#: per-dtype tile restrictions the GEMM stage tries, by label: the large tiles, or the largest
#: alone (TensorRT-LLM's SM100 FP4 CUTLASS candidates are 128x64 to 128x256 tiles, on one SM or
#: a 2-SM cluster: cutlass_heuristic.cpp, get_candidate_configs_sm100_dynamic_cluster_shape)
DTYPE_TILES: dict[str, list[tuple[int, int]]] = {"large tiles": LARGE_TILES, "largest tile": [(128, 256)]}
#: decode kernels' largest query group per KV head tried by the fit (TensorRT-LLM's XQA packs up
#: to 32 query heads per KV head; above that it falls back to one block per query head)
DECODE_GROUPS: tuple[int | None, ...] = (None, 32)
#: queries per prefill attention thread block (FlashAttention-2/3 use 128-row query tiles)
ATTENTION_QUERY_TILE = 128

#: scale-up topologies whose GPUs share bandwidth as a group grows (PCIe switch uplinks, host
#: bridges): the collective stage fits a bandwidth factor per group size on these only; on a
#: switch (NVSwitch) or a direct mesh each GPU keeps its own ports whatever the group
SHARED_FABRICS = ("pcie",)

#: the label of a candidate fitted without warm-cache terms
COLD_CACHE = "no warm cache"
#: the label of the collective candidate with a latency and call cost per collective kind
PER_KIND_COSTS = "per-kind latency and call cost"


def _op_dtypes(kernels: KernelSet, kind: OpKind) -> list[str]:
    out = set()
    for _, table in kernels.groups:
        out.update(d for k, d in zip(table.kind, table.dtype) if k == kind)
    return sorted(out)


def _quantized_dtypes(kernels: KernelSet) -> list[str]:
    """Compute dtypes of the GEMM rows that quantize their input first (:data:`QUANTIZE_INPUT` rows)."""
    return sorted({d for _, table in kernels.groups for n, d in zip(table.names, table.dtype) if n == QUANTIZE_INPUT})


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




@dataclass
class StageContext:
    """What a stage fits on: the device, its rows (as kernels, measured seconds, per-row weights,
    the ops present) and the calibration's options."""

    device: Device
    kernels: KernelSet
    meas: np.ndarray
    weights: np.ndarray
    ops: set[str]
    blocks: bool
    warm_cache: bool
    tile_sets: tuple[str, ...]
    max_nfev: int
    #: rows the structural choices (candidates, refinements) are scored on, apart from the fitted
    #: ones (a validation split); None: the fitted rows
    validation: tuple[KernelSet, np.ndarray] | None = None

    def fit(self, start: EfficiencySpec, params: list[Param]) -> tuple[EfficiencySpec, float]:
        return fit_stage(self.device, start, self.kernels, self.meas, self.weights, params, self.max_nfev)

    def score(self, eff: EfficiencySpec) -> float:
        """MdAPE of ``eff`` on the validation rows, else on the fitted ones: candidates and
        refinements are compared on the metric reported."""
        kernels, meas = self.validation if self.validation is not None else (self.kernels, self.meas)
        return robust_mdape(kernels.predict(with_efficiency(self.device, eff)), meas)


@dataclass
class Fit:
    """The best fit of a stage so far: the efficiency, its MdAPE on the stage's rows, the label
    of its candidate, the parameters fitted and the loss."""

    efficiency: EfficiencySpec
    score: float
    label: str | None
    params: list[Param]
    cost: float


#: a candidate: its label (None: none to report) and its start, an update of the efficiency or
#: an efficiency fitted before
Candidate = tuple[str | None, "dict | EfficiencySpec"]


class CalibrationStage:
    """One calibration stage: the ops whose rows it fits and the efficiency sections it sets."""

    name: ClassVar[str]
    ops: ClassVar[tuple[str, ...]]
    sections: ClassVar[tuple[str, ...]]
    #: the operator kind whose compute dtypes get per-dtype parameters (None: no per-dtype terms)
    dtype_kind: ClassVar[OpKind | None] = None

    def fitted_dtypes(self, kernels: KernelSet) -> list[str]:
        """The dtypes this stage fits per-dtype terms for on ``kernels`` (its rows' operator tables)."""
        return _op_dtypes(kernels, self.dtype_kind) if self.dtype_kind is not None else []

    def fit_rows(self, variants: np.ndarray) -> np.ndarray:
        """Which of the stage's rows (their ``variant`` strings) it fits and chooses on (default: all)."""
        return np.ones(len(variants), dtype=bool)

    def params(self, kernels: KernelSet, ops: set[str], start: EfficiencySpec, *, blocks: bool = True,
               cache_bytes: float = 0.0) -> list[Param]:
        """The parameters fitted from ``start`` on ``kernels`` (rows of ``ops``): ``blocks``: the
        per-thread-block terms too; ``cache_bytes``: the device's on-chip memory, where the
        warm-cache capacity starts (0: no warm-cache terms)."""
        raise NotImplementedError

    def candidates(self, ctx: StageContext, eff: EfficiencySpec
                   ) -> tuple[list[Candidate], Callable[[EfficiencySpec], EfficiencySpec] | None]:
        """The starting points to fit from, and optionally a last one made from the best fit."""
        return [(None, {})], None

    def refine(self, ctx: StageContext, best: Fit) -> Fit:
        """What the stage adds after its best candidate (default: nothing)."""
        return best

    def run(self, ctx: StageContext, eff: EfficiencySpec) -> Fit:
        """Fit every candidate from ``eff`` (the efficiency so far), keep the best on the stage's
        rows, then :meth:`refine` it."""
        candidates, warm_after = self.candidates(ctx, eff)
        best: Fit | None = None
        i = 0
        while i < len(candidates):
            label, update = candidates[i]
            i += 1
            if isinstance(update, EfficiencySpec):
                start = update  # a candidate started from an earlier fit
            else:
                start = eff.model_copy(update=update) if update else eff
            params = self.params(ctx.kernels, ctx.ops, start, blocks=ctx.blocks,
                                 cache_bytes=ctx.device.sram_bytes if ctx.warm_cache and label != COLD_CACHE else 0.0)
            fitted, cost = ctx.fit(start, params)
            # the candidates are compared on the metric reported: MdAPE on these rows
            score = ctx.score(round_efficiency(fitted))
            if best is None or score < best.score:
                best = Fit(fitted, score, label, params, cost)
            if i == len(candidates) and warm_after is not None:
                candidates.append((None, warm_after(best.efficiency)))
                warm_after = None
        return self.refine(ctx, best)


#: the calibration stages, in the order they run (keys defined once, by each stage's ``name``)
CALIBRATION_STAGES: dict[str, CalibrationStage] = {}


#: class decorator: add an instance of a stage to :data:`CALIBRATION_STAGES` under its ``name`` (once)
register = registrar(CALIBRATION_STAGES, "name", "calibration stage", instance=True)


@register
class GemmStage(CalibrationStage):
    name = "gemm"
    ops = ("gemm", "elementwise")
    sections = ("core", "gemm", "cache")
    dtype_kind = OpKind.GEMM

    def params(self, kernels, ops, start, *, blocks=True, cache_bytes=0.0):
        gemv = start.gemm.gemv_max_m > 0
        # the operand reuse of tiles is fitted where the model chooses among tiles of several sizes
        tile_choice = len({tuple(t) for t in start.gemm.tiles}) > 1
        params = []
        gemm_dtypes = self.fitted_dtypes(kernels)
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

    def candidates(self, ctx, eff):
        if "gemm" in ctx.ops:
            return [(t, TILE_SETS[t]) for t in ctx.tile_sets], None
        return [(None, {})], None

    def refine(self, ctx, best):
        fitted, score, tiles, params, cost = best.efficiency, best.score, best.label, best.params, best.cost
        for d in _quantized_dtypes(ctx.kernels):
            # the measured linears of a dtype quantize their input in a pass of their own
            # (roofline.QUANTIZE_INPUT): priced where that fits the rows better
            more = params + [Param(f"gemm_quantize_bandwidth_fraction_by_dtype.{d}", 0.01, 1.0, 0.3)]
            refit, refit_cost = ctx.fit(fitted, more)
            refit_score = ctx.score(round_efficiency(refit))
            if refit_score < score:
                fitted, score, params, cost = refit, refit_score, more, refit_cost
                tiles = f"{tiles}, {d} input quantization" if tiles else f"{d} input quantization"
        if best.label in ("gpu", "gpu-splitk"):
            # a dtype whose library kernels only come in large tiles (e.g. block-scaled fp4 on
            # Blackwell) is better described by those: each restriction is refitted (the other
            # terms move with it), and the best refit kept where it improves the score; a dtype
            # without rows here keeps the restriction it started with (an engine profile starts
            # from the default profile, and nothing here can choose for that dtype)
            measured = self.fitted_dtypes(ctx.kernels)
            chosen: dict[str, list] = {d: t for d, t in fitted.gemm.tiles_by_dtype.items() if d not in measured}
            for d in measured:
                picked = None
                for name, choice in DTYPE_TILES.items():
                    trial = fitted.model_copy(update={"gemm_tiles_by_dtype": {**chosen, d: choice}})
                    refit, refit_cost = ctx.fit(trial, params)
                    refit_score = ctx.score(round_efficiency(refit))
                    if refit_score < score:
                        fitted, score, cost, picked = refit, refit_score, refit_cost, name
                if picked is not None:
                    chosen[d] = DTYPE_TILES[picked]
                    tiles = f"{tiles}, {d}: {picked}"
        if "elementwise" not in ctx.ops and fitted.gemm.overhead_us_by_dtype:
            # no elementwise rows: the plain launch cost is the cheapest GEMM call's
            fitted = fitted.model_copy(update={"kernel_overhead_us": min(fitted.gemm.overhead_us_by_dtype.values())})
        return Fit(fitted, score, tiles, params, cost)


@register
class AttentionStage(CalibrationStage):
    name = "attention"
    ops = ("attention_prefill", "attention_decode")
    sections = ("attention", "decode", "cache")
    dtype_kind = OpKind.ATTENTION

    def params(self, kernels, ops, start, *, blocks=True, cache_bytes=0.0):
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

    def candidates(self, ctx, eff):
        if not ctx.blocks:
            return [(None, {})], None
        fused = _fused_attention(ctx.kernels)
        tile = {"attention_query_tile": ATTENTION_QUERY_TILE} if fused["prefill"] else {}
        # (the chosen group is the efficiency's decode_attention_max_group; no tile label)
        candidates = ([(None, {**tile, "decode_attention_max_group": g}) for g in DECODE_GROUPS]
                      if fused["per_head"] else [(None, tile)])
        if not ctx.warm_cache:
            return candidates, None
        # attention kernels fitted without warm-cache terms, then the best of those again with its
        # own (started from that fit, which converges fast): the better fit is kept (the A100's
        # decode follows the DRAM model better, the L40S's does not)
        return ([(COLD_CACHE, {**update, "attention_warm_cache_bandwidth_ratio": 1.0}) for _, update in candidates],
                _warm_attention_start)

    def refine(self, ctx, best):
        if not ctx.blocks:
            return best
        # a dtype with fast kernels for some head sizes only: the others get their own fraction
        fitted = best.efficiency
        native = native_head_sizes(ctx.kernels, with_efficiency(ctx.device, fitted),
                                   ctx.kernels.predict(with_efficiency(ctx.device, round_efficiency(fitted))), ctx.meas)
        if not native:
            return best
        start = fitted.model_copy(update={"attention_native_head_dims_by_dtype": native})
        more = best.params + [Param(f"attention_fallback_fraction_by_dtype.{d}", 0.02, 1.0, 0.3) for d in native]
        refit, refit_cost = ctx.fit(start, more)
        refit_score = ctx.score(round_efficiency(refit))
        if refit_score >= best.score:
            return best
        label = "native head sizes " + "; ".join(f"{d}: {', '.join(map(str, v))}" for d, v in native.items())
        return Fit(refit, refit_score, f"{best.label}, {label}" if best.label else label, more, refit_cost)


@register
class MlaStage(CalibrationStage):
    name = "mla"
    ops = ("mla_prefill", "mla_decode")
    sections = ("mla",)
    dtype_kind = OpKind.ATTENTION

    def params(self, kernels, ops, start, *, blocks=True, cache_bytes=0.0):
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

    def candidates(self, ctx, eff):
        if not ctx.warm_cache:
            return [(None, {})], None
        # MLA kernels may not profit from a warm cache where GQA ones do (the L40S's MLA decode
        # does not): fitted without warm-cache terms, then from there with their own
        cold = {"mla_overrides": {**eff.mla.overrides, "attention_warm_cache_bandwidth_ratio": 1.0}}
        return [(COLD_CACHE, cold)], _warm_mla_start


@register
class MoeStage(CalibrationStage):
    name = "moe"
    ops = ("moe",)
    sections = ("moe",)
    dtype_kind = OpKind.GEMM

    def fit_rows(self, variants):
        # balanced routing where the device has it: fitted on every routing, the validation rows
        # of all three routings scored worse on the H200, H100 and L40S (docs/efficiency.md, "MoE
        # routing"); a device measured only under power-law routing (the A100) is fitted on those
        balanced = np.array(["dist=" not in v for v in variants], dtype=bool)
        return balanced if balanced.any() else np.ones(len(variants), dtype=bool)

    def params(self, kernels, ops, start, *, blocks=True, cache_bytes=0.0):
        params = [Param(f"grouped_gemm_max_fraction_by_dtype.{d}", 0.02, 1.0, 0.6)
                  for d in _op_dtypes(kernels, OpKind.GEMM)]
        params.append(Param("grouped_gemm_overhead_us", 0.0, 1e4, 5.0))
        if blocks:
            params += [Param(f"grouped_gemm_memory_fraction_by_dtype.{d}", 0.02, 1.0, 0.7)
                       for d in _op_dtypes(kernels, OpKind.GEMM)]
            params.append(Param("grouped_gemm_act_bandwidth_fraction", 1e-3, 10.0, 0.5, log=True))
        return params

    def candidates(self, ctx, eff):
        if eff.gemm.tiles:
            return [("expert-tiles", {"grouped_gemm_expert_tiles": True}), (None, {})], None
        return [(None, {})], None


@register
class CollectiveStage(CalibrationStage):
    name = "collective"
    ops = ("allreduce", "allgather", "reducescatter", "alltoall", "p2p")
    sections = ("collectives",)

    def params(self, kernels, ops, start, *, blocks=True, cache_bytes=0.0):
        group_factors = bool(start.collectives.bandwidth_fraction_by_group_size)
        params = [Param(f"collective_bandwidth_fraction_by_kind.{k}", 0.02, 2.0, 0.7)
                  for k in _collective_kinds(kernels) if k in COLLECTIVE_KINDS]
        if start.collectives.latency_us_by_kind:
            # per-kind latency and call cost (the candidate below); the shared ones follow them
            params += [Param(f"collective_latency_us_by_kind.{k}", 0.0, 1e3, 1.0)
                       for k in start.collectives.latency_us_by_kind]
            params += [Param(f"collective_overhead_us_by_kind.{k}", 0.0, 1e4, 5.0)
                       for k in start.collectives.overhead_us_by_kind]
        else:
            params.append(Param("collective_latency_us", 0.0, 1e3, 1.0))
            params.append(Param("collective_overhead_us", 0.0, 1e4, 5.0))
        # on a shared fabric, the bandwidth of each larger group relative to the smallest
        # (set to 1 by the caller)
        if group_factors:
            params += [Param(f"collective_bandwidth_fraction_by_group_size.{g}", 0.01, 2.0, 1.0, log=True)
                       for g in _collective_group_sizes(kernels)[1:]]
        return params

    def candidates(self, ctx, eff):
        shared: dict = {}
        if ctx.device.scale_up.topology in SHARED_FABRICS and len(groups := _collective_group_sizes(ctx.kernels)) > 1:
            # the per-kind fractions are those of the smallest group; larger ones scale them
            shared = {"collective_bandwidth_fraction_by_group_size": {groups[0]: 1.0}}
        kinds = [k for k in _collective_kinds(ctx.kernels) if k in COLLECTIVE_KINDS]
        if len(kinds) < 2:
            return [(None, shared)], None
        # one latency and call cost for every kind, or one per kind (a custom one-shot all-reduce
        # beside NCCL's ring all-gather): the better on the validation rows is kept
        per_kind = {"collective_latency_us_by_kind": {k: 1.0 for k in kinds},
                    "collective_overhead_us_by_kind": {k: 5.0 for k in kinds}}
        return [(None, shared), (PER_KIND_COSTS, {**shared, **per_kind})], None

    def refine(self, ctx, best):
        if best.label != PER_KIND_COSTS:
            return best
        # collectives not measured (send/recv) take the median of the measured kinds' costs
        c = best.efficiency.collectives
        shared = {"collective_latency_us": float(np.median(list(c.latency_us_by_kind.values()))),
                  "collective_overhead_us": float(np.median(list(c.overhead_us_by_kind.values())))}
        return Fit(best.efficiency.model_copy(update=shared), best.score, best.label, best.params, best.cost)


def _warm_attention_start(fitted: EfficiencySpec) -> EfficiencySpec:
    """A cold attention fit as the start of its warm-cache candidate (the ratio no longer 1)."""
    return fitted.model_copy(update={"attention_warm_cache_bandwidth_ratio": None})


def _warm_mla_start(fitted: EfficiencySpec) -> EfficiencySpec:
    """A cold MLA fit as the start of its warm-cache candidate."""
    overrides = {k: v for k, v in fitted.mla.overrides.items() if k != "attention_warm_cache_bandwidth_ratio"}
    return fitted.model_copy(update={"mla_overrides": overrides})
