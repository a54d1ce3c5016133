"""The hardware file format (YAML, one device per file), validated by pydantic.

Units are in the field names: ``tflops`` (10^12 FLOP/s), ``gb`` (10^9 bytes),
``gib`` (2^30 bytes), ``mib`` (2^20 bytes), ``gb_per_s`` (10^9 bytes/s, one direction),
``us`` (microseconds), ``w`` (watts).
Every section has a required ``source`` naming the spec sheet, paper or
measurement its numbers come from; the loader rejects a section without one.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from ..dtypes import COMPUTE_FALLBACK, DTYPE_BYTES

Source = str


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_dtype_keys(value: dict[str, float]) -> dict[str, float]:
    for key, number in value.items():
        if key not in DTYPE_BYTES:
            raise ValueError(f"unknown dtype '{key}'; expected one of {', '.join(DTYPE_BYTES)}")
        if number <= 0:
            raise ValueError(f"peak for '{key}' must be > 0, got {number}")
    return value


class ComputeSpec(_Strict):
    """Peak math throughput of one device (one GPU / one TPU chip / one CPU socket)."""

    dense_tflops: dict[str, float] = Field(description="dense peak per dtype, TFLOP/s")
    sparse_tflops: dict[str, float] = Field(
        default_factory=dict, description="2:4 structured-sparse peak per dtype, TFLOP/s"
    )
    compute_units: int | None = Field(
        default=None, gt=0, description="SMs / CUs / TensorCores / cores that tile work (wave quantization)"
    )
    clock_ghz: float | None = Field(default=None, gt=0)
    source: Source = Field(min_length=3)

    _dense = field_validator("dense_tflops")(_check_dtype_keys)
    _sparse = field_validator("sparse_tflops")(_check_dtype_keys)

    @field_validator("dense_tflops")
    @classmethod
    def _not_empty(cls, value: dict[str, float]) -> dict[str, float]:
        if not value:
            raise ValueError("at least one dtype peak is required")
        return value


#: bytes per unit of the memory-capacity fields (exactly one is given)
CAPACITY_UNITS: dict[str, float] = {"capacity_mib": 2.0 ** 20, "capacity_gib": 2.0 ** 30, "capacity_gb": 1e9}


class MemorySpec(_Strict):
    """Device memory (HBM / GDDR / DDR) and on-chip SRAM.

    The capacity is given in the unit its source states, exactly one of: ``capacity_mib``
    (what the driver reports: ``nvidia-smi`` / ``rocm-smi`` / ``hl-smi`` print MiB),
    ``capacity_gib`` (a datasheet that writes GiB), ``capacity_gb`` (10^9 bytes). Vendors'
    "80 GB" of HBM are binary: the driver reports 81,920 MiB for an A100 80GB.
    """

    capacity_mib: float | None = Field(default=None, gt=0, description="usable memory, MiB (2^20 bytes)")
    capacity_gib: float | None = Field(default=None, gt=0, description="usable memory, GiB (2^30 bytes)")
    capacity_gb: float | None = Field(default=None, gt=0, description="usable memory, GB (10^9 bytes)")
    bandwidth_gb_per_s: float = Field(gt=0)
    sram_mb: float = Field(default=0.0, ge=0, description="on-chip SRAM (L2 + shared/L1, or VMEM)")
    source: Source = Field(min_length=3)

    @model_validator(mode="after")
    def _one_capacity(self) -> MemorySpec:
        given = [name for name in CAPACITY_UNITS if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError("give the capacity in exactly one unit: capacity_mib (driver-reported MiB), "
                             "capacity_gib (datasheet GiB) or capacity_gb (10^9 bytes)"
                             + (f"; got {', '.join(given)}" if given else ""))
        return self

    @property
    def capacity_bytes(self) -> float:
        """The capacity in bytes, from whichever unit the file gives."""
        for name, unit in CAPACITY_UNITS.items():
            value = getattr(self, name)
            if value is not None:
                return value * unit
        raise AssertionError("validated: one capacity field is set")  # pragma: no cover


class LinkSpec(_Strict):
    """An interconnect: scale-up (NVLink / ICI / Infinity Fabric) or scale-out (IB / Ethernet)."""

    name: str
    bandwidth_gb_per_s: float = Field(gt=0, description="per device, per direction")
    latency_us: float = Field(ge=0, description="one-hop software+wire latency (alpha)")
    domain_size: int = Field(default=1, ge=1, description="devices reachable over this link at full bandwidth")
    topology: Literal["switch", "ring", "torus", "mesh", "pcie", "network"] = "switch"
    source: Source = Field(min_length=3)


class PowerSpec(_Strict):
    tdp_w: float = Field(gt=0)
    idle_w: float | None = Field(default=None, ge=0)
    source: Source = Field(min_length=3)


class CostSpec(_Strict):
    usd_per_hour: float = Field(gt=0, description="rental price of one device")
    source: Source = Field(min_length=3)


class DecodeKernel(NamedTuple):
    """One decode-attention kernel's per-thread-block terms (:meth:`EfficiencySpec.decode_kernel`)."""

    cta_us: float  # fixed cost of one block (0: none)
    launch_us: float  # fixed cost a call adds to the decode overhead
    half: float | None  # parallelism half-point in blocks (None: no ramp)
    sharpness: float  # of the ramp (1: blocks / (blocks + half))
    reread_ratio: float | None  # rate of re-reads of a KV head relative to DRAM (None: DRAM)


class EfficiencySpec(_Strict):
    """Achievable fractions of peak and fixed overheads (the calibratable part).

    The roofline in :mod:`infersim.perf.roofline` uses a saturating efficiency
    ``eff(x) = max_fraction * x / (x + half)``: a kernel doing little work runs far
    below peak (launch, pipeline fill, tail effects) and a large one approaches
    ``max_fraction``. ``x`` is FLOPs for compute and bytes for memory. Defaults are
    generic; ``infersim calibrate`` fits them to measurements.

    Optional refinements (all off by default, so an uncalibrated device keeps the
    plain model; ``infersim calibrate`` sets them):

    * GEMMs: ``gemm_tiles`` lists the output tiles the GEMM library may pick; the
      kernel with the best padded-tile utilization is used (wave quantization with
      partial tiles counted as wasted work), and ``gemm_k_half`` is the per-tile
      prologue/epilogue cost in units of the reduction depth ``k`` (efficiency
      ``k / (k + gemm_k_half)``) and ``gemm_tile_intensity_half`` the operand reuse
      ``tm tn / (tm + tn)`` at which a tile reaches half the GEMM fraction (small tiles
      reuse their operands less), splitting the reduction over up to ``gemm_split_k`` blocks
      per tile when that fills the machine better (split-K), and a dtype may have its own
      candidates (``gemm_tiles_by_dtype``); GEMMs with ``m <= gemm_gemv_max_m`` run a
      matrix-vector kernel instead (BLAS GEMV, no row tiles to pad).
      ``gemm_memory_max_fraction``: tiled GEMMs re-read operand panels (CPU BLAS packs
      them, GPU tiles re-fetch them from L2), so their achievable bandwidth fraction
      may differ from a streaming kernel's (elementwise ops and matrix-vector GEMMs).
      ``gemm_overhead_us_by_dtype`` replaces the launch
      overhead of GEMMs in a dtype (e.g. fp8 linears that first quantize their input).
    * MoE grouped GEMMs (the step graph's ``moe.experts.*`` GEMMs: one kernel over all
      local experts, TensorRT-LLM / CUTLASS grouped GEMM) may reach their own fraction
      of peak and of the memory bandwidth (per dtype) and have their own call cost.
    * Fused attention: per-dtype fractions, its own ramp, memory fraction and fixed
      overhead, and ``attention_query_bandwidth_fraction``: the per-query work
      (loading Q, softmax normalization, storing O) that does not overlap the main
      loop, costed as the op's activation bytes at that fraction of the bandwidth.
      Decode attention (one query per sequence: FlashDecoding / XQA-style kernels,
      the graph's ``attention.decode`` rows) may have its own memory fraction,
      per-query fraction and fixed cost: it is a different kernel from prefill's FMHA.
      Both may depend on the kernel's compute dtype (fp8 where the KV cache is fp8):
      ``decode_attention_memory_max_fraction_by_dtype`` (a quantized cache is dequantized
      in the kernel; on the H200 TensorRT-LLM's MLA decode streams a bf16 latent cache at
      ~93% of the bandwidth and an fp8 one at ~65%, measured by aiconfigurator-core) and
      ``attention_query_bandwidth_fraction_by_dtype`` (an fp8 prefill kernel first quantizes
      its bf16 queries, keys and values, a pass over them of its own).
    * ``fp8_kv_context_math``: over an fp8 KV cache with bf16 activations, TensorRT-LLM's
      context attention on the H100 / H200 / B200 quantizes the queries and runs fp8 FMHA
      (bf16-activation rows time like fp8 ones, ~590 TFLOP/s at head size 128 on the H100),
      while on the L40S it runs bf16 FMHA (~130 TFLOP/s, the bf16 rate, against ~230 for
      fp8 activations; aiconfigurator-core 0.12.0). The step graph takes the device's choice
      (:func:`infersim.perf.graph.options_for_device`).
    * Head sizes (``attention_native_head_dims_by_dtype``, ``attention_fallback_fraction_by_dtype``):
      fused-attention kernels are compiled per head size, and a dtype may have fast kernels
      for some head sizes only; the others run a generic kernel at their own fraction. On
      the L40S TensorRT-LLM's fp8 context attention reaches ~230 TFLOP/s at head size 128
      and ~190 at 192, but ~100 at 64 and ~75 at 256, below its bf16 kernels (~130-140;
      aiconfigurator-core 0.12.0, sequences of 2k tokens and more). The head size of a
      (non-MLA) attention row is ``flops / (4 scores)``.
    * Warm cache (``warm_cache_bytes``, ``warm_cache_bandwidth_ratio``; attention kernels may
      have their own, ``attention_warm_cache_*``): a kernel microbenchmark runs the same kernel
      on the same buffers again and again, so a working set that fits in the last-level cache
      is served from it, not from DRAM. Of a kernel's bytes ``W`` the share
      ``h = 1 / (1 + (W / warm_cache_bytes)^6)`` moves at ``warm_cache_bandwidth_ratio`` times
      the DRAM rate. This is a condition of the measurement, not of serving (where the next
      layer's weights evict this one's), so only the fidelity predictions of isolated kernels
      use it (``cost_ops(..., warm_cache=True)``); fitting it keeps the DRAM fractions
      honest. On the L40S (96 MB L2, 864 GB/s GDDR6) TensorRT-LLM's decode attention reaches
      ~2.2 TB/s on a bf16 KV cache of 50-90 MB and ~650 GB/s above 100 MB (aiconfigurator-core
      0.12.0).
    * Per-thread-block attention costs (the step graph's attention rows carry their
      sequences, heads and scores; :mod:`infersim.perf.roofline` documents the formulas):
      ``attention_softmax_fraction``: one exponential per attention score at this fraction
      of the fp32 (vector) peak, added to the compute time (FlashAttention-3, Shah et al.
      2024: the exponential unit, not the tensor cores, limits small head sizes).
      ``attention_cta_us``: fixed cost of one prefill thread block, one per sequence x query
      head x ``attention_query_tile`` queries (FlashAttention's query-block tiling, Dao et
      al. 2022: a sequence's last, partial query tile costs a whole block).
      Decode (FlashDecoding-style kernels, Dao et al. 2023; TensorRT-LLM's XQA / masked MHA):
      one thread block per sequence x KV head (``decode_attention_cta_us``, per compute
      dtype in ``decode_attention_cta_us_by_dtype``), or per sequence x query head for MHA and
      for query groups larger than ``decode_attention_max_group`` (``decode_attention_head_cta_us``;
      each such block streams its KV head's cache itself); the bandwidth reached grows with the
      number of blocks, ``blocks / (blocks + decode_attention_parallel_half)``; likewise a
      prefill kernel with few blocks (one long sequence over one or two heads) keeps only
      ``blocks / (blocks + attention_parallel_half)`` of the machine busy.
      A decode kernel that does not split a sequence over blocks (TensorRT-LLM's fp8-KV XQA
      and the MLA decode on the L40S, aiconfigurator-core 0.12.0: batch 1 to 16 at 2k tokens
      take the same time, then time grows with the batch) has a sharp ramp,
      ``(1 + (half / blocks)^p)^(-1/p)`` with ``p = decode_attention_parallel_sharpness``.
      The per-query-head kernel (masked MHA) has per-dtype block costs
      (``decode_attention_head_cta_us_by_dtype``; the L40S's fp8 one ~3 us a block against ~0.7
      in bf16), an extra launch cost (``decode_attention_head_launch_us_by_dtype``), its own
      soft half-point (``decode_attention_head_parallel_half``: it splits long sequences) and
      re-reads each KV head from the cache (``decode_attention_reread_bandwidth_ratio``: the
      L40S's bf16 64-query-head decode streams 32k tokens x 8 sequences in 1.8 ms, ~7x faster
      than 64 DRAM reads of it). ``decode_attention_max_fraction``: the decode kernels' own share
      of peak (they are another kernel family than the prefill FMHA, compiled for every
      head size, so a prefill fallback fraction does not apply to them).
    * ``mla_overrides``: MLA attention (DeepSeek-V2; the graph's MLA prefill and absorbed
      decode rows) runs its own kernels, so any attention field above may take another value
      for them (``{"attention_overhead_us": 9.0, "attention_max_fraction_by_dtype.bf16": 0.5}``;
      dotted keys set one dtype of a per-dtype field).
    * ``grouped_gemm_expert_tiles``: each expert's rows of a MoE grouped GEMM form their own
      tiles (per-expert tile quantization, as in CUTLASS grouped GEMM / MegaBlocks, Gale et al. 2023);
      ``grouped_gemm_act_bandwidth_fraction``: the token permutation around a grouped GEMM
      (gathering each expert's input rows, scattering its output rows back: TensorRT-LLM's
      expand / finalize kernels) moves the GEMM's activation bytes once more, not overlapped.
    * Collectives: per-collective bandwidth fractions, the per-step latency (alpha) of
      the scale-up link, and a fixed cost per call.
      ``collective_bandwidth_fraction_by_group_size`` scales the link bandwidth by the group
      size: on PCIe servers without NVLink the GPUs of a larger group share a switch uplink, a
      host bridge and, across sockets, the inter-socket link, so the bus bandwidth each GPU
      reaches falls with the group (nccl-tests on 8x L40S in aiconfigurator-core 0.12.0: ring
      all-reduce bus bandwidth ~27 GB/s on 2 GPUs, ~7 on 4, ~1.9 on 8). Factors between
      listed sizes are interpolated in log2(size); outside them the nearest is used.
    """

    compute_max_fraction: float = Field(default=0.80, gt=0, le=1.0)
    compute_max_fraction_by_dtype: dict[str, float] = Field(
        default_factory=dict, description="per-dtype override of compute_max_fraction (e.g. fp8 GEMMs)")
    attention_max_fraction: float | None = Field(
        default=None, gt=0, le=1.0, description="fused attention kernels' achievable fraction (default: compute's)")
    attention_max_fraction_by_dtype: dict[str, float] = Field(
        default_factory=dict, description="per-dtype override of attention_max_fraction (e.g. fp8 attention)")
    decode_attention_max_fraction: float | None = Field(
        default=None, gt=0, le=1,
        description="achievable fraction of peak of (non-MLA) decode attention kernels, a kernel family of its own "
                    "(TensorRT-LLM's XQA / masked MHA; default: the attention fraction)")
    compute_half_flops: float = Field(default=2.0e9, ge=0, description="FLOPs at which compute efficiency is half its max")
    attention_half_flops: float | None = Field(
        default=None, ge=0, description="compute_half_flops of fused attention kernels (default: compute_half_flops)")
    memory_max_fraction: float = Field(default=0.85, gt=0, le=1.0)
    attention_memory_max_fraction: float | None = Field(
        default=None, gt=0, le=1.0, description="memory_max_fraction of fused attention kernels (default: memory's)")
    attention_query_bandwidth_fraction: float | None = Field(
        default=None, gt=0, le=10.0,
        description="non-overlapped per-query work of fused attention: activation (Q/O) bytes at this fraction of "
                    "the memory bandwidth, added to the roofline time (default: none)")
    attention_query_bandwidth_fraction_by_dtype: dict[str, float] = Field(
        default_factory=dict,
        description="attention_query_bandwidth_fraction per compute dtype of the kernel: an fp8 kernel first "
                    "quantizes its bf16 queries, keys and values, a pass of its own (default: the general value)")
    memory_half_bytes: float = Field(default=4.0e6, ge=0, description="bytes at which bandwidth efficiency is half its max")
    gemm_memory_max_fraction: float | None = Field(
        default=None, gt=0, le=1.0,
        description="memory_max_fraction of tiled GEMMs, which re-read operand panels (default: memory's)")
    kernel_overhead_us: float = Field(default=4.0, ge=0, description="fixed cost per kernel launch")
    gemm_overhead_us_by_dtype: dict[str, float] = Field(
        default_factory=dict, description="per-dtype fixed cost of one GEMM call (default: kernel_overhead_us)")
    grouped_gemm_max_fraction_by_dtype: dict[str, float] = Field(
        default_factory=dict,
        description="achievable fraction of MoE grouped (per-expert) GEMMs per dtype (default: the GEMM fraction)")
    grouped_gemm_overhead_us: float | None = Field(
        default=None, ge=0, description="fixed cost of one MoE grouped GEMM call (default: the GEMM call cost)")
    attention_overhead_us: float | None = Field(
        default=None, ge=0, description="fixed cost of one fused attention call (default: kernel_overhead_us)")
    decode_attention_memory_max_fraction: float | None = Field(
        default=None, gt=0, le=1.0, description="attention_memory_max_fraction of decode attention (default: same)")
    decode_attention_memory_max_fraction_by_dtype: dict[str, float] = Field(
        default_factory=dict,
        description="decode_attention_memory_max_fraction per compute dtype of the decode kernel (fp8 where the KV "
                    "cache is fp8): a quantized cache is dequantized in the kernel and streams at its own rate")
    decode_attention_query_bandwidth_fraction: float | None = Field(
        default=None, gt=0, le=10.0,
        description="attention_query_bandwidth_fraction of decode attention (default: same)")
    decode_attention_overhead_us: float | None = Field(
        default=None, ge=0, description="attention_overhead_us of decode attention (default: same)")
    attention_softmax_fraction: float | None = Field(
        default=None, gt=0, le=10.0,
        description="fused attention: exponentials (one per attention score) per second as a fraction of the "
                    "fp32 vector peak, added to compute time (default: none)")
    attention_query_tile: int | None = Field(
        default=None, ge=1, description="queries per thread block of fused prefill attention (default 128)")
    attention_cta_us: float | None = Field(
        default=None, ge=0,
        description="fixed cost of one prefill attention thread block (sequence x query head x query tile), "
                    "spread over the compute units (default: none)")
    decode_attention_cta_us: float | None = Field(
        default=None, ge=0,
        description="fixed cost of one decode attention thread block (sequence x KV head), spread over the "
                    "compute units (default: none)")
    decode_attention_cta_us_by_dtype: dict[str, float] = Field(
        default_factory=dict, description="per compute dtype override of decode_attention_cta_us")
    decode_attention_head_cta_us: float | None = Field(
        default=None, ge=0,
        description="fixed cost of one block of the per-query-head decode kernel (MHA, and query groups above "
                    "decode_attention_max_group); None, with no per-dtype entry: every decode runs the grouped kernel")
    decode_attention_head_cta_us_by_dtype: dict[str, float] = Field(
        default_factory=dict,
        description="per compute dtype override of decode_attention_head_cta_us (TensorRT-LLM's fp8-KV per-head "
                    "decode on the L40S pays ~3 us a block where bf16 pays ~1 us)")
    decode_attention_reread_bandwidth_ratio: float | None = Field(
        default=None, ge=1, le=50,
        description="rate, relative to DRAM, at which the per-query-head decode blocks of one KV head re-read its "
                    "cache: they run side by side, so the repeats come from the last-level cache (default 1: DRAM)")
    decode_attention_reread_bandwidth_ratio_by_dtype: dict[str, float] = Field(
        default_factory=dict,
        description="decode_attention_reread_bandwidth_ratio per compute dtype of the decode kernel (an fp8 cache is "
                    "dequantized again on every re-read)")
    decode_attention_head_launch_us_by_dtype: dict[str, float] = Field(
        default_factory=dict,
        description="fixed cost a per-query-head decode call adds to decode_attention_overhead_us, per compute dtype "
                    "(TensorRT-LLM's fp8-KV masked MHA on the L40S: ~14 us a call against ~9 us for the grouped "
                    "kernel)")
    decode_attention_max_group: int | None = Field(
        default=None, ge=1, description="largest query heads per KV head the grouped decode kernel takes")
    decode_attention_parallel_half: float | None = Field(
        default=None, gt=0,
        description="decode attention thread blocks at which its bandwidth is half its fraction (default: none)")
    decode_attention_parallel_half_by_dtype: dict[str, float] = Field(
        default_factory=dict,
        description="decode_attention_parallel_half per compute dtype of the decode kernel: a kernel that does not "
                    "split a long KV sequence over blocks (TensorRT-LLM's fp8-KV decode on the L40S) streams each "
                    "sequence from one block, a much later half-point (default: the general value)")
    decode_attention_head_parallel_half: float | None = Field(
        default=None, gt=0,
        description="decode_attention_parallel_half of the per-query-head decode kernel, whose ramp is always soft "
                    "(it splits long sequences over blocks: TensorRT-LLM's masked MHA multi-block mode; default: the "
                    "grouped kernel's values)")
    decode_attention_parallel_sharpness: float | None = Field(
        default=None, ge=1, le=16,
        description="sharpness p of the decode parallelism ramp r = (1 + (half / blocks)^p)^(-1/p): 1 (default) is "
                    "blocks / (blocks + half), large p is min(1, blocks / half), a kernel whose blocks each stream "
                    "one sequence at a fixed rate until the machine is full")
    decode_attention_parallel_sharpness_by_dtype: dict[str, float] = Field(
        default_factory=dict, description="decode_attention_parallel_sharpness per compute dtype of the decode kernel")
    attention_parallel_half: float | None = Field(
        default=None, gt=0,
        description="prefill attention thread blocks (sequence x query head x query tile) at which its throughput "
                    "is half its fraction: few blocks leave compute units idle (default: none)")
    fp8_kv_context_math: Literal["fp8", "activation"] = Field(
        default="fp8",
        description="compute dtype of context (prefill) attention over an fp8 KV cache with wider activations: fp8 "
                    "(queries quantized, fp8 FMHA: TensorRT-LLM on Hopper / Blackwell) or the activation dtype "
                    "(the L40S: bf16 FMHA reading the fp8 cache)")
    attention_native_head_dims_by_dtype: dict[str, list[int]] = Field(
        default_factory=dict,
        description="head sizes that have their own fused-attention kernel in this compute dtype; other head sizes "
                    "run a generic one at attention_fallback_fraction_by_dtype (default: every head size native)")
    attention_fallback_fraction_by_dtype: dict[str, float] = Field(
        default_factory=dict,
        description="achievable fraction of a fused attention kernel in this dtype at a head size without a native "
                    "kernel (attention_native_head_dims_by_dtype)")
    warm_cache_bytes: float | None = Field(
        default=None, gt=0,
        description="working set (bytes) up to which a kernel run back to back on the same buffers finds them in "
                    "the last-level cache; fidelity predictions of isolated kernels only (default: none)")
    warm_cache_bandwidth_ratio: float = Field(
        default=1.0, ge=1.0, le=50.0, description="bandwidth of warm-cache bytes relative to the DRAM rate")
    attention_warm_cache_bytes: float | None = Field(
        default=None, gt=0, description="warm_cache_bytes of fused attention kernels (default: the general one)")
    attention_warm_cache_bandwidth_ratio: float | None = Field(
        default=None, ge=1.0, le=50.0,
        description="warm_cache_bandwidth_ratio of fused attention kernels (default: the general one)")
    attention_warm_cache_bandwidth_ratio_by_dtype: dict[str, float] = Field(
        default_factory=dict,
        description="attention_warm_cache_bandwidth_ratio per compute dtype: a kernel bound by dequantizing "
                    "its fp8 KV cache gains nothing from a faster memory level (default: the general value)")
    mla_overrides: dict[str, float] = Field(
        default_factory=dict,
        description="attention fields with other values for MLA attention rows (dotted keys: one dtype of a "
                    "per-dtype field)")
    grouped_gemm_memory_fraction_by_dtype: dict[str, float] = Field(
        default_factory=dict,
        description="memory_max_fraction of MoE grouped GEMMs per (compute) dtype: weight formats that are "
                    "dequantized on the fly (block-scaled fp8 / fp4) stream at their own rate (default: the GEMM's)")
    grouped_gemm_act_bandwidth_fraction: float | None = Field(
        default=None, gt=0, le=10.0,
        description="MoE grouped GEMMs: their activation rows are gathered before and scattered after the GEMM "
                    "(token permutation), costed as their activation bytes at this fraction of the memory "
                    "bandwidth, added to the time (default: none)")
    grouped_gemm_expert_tiles: bool = Field(
        default=False, description="MoE grouped GEMMs tile each expert's rows apart (per-expert tile padding)")
    gemm_tile_m: int = Field(default=128, ge=1)
    gemm_tile_n: int = Field(default=128, ge=1)
    gemm_tiles: list[tuple[int, int]] = Field(
        default_factory=list,
        description="candidate (tile_m, tile_n) output tiles; non-empty enables the padded-tile GEMM model")
    gemm_k_half: float = Field(default=0.0, ge=0, description="per-tile fixed cost in units of the reduction depth k")
    gemm_tile_intensity_half: float = Field(
        default=0.0, ge=0,
        description="operand reuse tm*tn/(tm+tn) at which a candidate tile reaches half the GEMM fraction: small "
                    "tiles reuse less (padded-tile model; default 0: every tile alike)")
    gemm_tiles_by_dtype: dict[str, list[tuple[int, int]]] = Field(
        default_factory=dict,
        description="per compute dtype candidate tiles replacing gemm_tiles (e.g. block-scaled fp4 kernels "
                    "that only come in large tiles)")
    gemm_split_k: int = Field(
        default=1, ge=1, description="largest split-K factor (power of two) the padded-tile GEMM model may use")
    gemm_gemv_max_m: int = Field(
        default=0, ge=0, description="GEMMs with m <= this run a matrix-vector kernel: no tile padding (padded model)")
    collective_bandwidth_fraction: float = Field(default=0.80, gt=0, le=1.0)
    collective_bandwidth_fraction_by_kind: dict[str, float] = Field(
        default_factory=dict,
        description="per-collective override of collective_bandwidth_fraction (all-reduce, all-gather, "
                    "reduce-scatter, all-to-all, send-recv); all-reduce may exceed 1 with in-switch reduction")
    collective_bandwidth_fraction_by_group_size: dict[int, float] = Field(
        default_factory=dict,
        description="factor on the collective bandwidth per group size (GPUs taking part in the "
                    "collective; shared PCIe switches and host bridges); default 1")
    collective_latency_us: float | None = Field(
        default=None, ge=0,
        description="per-step latency (alpha) on the scale-up link (default: the link's latency_us)")
    collective_overhead_us: float | None = Field(
        default=None, ge=0, description="fixed cost of one collective call (default: kernel_overhead_us)")
    source: Source = Field(default="infersim generic defaults (uncalibrated)", min_length=3)

    @field_validator("compute_max_fraction_by_dtype", "attention_max_fraction_by_dtype",
                     "grouped_gemm_max_fraction_by_dtype", "grouped_gemm_memory_fraction_by_dtype",
                     "decode_attention_memory_max_fraction_by_dtype")
    @classmethod
    def _fractions(cls, value: dict[str, float]) -> dict[str, float]:
        return _dtype_fractions(value, upper=1.0)

    @field_validator("attention_query_bandwidth_fraction_by_dtype")
    @classmethod
    def _query_fractions(cls, value: dict[str, float]) -> dict[str, float]:
        return _dtype_fractions(value, upper=10.0)

    @field_validator("attention_fallback_fraction_by_dtype")
    @classmethod
    def _fallback_fractions(cls, value: dict[str, float]) -> dict[str, float]:
        return _dtype_fractions(value, upper=1.0)

    @field_validator("attention_native_head_dims_by_dtype")
    @classmethod
    def _native_head_dims(cls, value: dict[str, list[int]]) -> dict[str, list[int]]:
        for key, dims in value.items():
            if key not in DTYPE_BYTES:
                raise ValueError(f"unknown dtype '{key}'; expected one of {', '.join(DTYPE_BYTES)}")
            if not dims or any(d <= 0 for d in dims):
                raise ValueError(f"head sizes for '{key}' must be a non-empty list of positive integers, got {dims}")
        return value

    @field_validator("attention_warm_cache_bandwidth_ratio_by_dtype", "decode_attention_reread_bandwidth_ratio_by_dtype",
                     "decode_attention_parallel_sharpness_by_dtype")
    @classmethod
    def _dtype_ranges(cls, value: dict[str, float], info: ValidationInfo) -> dict[str, float]:
        what, lower, upper = _DTYPE_RANGES[info.field_name]
        for key, number in value.items():
            if key not in DTYPE_BYTES:
                raise ValueError(f"unknown dtype '{key}'; expected one of {', '.join(DTYPE_BYTES)}")
            if not lower <= number <= upper:
                raise ValueError(f"{what} for '{key}' must be in [{lower:g}, {upper:g}], got {number}")
        return value

    @field_validator("gemm_overhead_us_by_dtype", "decode_attention_cta_us_by_dtype",
                     "decode_attention_head_cta_us_by_dtype", "decode_attention_head_launch_us_by_dtype",
                     "decode_attention_parallel_half_by_dtype")
    @classmethod
    def _overheads(cls, value: dict[str, float]) -> dict[str, float]:
        for key, number in value.items():
            if key not in DTYPE_BYTES:
                raise ValueError(f"unknown dtype '{key}'; expected one of {', '.join(DTYPE_BYTES)}")
            if number < 0:
                raise ValueError(f"overhead for '{key}' must be >= 0 us, got {number}")
        return value

    @field_validator("gemm_tiles")
    @classmethod
    def _tiles(cls, value: list[tuple[int, int]]) -> list[tuple[int, int]]:
        for tile in value:
            if tile[0] < 1 or tile[1] < 1:
                raise ValueError(f"tile sizes must be >= 1, got {list(tile)}")
        return value

    @field_validator("gemm_tiles_by_dtype")
    @classmethod
    def _tiles_by_dtype(cls, value: dict[str, list[tuple[int, int]]]) -> dict[str, list[tuple[int, int]]]:
        for key, tiles in value.items():
            if key not in DTYPE_BYTES:
                raise ValueError(f"unknown dtype '{key}'; expected one of {', '.join(DTYPE_BYTES)}")
            if not tiles or any(t[0] < 1 or t[1] < 1 for t in tiles):
                raise ValueError(f"tiles for '{key}' must be a non-empty list of sizes >= 1, got {tiles}")
        return value

    def tiles_for(self, dtype: str) -> list[tuple[int, int]]:
        """Candidate GEMM tiles in ``dtype`` (its own list, else the fallback dtype's, else gemm_tiles)."""
        current: str | None = dtype
        while current is not None:
            if current in self.gemm_tiles_by_dtype:
                return self.gemm_tiles_by_dtype[current]
            current = COMPUTE_FALLBACK.get(current)
        return self.gemm_tiles

    @field_validator("mla_overrides")
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

    def for_mla(self) -> EfficiencySpec:
        """This section as MLA attention rows see it (``mla_overrides`` applied).

        An override of a plain field (``decode_attention_cta_us``) also hides the attention
        rows' per-dtype entries of that field (``decode_attention_cta_us_by_dtype``), which
        would otherwise take precedence over it: MLA gets its own value in every dtype, unless
        it overrides per-dtype entries too."""
        if not self.mla_overrides:
            return self
        update: dict[str, object] = {}
        per_dtype_set = {key.partition(".")[0] for key in self.mla_overrides if "." in key}
        for key, number in self.mla_overrides.items():
            name, _, dtype = key.partition(".")
            if dtype:
                table = dict(update.get(name, getattr(self, name)))
                table[dtype] = number
                update[name] = table
            else:
                update[name] = number
                by_dtype = f"{name}_by_dtype"
                if by_dtype in type(self).model_fields and by_dtype not in per_dtype_set:
                    update[by_dtype] = {}
        return self.model_copy(update=update)

    @field_validator("collective_bandwidth_fraction_by_kind")
    @classmethod
    def _kinds(cls, value: dict[str, float]) -> dict[str, float]:
        for key, number in value.items():
            if key not in COLLECTIVE_KINDS:
                raise ValueError(f"unknown collective '{key}'; expected one of {', '.join(COLLECTIVE_KINDS)}")
            if not 0 < number <= 2.0:
                raise ValueError(f"fraction for '{key}' must be in (0, 2], got {number}")
        return value

    @field_validator("collective_bandwidth_fraction_by_group_size")
    @classmethod
    def _group_sizes(cls, value: dict[int, float]) -> dict[int, float]:
        for key, number in value.items():
            if key < 2:
                raise ValueError(f"group size must be at least 2, got {key}")
            if not 0 < number <= 2.0:
                raise ValueError(f"factor for group size {key} must be in (0, 2], got {number}")
        return value

    def collective_group_factor(self, group_size: int) -> float:
        """Factor on the collective bandwidth for ``group_size`` devices: the listed factors
        interpolated linearly in log2(group size), the nearest listed one outside them, 1 when
        none is listed."""
        table = self.collective_bandwidth_fraction_by_group_size
        if not table:
            return 1.0
        sizes = sorted(table)
        x = np.log2(np.asarray(sizes, dtype=np.float64))
        y = np.asarray([table[k] for k in sizes], dtype=np.float64)
        return float(np.interp(np.log2(max(group_size, 1)), x, y))

    def attention_fraction(self, dtype: str, head_dim=None):
        """Achievable fraction of a fused attention kernel in ``dtype`` at ``head_dim`` (a number
        or an array; 0 = unknown): the fallback fraction where the dtype lists its native head
        sizes and ``head_dim`` is not one of them, else :meth:`compute_fraction`."""
        base = self.compute_fraction(dtype, attention=True)
        native = self.attention_native_head_dims_by_dtype.get(dtype)
        fallback = self.attention_fallback_fraction_by_dtype.get(dtype)
        if native is None or fallback is None or head_dim is None:
            return base
        size = np.asarray(head_dim, dtype=np.float64)
        out = np.where((size <= 0) | np.isin(np.rint(size), native), base, fallback)
        return float(out) if out.ndim == 0 else out

    def attention_row_fraction(self, dtype: str, head_dim=None, *, decode: bool = False, mla: bool = False):
        """Achievable fraction of a fused attention row: MLA rows the attention fraction (their
        ``mla_overrides`` applied by the caller), GQA decode rows their kernels' own
        (``decode_attention_max_fraction``) where set, prefill rows :meth:`attention_fraction`
        at ``head_dim``."""
        if mla:
            return self.compute_fraction(dtype, attention=True)
        if decode:
            if self.decode_attention_max_fraction is not None:
                return self.decode_attention_max_fraction
            return self.compute_fraction(dtype, attention=True)
        return self.attention_fraction(dtype, head_dim)

    def compute_fraction(self, dtype: str, attention: bool = False) -> float:
        """Achievable fraction of peak for matrix work in ``dtype`` (attention kernels apart).

        A dtype without its own entry uses the entry of the dtype it falls back to
        (``fp4`` -> ``fp8`` -> ``bf16`` ..., as :meth:`Device.peak_flops` does), else the
        general fraction.
        """
        if attention and (self.attention_max_fraction is not None or self.attention_max_fraction_by_dtype):
            found = _by_dtype(self.attention_max_fraction_by_dtype, dtype)
            if found is not None:
                return found
            if self.attention_max_fraction is not None:
                return self.attention_max_fraction
        found = _by_dtype(self.compute_max_fraction_by_dtype, dtype)
        return self.compute_max_fraction if found is None else found

    def attention_terms(self, decode: bool, dtype: str | None = None) -> tuple[float | None, float | None, float | None]:
        """(memory fraction, per-query bandwidth fraction, fixed cost us) of a fused attention
        kernel, prefill or decode, computing in ``dtype``; None = not set (the general memory
        fraction / no per-query term / kernel_overhead_us)."""
        mem, query, over = (self.attention_memory_max_fraction, self.attention_query_bandwidth_fraction,
                            self.attention_overhead_us)
        query_by_dtype = _by_dtype(self.attention_query_bandwidth_fraction_by_dtype, dtype)
        if query_by_dtype is not None:
            query = query_by_dtype
        if decode:
            by_dtype = _by_dtype(self.decode_attention_memory_max_fraction_by_dtype, dtype)
            if by_dtype is not None:
                mem = by_dtype
            elif self.decode_attention_memory_max_fraction is not None:
                mem = self.decode_attention_memory_max_fraction
            if self.decode_attention_query_bandwidth_fraction is not None:
                query = self.decode_attention_query_bandwidth_fraction
            if self.decode_attention_overhead_us is not None:
                over = self.decode_attention_overhead_us
        return mem, query, over

    def warm_cache_terms(self, attention: bool, dtype: str | None = None) -> tuple[float | None, float]:
        """(warm-cache capacity in bytes or None, its bandwidth ratio) of a kernel computing in
        ``dtype``; ``attention``: a fused attention kernel, whose own values win where set."""
        size, ratio = self.warm_cache_bytes, self.warm_cache_bandwidth_ratio
        if attention:
            if self.attention_warm_cache_bytes is not None:
                size = self.attention_warm_cache_bytes
            if self.attention_warm_cache_bandwidth_ratio is not None:
                ratio = self.attention_warm_cache_bandwidth_ratio
            by_dtype = _by_dtype(self.attention_warm_cache_bandwidth_ratio_by_dtype, dtype)
            if by_dtype is not None:
                ratio = by_dtype
        return size, ratio

    def gemm_fraction(self, dtype: str, grouped: bool = False) -> float:
        """Achievable fraction of a GEMM in ``dtype``; ``grouped``: a MoE grouped GEMM."""
        if grouped:
            found = _by_dtype(self.grouped_gemm_max_fraction_by_dtype, dtype)
            if found is not None:
                return found
        return self.compute_fraction(dtype)

    def decode_kernel(self, dtype: str, per_head: bool = False) -> DecodeKernel:
        """The terms of the decode-attention kernel computing in ``dtype``: the grouped kernel
        (one block per sequence x KV head) or, ``per_head``, the per-query-head one (its own
        block and launch costs, its own soft half-point where set, cache re-reads). Per-dtype
        entries win over the general values (falling back like :meth:`compute_fraction`)."""
        half = _by_dtype(self.decode_attention_parallel_half_by_dtype, dtype)
        half = self.decode_attention_parallel_half if half is None else half
        sharpness = _by_dtype(self.decode_attention_parallel_sharpness_by_dtype, dtype)
        sharpness = self.decode_attention_parallel_sharpness if sharpness is None else sharpness
        if not per_head:
            cta = _by_dtype(self.decode_attention_cta_us_by_dtype, dtype)
            cta = self.decode_attention_cta_us if cta is None else cta
            return DecodeKernel(cta or 0.0, 0.0, half, 1.0 if sharpness is None else sharpness, None)
        cta = _by_dtype(self.decode_attention_head_cta_us_by_dtype, dtype)
        cta = self.decode_attention_head_cta_us if cta is None else cta
        reread = _by_dtype(self.decode_attention_reread_bandwidth_ratio_by_dtype, dtype)
        reread = self.decode_attention_reread_bandwidth_ratio if reread is None else reread
        if self.decode_attention_head_parallel_half is not None:
            half, sharpness = self.decode_attention_head_parallel_half, 1.0
        return DecodeKernel(cta or 0.0, _by_dtype(self.decode_attention_head_launch_us_by_dtype, dtype) or 0.0,
                            half, 1.0 if sharpness is None else sharpness, reread)

    @property
    def per_head_decode(self) -> bool:
        """Whether the device has a per-query-head decode kernel (MHA, large query groups)."""
        return self.decode_attention_head_cta_us is not None or bool(self.decode_attention_head_cta_us_by_dtype)

    @property
    def block_terms(self) -> bool:
        """Whether any per-thread-block attention term is set."""
        return (self.attention_softmax_fraction is not None or self.attention_cta_us is not None
                or self.decode_attention_cta_us is not None or bool(self.decode_attention_cta_us_by_dtype)
                or self.per_head_decode or self.decode_attention_parallel_half is not None
                or bool(self.decode_attention_parallel_half_by_dtype)
                or self.attention_parallel_half is not None)

    def grouped_memory_fraction(self, dtype: str) -> float | None:
        """Memory fraction of a MoE grouped GEMM in ``dtype`` (None: not set)."""
        return _by_dtype(self.grouped_gemm_memory_fraction_by_dtype, dtype)

    def gemm_overhead_us(self, dtype: str) -> float:
        """Fixed cost of one GEMM call in ``dtype`` (falls back like :meth:`compute_fraction`)."""
        found = _by_dtype(self.gemm_overhead_us_by_dtype, dtype)
        return self.kernel_overhead_us if found is None else found


#: EfficiencySpec fields ``mla_overrides`` may set (per-dtype ones with a ``.DTYPE`` suffix)
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

#: collective names accepted by ``collective_bandwidth_fraction_by_kind``
COLLECTIVE_KINDS: tuple[str, ...] = ("all-reduce", "all-gather", "reduce-scatter", "all-to-all", "send-recv")


#: per-dtype fields with a closed range: (what the number is, lower, upper)
_DTYPE_RANGES: dict[str, tuple[str, float, float]] = {
    "attention_warm_cache_bandwidth_ratio_by_dtype": ("warm-cache bandwidth ratio", 1.0, 50.0),
    "decode_attention_reread_bandwidth_ratio_by_dtype": ("re-read bandwidth ratio", 1.0, 50.0),
    "decode_attention_parallel_sharpness_by_dtype": ("decode parallelism sharpness", 1.0, 16.0),
}


def _dtype_fractions(value: dict[str, float], upper: float) -> dict[str, float]:
    """``value`` if every key is a known dtype and every fraction lies in (0, upper]."""
    for key, number in value.items():
        if key not in DTYPE_BYTES:
            raise ValueError(f"unknown dtype '{key}'; expected one of {', '.join(DTYPE_BYTES)}")
        if not 0 < number <= upper:
            raise ValueError(f"fraction for '{key}' must be in (0, {upper:g}], got {number}")
    return value


def _by_dtype(table: dict[str, float], dtype: str | None) -> float | None:
    """``table[dtype]``, else the entry of the first wider dtype ``dtype`` falls back to, else None."""
    current: str | None = dtype
    while current is not None:
        if current in table:
            return table[current]
        current = COMPUTE_FALLBACK.get(current)
    return None


class HardwareSpec(_Strict):
    """One device, as written in a hardware YAML file."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$", description="catalog key, lower-case")
    display_name: str
    vendor: str
    category: Literal["gpu", "tpu", "cpu", "npu", "accelerator"]
    compute: ComputeSpec
    memory: MemorySpec
    scale_up: LinkSpec
    scale_out: LinkSpec
    power: PowerSpec
    cost: CostSpec | None = None
    efficiency: EfficiencySpec = Field(default_factory=EfficiencySpec)
    notes: str | None = None
