"""Per-family sections of a device's efficiency model (:mod:`infersim.hardware.efficiency`
documents the layout); each section is fitted by one calibration stage."""

from __future__ import annotations

from typing import Literal, NamedTuple

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..dtypes import COMPUTE_FALLBACK, DTYPE_BYTES

Source = str


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Section(_Strict):
    """One family's part of the efficiency section (fields accept their flat names too)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _dtype_fractions(value: dict[str, float], upper: float) -> dict[str, float]:
    """``value`` if every key is a known dtype and every fraction lies in (0, upper]."""
    for key, number in value.items():
        _check_dtype(key)
        if not 0 < number <= upper:
            raise ValueError(f"fraction for '{key}' must be in (0, {upper:g}], got {number}")
    return value


def _check_dtype(key: str) -> None:
    if key not in DTYPE_BYTES:
        raise ValueError(f"unknown dtype '{key}'; expected one of {', '.join(DTYPE_BYTES)}")


def _overheads(value: dict[str, float]) -> dict[str, float]:
    for key, number in value.items():
        _check_dtype(key)
        if number < 0:
            raise ValueError(f"overhead for '{key}' must be >= 0 us, got {number}")
    return value


def _ranges(what: str, lower: float, upper: float):
    """A validator of a per-dtype field whose numbers lie in [lower, upper]."""
    def check(value: dict[str, float]) -> dict[str, float]:
        for key, number in value.items():
            _check_dtype(key)
            if not lower <= number <= upper:
                raise ValueError(f"{what} for '{key}' must be in [{lower:g}, {upper:g}], got {number}")
        return value
    return check


def _by_dtype(table: dict[str, float], dtype: str | None) -> float | None:
    """``table[dtype]``, else the entry of the first wider dtype ``dtype`` falls back to, else None."""
    current: str | None = dtype
    while current is not None:
        if current in table:
            return table[current]
        current = COMPUTE_FALLBACK.get(current)
    return None


class CoreEfficiency(_Section):
    """General compute and memory ramps and the kernel launch cost (elementwise kernels; the
    defaults of every other family)."""

    compute_max_fraction: float = Field(default=0.80, gt=0, le=1.0)
    compute_max_fraction_by_dtype: dict[str, float] = Field(
        default_factory=dict, description="per-dtype override of compute_max_fraction (e.g. fp8 GEMMs)")
    compute_half_flops: float = Field(default=2.0e9, ge=0, description="FLOPs at which compute efficiency is half its max")
    memory_max_fraction: float = Field(default=0.85, gt=0, le=1.0)
    memory_half_bytes: float = Field(default=4.0e6, ge=0, description="bytes at which bandwidth efficiency is half its max")
    kernel_overhead_us: float = Field(default=4.0, ge=0, description="fixed cost per kernel launch")

    _fractions = field_validator("compute_max_fraction_by_dtype")(lambda v: _dtype_fractions(v, 1.0))


class GemmEfficiency(_Section):
    """GEMMs: ``tiles`` lists the output tiles the GEMM library may pick; the kernel with the best
    padded-tile utilization is used (wave quantization with partial tiles counted as wasted work),
    ``k_half`` is the per-tile prologue/epilogue cost in units of the reduction depth ``k``
    (efficiency ``k / (k + k_half)``) and ``tile_intensity_half`` the operand reuse
    ``tm tn / (tm + tn)`` at which a tile reaches half the GEMM fraction (small tiles reuse their
    operands less), splitting the reduction over up to ``split_k`` blocks per tile when that fills
    the machine better (split-K); a dtype may have its own candidates (``tiles_by_dtype``); GEMMs
    with ``m <= gemv_max_m`` run a matrix-vector kernel instead (BLAS GEMV, no row tiles to pad).
    ``memory_max_fraction``: tiled GEMMs re-read operand panels (CPU BLAS packs them, GPU tiles
    re-fetch them from L2), so their achievable bandwidth fraction may differ from a streaming
    kernel's (elementwise ops and matrix-vector GEMMs). ``overhead_us_by_dtype`` replaces the
    launch overhead of GEMMs in a dtype (e.g. fp8 linears that first quantize their input).
    ``quantize_fraction_by_dtype``: a measured quantized linear (fp8, nvfp4) taking 16-bit
    activations first runs an activation-quantization kernel over its ``m x k`` input, priced at
    this fraction of the memory bandwidth (kernel microbenchmarks only; see
    :data:`infersim.perf.roofline.QUANTIZE_INPUT`)."""

    memory_max_fraction: float | None = Field(alias="gemm_memory_max_fraction",
        default=None, gt=0, le=1.0,
        description="memory_max_fraction of tiled GEMMs, which re-read operand panels (default: memory's)")
    overhead_us_by_dtype: dict[str, float] = Field(alias="gemm_overhead_us_by_dtype",
        default_factory=dict, description="per-dtype fixed cost of one GEMM call (default: kernel_overhead_us)")
    tile_m: int = Field(alias="gemm_tile_m", default=128, ge=1)
    tile_n: int = Field(alias="gemm_tile_n", default=128, ge=1)
    tiles: list[tuple[int, int]] = Field(alias="gemm_tiles",
        default_factory=list,
        description="candidate (tile_m, tile_n) output tiles; non-empty enables the padded-tile GEMM model")
    k_half: float = Field(alias="gemm_k_half", default=0.0, ge=0, description="per-tile fixed cost in units of the reduction depth k")
    tile_intensity_half: float = Field(alias="gemm_tile_intensity_half",
        default=0.0, ge=0,
        description="operand reuse tm*tn/(tm+tn) at which a candidate tile reaches half the GEMM fraction: small "
                    "tiles reuse less (padded-tile model; default 0: every tile alike)")
    tiles_by_dtype: dict[str, list[tuple[int, int]]] = Field(alias="gemm_tiles_by_dtype",
        default_factory=dict,
        description="per compute dtype candidate tiles replacing gemm_tiles (e.g. block-scaled fp4 kernels "
                    "that only come in large tiles)")
    split_k: int = Field(alias="gemm_split_k",
        default=1, ge=1, description="largest split-K factor (power of two) the padded-tile GEMM model may use")
    gemv_max_m: int = Field(alias="gemm_gemv_max_m",
        default=0, ge=0, description="GEMMs with m <= this run a matrix-vector kernel: no tile padding (padded model)")

    quantize_fraction_by_dtype: dict[str, float] = Field(alias="gemm_quantize_bandwidth_fraction_by_dtype",
        default_factory=dict,
        description="per compute dtype, the bandwidth fraction of the activation-quantization kernel a measured "
                    "quantized linear runs before its GEMM (kernel microbenchmarks only; default: none)")

    _overheads = field_validator("overhead_us_by_dtype")(_overheads)
    _quantize = field_validator("quantize_fraction_by_dtype")(lambda v: _dtype_fractions(v, 1.0))

    @field_validator("tiles")
    @classmethod
    def _tiles(cls, value: list[tuple[int, int]]) -> list[tuple[int, int]]:
        for tile in value:
            if tile[0] < 1 or tile[1] < 1:
                raise ValueError(f"tile sizes must be >= 1, got {list(tile)}")
        return value

    @field_validator("tiles_by_dtype")
    @classmethod
    def _tiles_by_dtype(cls, value: dict[str, list[tuple[int, int]]]) -> dict[str, list[tuple[int, int]]]:
        for key, tiles in value.items():
            _check_dtype(key)
            if not tiles or any(t[0] < 1 or t[1] < 1 for t in tiles):
                raise ValueError(f"tiles for '{key}' must be a non-empty list of sizes >= 1, got {tiles}")
        return value

    def tiles_for(self, dtype: str) -> list[tuple[int, int]]:
        """Candidate GEMM tiles in ``dtype`` (its own list, else the fallback dtype's, else ``tiles``)."""
        current: str | None = dtype
        while current is not None:
            if current in self.tiles_by_dtype:
                return self.tiles_by_dtype[current]
            current = COMPUTE_FALLBACK.get(current)
        return self.tiles


class AttentionEfficiency(_Section):
    """Fused attention: per-dtype fractions, its own ramp, memory fraction and fixed overhead, and
    ``query_bandwidth_fraction``: the per-query work (loading Q, softmax normalization, storing O)
    that does not overlap the main loop, costed as the op's activation bytes at that fraction of
    the bandwidth (per compute dtype in ``query_bandwidth_fraction_by_dtype``: an fp8 prefill
    kernel first quantizes its bf16 queries, keys and values, a pass over them of its own).

    Per-thread-block terms (the step graph's attention rows carry their sequences, heads and
    scores; :mod:`infersim.perf.roofline` documents the formulas): ``softmax_fraction``: one
    exponential per attention score at this fraction of the fp32 (vector) peak, added to the
    compute time (FlashAttention-3, Shah et al. 2024: the exponential unit, not the tensor cores,
    limits small head sizes). ``cta_us``: fixed cost of one prefill thread block, one per sequence
    x query head x ``query_tile`` queries (FlashAttention's query-block tiling, Dao et al. 2022: a
    sequence's last, partial query tile costs a whole block); a prefill kernel with few blocks
    (one long sequence over one or two heads) keeps only ``blocks / (blocks + parallel_half)`` of
    the machine busy.

    ``fp8_kv_context_math``: over an fp8 KV cache with bf16 activations, TensorRT-LLM's context
    attention on the H100 / H200 / B200 quantizes the queries and runs fp8 FMHA (bf16-activation
    rows time like fp8 ones, ~590 TFLOP/s at head size 128 on the H100), while on the L40S it runs
    bf16 FMHA (~130 TFLOP/s, the bf16 rate, against ~230 for fp8 activations; aiconfigurator-core
    0.12.0). The step graph takes the device's choice (:func:`infersim.perf.graph.options_for_device`).

    Head sizes (``native_head_dims_by_dtype``, ``fallback_fraction_by_dtype``): fused-attention
    kernels are compiled per head size, and a dtype may have fast kernels for some head sizes
    only; the others run a generic kernel at their own fraction. On the L40S TensorRT-LLM's fp8
    context attention reaches ~230 TFLOP/s at head size 128 and ~190 at 192, but ~100 at 64 and
    ~75 at 256, below its bf16 kernels (~130-140; aiconfigurator-core 0.12.0, sequences of 2k
    tokens and more). The head size of a (non-MLA) attention row is ``flops / (4 scores)``."""

    max_fraction: float | None = Field(alias="attention_max_fraction",
        default=None, gt=0, le=1.0, description="fused attention kernels' achievable fraction (default: compute's)")
    max_fraction_by_dtype: dict[str, float] = Field(alias="attention_max_fraction_by_dtype",
        default_factory=dict, description="per-dtype override of attention_max_fraction (e.g. fp8 attention)")
    half_flops: float | None = Field(alias="attention_half_flops",
        default=None, ge=0, description="compute_half_flops of fused attention kernels (default: compute_half_flops)")
    memory_max_fraction: float | None = Field(alias="attention_memory_max_fraction",
        default=None, gt=0, le=1.0, description="memory_max_fraction of fused attention kernels (default: memory's)")
    query_bandwidth_fraction: float | None = Field(alias="attention_query_bandwidth_fraction",
        default=None, gt=0, le=10.0,
        description="non-overlapped per-query work of fused attention: activation (Q/O) bytes at this fraction of "
                    "the memory bandwidth, added to the roofline time (default: none)")
    query_bandwidth_fraction_by_dtype: dict[str, float] = Field(alias="attention_query_bandwidth_fraction_by_dtype",
        default_factory=dict,
        description="attention_query_bandwidth_fraction per compute dtype of the kernel: an fp8 kernel first "
                    "quantizes its bf16 queries, keys and values, a pass of its own (default: the general value)")
    overhead_us: float | None = Field(alias="attention_overhead_us",
        default=None, ge=0, description="fixed cost of one fused attention call (default: kernel_overhead_us)")
    softmax_fraction: float | None = Field(alias="attention_softmax_fraction",
        default=None, gt=0, le=10.0,
        description="fused attention: exponentials (one per attention score) per second as a fraction of the "
                    "fp32 vector peak, added to compute time (default: none)")
    query_tile: int | None = Field(alias="attention_query_tile",
        default=None, ge=1, description="queries per thread block of fused prefill attention (default 128)")
    cta_us: float | None = Field(alias="attention_cta_us",
        default=None, ge=0,
        description="fixed cost of one prefill attention thread block (sequence x query head x query tile), "
                    "spread over the compute units (default: none)")
    parallel_half: float | None = Field(alias="attention_parallel_half",
        default=None, gt=0,
        description="prefill attention thread blocks (sequence x query head x query tile) at which its throughput "
                    "is half its fraction: few blocks leave compute units idle (default: none)")
    fp8_kv_context_math: Literal["fp8", "activation"] = Field(
        default="fp8",
        description="compute dtype of context (prefill) attention over an fp8 KV cache with wider activations: fp8 "
                    "(queries quantized, fp8 FMHA: TensorRT-LLM on Hopper / Blackwell) or the activation dtype "
                    "(the L40S: bf16 FMHA reading the fp8 cache)")
    native_head_dims_by_dtype: dict[str, list[int]] = Field(alias="attention_native_head_dims_by_dtype",
        default_factory=dict,
        description="head sizes that have their own fused-attention kernel in this compute dtype; other head sizes "
                    "run a generic one at attention_fallback_fraction_by_dtype (default: every head size native)")
    fallback_fraction_by_dtype: dict[str, float] = Field(alias="attention_fallback_fraction_by_dtype",
        default_factory=dict,
        description="achievable fraction of a fused attention kernel in this dtype at a head size without a native "
                    "kernel (attention_native_head_dims_by_dtype)")

    _fractions = field_validator("max_fraction_by_dtype", "fallback_fraction_by_dtype")(
        lambda v: _dtype_fractions(v, 1.0))
    _query = field_validator("query_bandwidth_fraction_by_dtype")(lambda v: _dtype_fractions(v, 10.0))

    @field_validator("native_head_dims_by_dtype")
    @classmethod
    def _native_head_dims(cls, value: dict[str, list[int]]) -> dict[str, list[int]]:
        for key, dims in value.items():
            _check_dtype(key)
            if not dims or any(d <= 0 for d in dims):
                raise ValueError(f"head sizes for '{key}' must be a non-empty list of positive integers, got {dims}")
        return value


class DecodeKernel(NamedTuple):
    """One decode-attention kernel's per-thread-block terms (:meth:`DecodeEfficiency.kernel`)."""

    cta_us: float  # fixed cost of one block (0: none)
    launch_us: float  # fixed cost a call adds to the decode overhead
    half: float | None  # parallelism half-point in blocks (None: no ramp)
    sharpness: float  # of the ramp (1: blocks / (blocks + half))
    reread_ratio: float | None  # rate of re-reads of a KV head relative to DRAM (None: DRAM)


class DecodeEfficiency(_Section):
    """Decode attention (one query per sequence: FlashDecoding / XQA-style kernels, the graph's
    ``attention.decode`` rows), a different kernel from prefill's FMHA: its own memory fraction
    (per compute dtype: a quantized cache is dequantized in the kernel; on the H200
    TensorRT-LLM's MLA decode streams a bf16 latent cache at ~93% of the bandwidth and an fp8 one
    at ~65%, measured by aiconfigurator-core), per-query fraction and fixed cost.

    Thread blocks (FlashDecoding-style kernels, Dao et al. 2023; TensorRT-LLM's XQA / masked MHA):
    one per sequence x KV head (``cta_us``, per compute dtype in ``cta_us_by_dtype``), or per
    sequence x query head for MHA and for query groups larger than ``max_group`` (``head_cta_us``;
    each such block streams its KV head's cache itself); the bandwidth reached grows with the
    number of blocks, ``blocks / (blocks + parallel_half)``. A kernel that does not split a
    sequence over blocks (TensorRT-LLM's fp8-KV XQA and the MLA decode on the L40S,
    aiconfigurator-core 0.12.0: batch 1 to 16 at 2k tokens take the same time, then time grows
    with the batch) has a sharp ramp, ``(1 + (half / blocks)^p)^(-1/p)`` with
    ``p = parallel_sharpness``. The per-query-head kernel (masked MHA) has per-dtype block costs
    (``head_cta_us_by_dtype``; the L40S's fp8 one ~3 us a block against ~0.7 in bf16), an extra
    launch cost (``head_launch_us_by_dtype``), its own soft half-point (``head_parallel_half``: it
    splits long sequences) and re-reads each KV head from the cache (``reread_bandwidth_ratio``:
    the L40S's bf16 64-query-head decode streams 32k tokens x 8 sequences in 1.8 ms, ~7x faster
    than 64 DRAM reads of it). ``max_fraction``: the decode kernels' own share of peak (another
    kernel family than the prefill FMHA, compiled for every head size, so a prefill fallback
    fraction does not apply to them)."""

    max_fraction: float | None = Field(alias="decode_attention_max_fraction",
        default=None, gt=0, le=1,
        description="achievable fraction of peak of (non-MLA) decode attention kernels, a kernel family of its own "
                    "(TensorRT-LLM's XQA / masked MHA; default: the attention fraction)")
    memory_max_fraction: float | None = Field(alias="decode_attention_memory_max_fraction",
        default=None, gt=0, le=1.0, description="attention_memory_max_fraction of decode attention (default: same)")
    memory_max_fraction_by_dtype: dict[str, float] = Field(alias="decode_attention_memory_max_fraction_by_dtype",
        default_factory=dict,
        description="decode_attention_memory_max_fraction per compute dtype of the decode kernel (fp8 where the KV "
                    "cache is fp8): a quantized cache is dequantized in the kernel and streams at its own rate")
    query_bandwidth_fraction: float | None = Field(alias="decode_attention_query_bandwidth_fraction",
        default=None, gt=0, le=10.0,
        description="attention_query_bandwidth_fraction of decode attention (default: same)")
    overhead_us: float | None = Field(alias="decode_attention_overhead_us",
        default=None, ge=0, description="attention_overhead_us of decode attention (default: same)")
    cta_us: float | None = Field(alias="decode_attention_cta_us",
        default=None, ge=0,
        description="fixed cost of one decode attention thread block (sequence x KV head), spread over the "
                    "compute units (default: none)")
    cta_us_by_dtype: dict[str, float] = Field(alias="decode_attention_cta_us_by_dtype",
        default_factory=dict, description="per compute dtype override of decode_attention_cta_us")
    head_cta_us: float | None = Field(alias="decode_attention_head_cta_us",
        default=None, ge=0,
        description="fixed cost of one block of the per-query-head decode kernel (MHA, and query groups above "
                    "decode_attention_max_group); None, with no per-dtype entry: every decode runs the grouped kernel")
    head_cta_us_by_dtype: dict[str, float] = Field(alias="decode_attention_head_cta_us_by_dtype",
        default_factory=dict,
        description="per compute dtype override of decode_attention_head_cta_us (TensorRT-LLM's fp8-KV per-head "
                    "decode on the L40S pays ~3 us a block where bf16 pays ~1 us)")
    reread_bandwidth_ratio: float | None = Field(alias="decode_attention_reread_bandwidth_ratio",
        default=None, ge=1, le=50,
        description="rate, relative to DRAM, at which the per-query-head decode blocks of one KV head re-read its "
                    "cache: they run side by side, so the repeats come from the last-level cache (default 1: DRAM)")
    reread_bandwidth_ratio_by_dtype: dict[str, float] = Field(alias="decode_attention_reread_bandwidth_ratio_by_dtype",
        default_factory=dict,
        description="decode_attention_reread_bandwidth_ratio per compute dtype of the decode kernel (an fp8 cache is "
                    "dequantized again on every re-read)")
    head_launch_us_by_dtype: dict[str, float] = Field(alias="decode_attention_head_launch_us_by_dtype",
        default_factory=dict,
        description="fixed cost a per-query-head decode call adds to decode_attention_overhead_us, per compute dtype "
                    "(TensorRT-LLM's fp8-KV masked MHA on the L40S: ~14 us a call against ~9 us for the grouped "
                    "kernel)")
    max_group: int | None = Field(alias="decode_attention_max_group",
        default=None, ge=1, description="largest query heads per KV head the grouped decode kernel takes")
    parallel_half: float | None = Field(alias="decode_attention_parallel_half",
        default=None, gt=0,
        description="decode attention thread blocks at which its bandwidth is half its fraction (default: none)")
    parallel_half_by_dtype: dict[str, float] = Field(alias="decode_attention_parallel_half_by_dtype",
        default_factory=dict,
        description="decode_attention_parallel_half per compute dtype of the decode kernel: a kernel that does not "
                    "split a long KV sequence over blocks (TensorRT-LLM's fp8-KV decode on the L40S) streams each "
                    "sequence from one block, a much later half-point (default: the general value)")
    head_parallel_half: float | None = Field(alias="decode_attention_head_parallel_half",
        default=None, gt=0,
        description="decode_attention_parallel_half of the per-query-head decode kernel, whose ramp is always soft "
                    "(it splits long sequences over blocks: TensorRT-LLM's masked MHA multi-block mode; default: the "
                    "grouped kernel's values)")
    parallel_sharpness: float | None = Field(alias="decode_attention_parallel_sharpness",
        default=None, ge=1, le=16,
        description="sharpness p of the decode parallelism ramp r = (1 + (half / blocks)^p)^(-1/p): 1 (default) is "
                    "blocks / (blocks + half), large p is min(1, blocks / half), a kernel whose blocks each stream "
                    "one sequence at a fixed rate until the machine is full")
    parallel_sharpness_by_dtype: dict[str, float] = Field(alias="decode_attention_parallel_sharpness_by_dtype",
        default_factory=dict, description="decode_attention_parallel_sharpness per compute dtype of the decode kernel")

    _fractions = field_validator("memory_max_fraction_by_dtype")(lambda v: _dtype_fractions(v, 1.0))
    _overheads = field_validator("cta_us_by_dtype", "head_cta_us_by_dtype", "head_launch_us_by_dtype",
                                 "parallel_half_by_dtype")(_overheads)
    _reread = field_validator("reread_bandwidth_ratio_by_dtype")(_ranges("re-read bandwidth ratio", 1.0, 50.0))
    _sharp = field_validator("parallel_sharpness_by_dtype")(_ranges("decode parallelism sharpness", 1.0, 16.0))

    def kernel(self, dtype: str, per_head: bool = False) -> DecodeKernel:
        """The terms of the decode-attention kernel computing in ``dtype``: the grouped kernel
        (one block per sequence x KV head) or, ``per_head``, the per-query-head one (its own
        block and launch costs, its own soft half-point where set, cache re-reads). Per-dtype
        entries win over the general values (falling back to wider dtypes)."""
        half = _by_dtype(self.parallel_half_by_dtype, dtype)
        half = self.parallel_half if half is None else half
        sharpness = _by_dtype(self.parallel_sharpness_by_dtype, dtype)
        sharpness = self.parallel_sharpness if sharpness is None else sharpness
        if not per_head:
            cta = _by_dtype(self.cta_us_by_dtype, dtype)
            cta = self.cta_us if cta is None else cta
            return DecodeKernel(cta or 0.0, 0.0, half, 1.0 if sharpness is None else sharpness, None)
        cta = _by_dtype(self.head_cta_us_by_dtype, dtype)
        cta = self.head_cta_us if cta is None else cta
        reread = _by_dtype(self.reread_bandwidth_ratio_by_dtype, dtype)
        reread = self.reread_bandwidth_ratio if reread is None else reread
        if self.head_parallel_half is not None:
            half, sharpness = self.head_parallel_half, 1.0
        return DecodeKernel(cta or 0.0, _by_dtype(self.head_launch_us_by_dtype, dtype) or 0.0,
                            half, 1.0 if sharpness is None else sharpness, reread)

    @property
    def per_head(self) -> bool:
        """Whether the device has a per-query-head decode kernel (MHA, large query groups)."""
        return self.head_cta_us is not None or bool(self.head_cta_us_by_dtype)


class MlaEfficiency(_Section):
    """MLA attention (DeepSeek-V2; the graph's MLA prefill and absorbed decode rows) runs its own
    kernels, so any attention, decode or attention warm-cache field may take another value for
    them, by flat name (``{"attention_overhead_us": 9.0, "attention_max_fraction_by_dtype.bf16":
    0.5}``; dotted keys set one dtype of a per-dtype field)."""

    overrides: dict[str, float] = Field(alias="mla_overrides",
        default_factory=dict,
        description="attention fields with other values for MLA attention rows (dotted keys: one dtype of a "
                    "per-dtype field)")

    @field_validator("overrides")
    @classmethod
    def _mla_keys(cls, value: dict[str, float]) -> dict[str, float]:
        for key, number in value.items():
            name, _, dtype = key.partition(".")
            if name not in MLA_OVERRIDABLE or bool(dtype) != name.endswith("_by_dtype"):
                raise ValueError(f"'{key}' cannot be overridden for MLA; expected one of "
                                 f"{', '.join(f + ('.DTYPE' if f.endswith('_by_dtype') else '') for f in MLA_OVERRIDABLE)}")
            if dtype and dtype not in DTYPE_BYTES:
                raise ValueError(f"unknown dtype '{dtype}' in '{key}'")
            if number < 0:
                raise ValueError(f"'{key}' must be >= 0, got {number}")
        return value


class MoeEfficiency(_Section):
    """MoE grouped GEMMs (the step graph's ``moe.experts.*`` GEMMs: one kernel over all local
    experts, TensorRT-LLM / CUTLASS grouped GEMM) may reach their own fraction of peak and of the
    memory bandwidth (per dtype) and have their own call cost. ``expert_tiles``: each expert's
    rows form their own tiles (per-expert tile quantization, as in CUTLASS grouped GEMM /
    MegaBlocks, Gale et al. 2023); ``act_bandwidth_fraction``: the token permutation around a
    grouped GEMM (gathering each expert's input rows, scattering its output rows back:
    TensorRT-LLM's expand / finalize kernels) moves the GEMM's activation bytes once more, not
    overlapped."""

    max_fraction_by_dtype: dict[str, float] = Field(alias="grouped_gemm_max_fraction_by_dtype",
        default_factory=dict,
        description="achievable fraction of MoE grouped (per-expert) GEMMs per dtype (default: the GEMM fraction)")
    overhead_us: float | None = Field(alias="grouped_gemm_overhead_us",
        default=None, ge=0, description="fixed cost of one MoE grouped GEMM call (default: the GEMM call cost)")
    memory_fraction_by_dtype: dict[str, float] = Field(alias="grouped_gemm_memory_fraction_by_dtype",
        default_factory=dict,
        description="memory_max_fraction of MoE grouped GEMMs per (compute) dtype: weight formats that are "
                    "dequantized on the fly (block-scaled fp8 / fp4) stream at their own rate (default: the GEMM's)")
    act_bandwidth_fraction: float | None = Field(alias="grouped_gemm_act_bandwidth_fraction",
        default=None, gt=0, le=10.0,
        description="MoE grouped GEMMs: their activation rows are gathered before and scattered after the GEMM "
                    "(token permutation), costed as their activation bytes at this fraction of the memory "
                    "bandwidth, added to the time (default: none)")
    expert_tiles: bool = Field(alias="grouped_gemm_expert_tiles",
        default=False, description="MoE grouped GEMMs tile each expert's rows apart (per-expert tile padding)")

    _fractions = field_validator("max_fraction_by_dtype", "memory_fraction_by_dtype")(
        lambda v: _dtype_fractions(v, 1.0))


class CollectiveEfficiency(_Section):
    """Collectives: per-collective bandwidth fractions, the per-step latency (alpha) of the
    scale-up link, and a fixed cost per call. ``bandwidth_fraction_by_group_size`` scales the link
    bandwidth by the group size: on PCIe servers without NVLink the GPUs of a larger group share a
    switch uplink, a host bridge and, across sockets, the inter-socket link, so the bus bandwidth
    each GPU reaches falls with the group (nccl-tests on 8x L40S in aiconfigurator-core 0.12.0:
    ring all-reduce bus bandwidth ~27 GB/s on 2 GPUs, ~7 on 4, ~1.9 on 8). Factors between listed
    sizes are interpolated in log2(size); outside them the nearest is used."""

    bandwidth_fraction: float = Field(alias="collective_bandwidth_fraction", default=0.80, gt=0, le=1.0)
    bandwidth_fraction_by_kind: dict[str, float] = Field(alias="collective_bandwidth_fraction_by_kind",
        default_factory=dict,
        description="per-collective override of collective_bandwidth_fraction (all-reduce, all-gather, "
                    "reduce-scatter, all-to-all, send-recv); all-reduce may exceed 1 with in-switch reduction")
    bandwidth_fraction_by_group_size: dict[int, float] = Field(alias="collective_bandwidth_fraction_by_group_size",
        default_factory=dict,
        description="factor on the collective bandwidth per group size (GPUs taking part in the "
                    "collective; shared PCIe switches and host bridges); default 1")
    latency_us: float | None = Field(alias="collective_latency_us",
        default=None, ge=0,
        description="per-step latency (alpha) on the scale-up link (default: the link's latency_us)")
    overhead_us: float | None = Field(alias="collective_overhead_us",
        default=None, ge=0, description="fixed cost of one collective call (default: kernel_overhead_us)")
    latency_us_by_kind: dict[str, float] = Field(alias="collective_latency_us_by_kind", default_factory=dict,
        description="per-collective override of collective_latency_us (e.g. a custom one-shot all-reduce "
                    "beside NCCL's ring all-gather)")
    overhead_us_by_kind: dict[str, float] = Field(alias="collective_overhead_us_by_kind", default_factory=dict,
        description="per-collective override of collective_overhead_us")

    @field_validator("latency_us_by_kind", "overhead_us_by_kind")
    @classmethod
    def _kind_costs(cls, value: dict[str, float]) -> dict[str, float]:
        for key, number in value.items():
            if key not in COLLECTIVE_KINDS:
                raise ValueError(f"unknown collective '{key}'; expected one of {', '.join(COLLECTIVE_KINDS)}")
            if not number >= 0:
                raise ValueError(f"cost for '{key}' must be >= 0 us, got {number}")
        return value

    def latency_for(self, kind: str) -> float | None:
        """The per-step latency of collective ``kind`` (us; None: the link's)."""
        return self.latency_us_by_kind.get(kind, self.latency_us)

    def overhead_for(self, kind: str) -> float | None:
        """The fixed cost of one call of collective ``kind`` (us; None: kernel_overhead_us)."""
        return self.overhead_us_by_kind.get(kind, self.overhead_us)

    @field_validator("bandwidth_fraction_by_kind")
    @classmethod
    def _kinds(cls, value: dict[str, float]) -> dict[str, float]:
        for key, number in value.items():
            if key not in COLLECTIVE_KINDS:
                raise ValueError(f"unknown collective '{key}'; expected one of {', '.join(COLLECTIVE_KINDS)}")
            if not 0 < number <= 2.0:
                raise ValueError(f"fraction for '{key}' must be in (0, 2], got {number}")
        return value

    @field_validator("bandwidth_fraction_by_group_size")
    @classmethod
    def _group_sizes(cls, value: dict[int, float]) -> dict[int, float]:
        for key, number in value.items():
            if key < 2:
                raise ValueError(f"group size must be at least 2, got {key}")
            if not 0 < number <= 2.0:
                raise ValueError(f"factor for group size {key} must be in (0, 2], got {number}")
        return value

    def group_factor(self, group_size: int) -> float:
        """Factor on the collective bandwidth for ``group_size`` devices: the listed factors
        interpolated linearly in log2(group size), the nearest listed one outside them, 1 when
        none is listed."""
        table = self.bandwidth_fraction_by_group_size
        if not table:
            return 1.0
        sizes = sorted(table)
        x = np.log2(np.asarray(sizes, dtype=np.float64))
        y = np.asarray([table[k] for k in sizes], dtype=np.float64)
        return float(np.interp(np.log2(max(group_size, 1)), x, y))


class CacheEfficiency(_Section):
    """Warm cache: a kernel microbenchmark runs the same kernel on the same buffers again and
    again, so a working set that fits in the last-level cache is served from it, not from DRAM.
    Of a kernel's bytes ``W`` the share ``h = 1 / (1 + (W / capacity_bytes)^6)`` moves at
    ``bandwidth_ratio`` times the DRAM rate (attention kernels may have their own values). This is
    a condition of the measurement, not of serving (where the next layer's weights evict this
    one's), so only the fidelity predictions of isolated kernels use it
    (``cost_ops(..., warm_cache=True)``); fitting it keeps the DRAM fractions honest. On the L40S
    (96 MB L2, 864 GB/s GDDR6) TensorRT-LLM's decode attention reaches ~2.2 TB/s on a bf16 KV cache
    of 50-90 MB and ~650 GB/s above 100 MB (aiconfigurator-core 0.12.0)."""

    capacity_bytes: float | None = Field(alias="warm_cache_bytes",
        default=None, gt=0,
        description="working set (bytes) up to which a kernel run back to back on the same buffers finds them in "
                    "the last-level cache; fidelity predictions of isolated kernels only (default: none)")
    bandwidth_ratio: float = Field(alias="warm_cache_bandwidth_ratio",
        default=1.0, ge=1.0, le=50.0, description="bandwidth of warm-cache bytes relative to the DRAM rate")
    attention_capacity_bytes: float | None = Field(alias="attention_warm_cache_bytes",
        default=None, gt=0, description="warm_cache_bytes of fused attention kernels (default: the general one)")
    attention_bandwidth_ratio: float | None = Field(alias="attention_warm_cache_bandwidth_ratio",
        default=None, ge=1.0, le=50.0,
        description="warm_cache_bandwidth_ratio of fused attention kernels (default: the general one)")
    attention_bandwidth_ratio_by_dtype: dict[str, float] = Field(alias="attention_warm_cache_bandwidth_ratio_by_dtype",
        default_factory=dict,
        description="attention_warm_cache_bandwidth_ratio per compute dtype: a kernel bound by dequantizing "
                    "its fp8 KV cache gains nothing from a faster memory level (default: the general value)")

    _ratios = field_validator("attention_bandwidth_ratio_by_dtype")(_ranges("warm-cache bandwidth ratio", 1.0, 50.0))

    def terms(self, attention: bool, dtype: str | None = None) -> tuple[float | None, float]:
        """(warm-cache capacity in bytes or None, its bandwidth ratio) of a kernel computing in
        ``dtype``; ``attention``: a fused attention kernel, whose own values win where set."""
        size, ratio = self.capacity_bytes, self.bandwidth_ratio
        if attention:
            if self.attention_capacity_bytes is not None:
                size = self.attention_capacity_bytes
            if self.attention_bandwidth_ratio is not None:
                ratio = self.attention_bandwidth_ratio
            by_dtype = _by_dtype(self.attention_bandwidth_ratio_by_dtype, dtype)
            if by_dtype is not None:
                ratio = by_dtype
        return size, ratio


#: the sections of :class:`EfficiencySpec`, by the key they have in a device file (defined once)
SECTIONS: dict[str, type[_Section]] = {
    "core": CoreEfficiency,
    "gemm": GemmEfficiency,
    "attention": AttentionEfficiency,
    "decode": DecodeEfficiency,
    "mla": MlaEfficiency,
    "moe": MoeEfficiency,
    "collectives": CollectiveEfficiency,
    "cache": CacheEfficiency,
}

#: flat field name -> (section, field in that section)
FLAT_FIELDS: dict[str, tuple[str, str]] = {
    (info.alias or short): (section, short)
    for section, cls in SECTIONS.items() for short, info in cls.model_fields.items()
}


#: fields ``mla.overrides`` may set, by flat name (per-dtype ones with a ``.DTYPE`` suffix)
MLA_OVERRIDABLE: tuple[str, ...] = (
    "attention_max_fraction", "attention_max_fraction_by_dtype", "attention_half_flops",
    "attention_memory_max_fraction", "attention_query_bandwidth_fraction",
    "attention_query_bandwidth_fraction_by_dtype", "attention_overhead_us",
    "decode_attention_memory_max_fraction", "decode_attention_memory_max_fraction_by_dtype",
    "decode_attention_query_bandwidth_fraction",
    "decode_attention_overhead_us", "attention_softmax_fraction", "attention_cta_us", "decode_attention_cta_us",
    "decode_attention_cta_us_by_dtype", "decode_attention_parallel_half", "attention_parallel_half",
    "decode_attention_parallel_half_by_dtype", "decode_attention_parallel_sharpness",
    "decode_attention_parallel_sharpness_by_dtype",
    "attention_warm_cache_bytes", "attention_warm_cache_bandwidth_ratio",
    "attention_warm_cache_bandwidth_ratio_by_dtype",
)

#: collective names accepted by ``collectives.bandwidth_fraction_by_kind``
COLLECTIVE_KINDS: tuple[str, ...] = ("all-reduce", "all-gather", "reduce-scatter", "all-to-all", "send-recv")

