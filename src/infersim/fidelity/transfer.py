"""Carry a calibrated efficiency section to another device (the held-out-device evaluation).

The other device is described by its spec sheet only (peaks, bandwidths, compute
units, link latencies); from the calibrated device it takes the *shape* of the
efficiency model:

* fractions of peak (compute per dtype, attention, memory, collective bandwidth) and
  the GEMM tile candidates and k-depth cost are copied: they describe how kernels use
  a machine, not how big it is;
* fixed costs in microseconds (kernel launch, GEMM / attention / collective call
  overheads, per-thread-block attention costs) are copied: they are software and latency
  costs (the block costs are spread over the target's own compute units);
* ramp half-points are turned into times on the source and back into work on the
  target (``compute_half_flops`` scales with the bf16 peak, ``attention_half_flops``
  likewise, ``memory_half_bytes`` with the memory bandwidth): a kernel's start-up
  latency, not its work, is what carries over; the parallelism half-points, counted in
  thread blocks, scale with the compute units (blocks it takes to fill the machine)
  (``scale_halves=False`` copies them all);
* the calibrated per-step collective latency is scaled by the ratio of the two
  devices' spec-sheet scale-up latencies (an NVLink alpha is not a PCIe alpha);
* warm-cache capacities scale with the two devices' on-chip memory (spec sheet), their
  bandwidth ratios are copied;
* the per-group-size collective bandwidth factors describe one fabric's sharing (PCIe
  switches and host bridges, an NVSwitch): they are kept only for a target with the same
  scale-up topology.

Copying fractions of peak assumes the target sustains the same share of its peak as the
source. Where a published measurement of the target says otherwise (:data:`MEASURED_GEMM`:
the vendor's max-achievable dense GEMM throughput), :func:`scale_to_measured_gemm` rescales
the transferred GEMM compute fraction of each measured dtype so that the transferred model
predicts the measured throughput on the measured shape; the profile's provenance names the
source (``scaled_by``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..dtypes import bytes_per_element
from ..hardware.device import Device
from ..hardware.schema import EfficiencySpec
from ..perf.operators import OpBuilder
from ..perf.roofline import cost_ops
from .fitting import with_efficiency


#: parallelism half-points counted in thread blocks
BLOCK_HALVES = ("attention_parallel_half", "decode_attention_parallel_half", "decode_attention_head_parallel_half")


def _ratio(target: float, source: float) -> float:
    return target / source if source > 0 and target > 0 else 1.0


def transfer_efficiency(eff: EfficiencySpec, source: Device, target: Device, *,
                        scale_halves: bool = True) -> EfficiencySpec:
    """``eff`` (calibrated on ``source``) re-expressed for ``target``; see the module docstring."""
    update: dict[str, object] = {}
    mla_update: dict[str, float] = {}
    if scale_halves:
        flops_ratio = _ratio(target.peak_flops("bf16"), source.peak_flops("bf16"))
        bw_ratio = _ratio(target.memory_bandwidth_bytes_per_s, source.memory_bandwidth_bytes_per_s)
        update["compute_half_flops"] = eff.core.compute_half_flops * flops_ratio
        if eff.attention.half_flops is not None:
            update["attention_half_flops"] = eff.attention.half_flops * flops_ratio
        update["memory_half_bytes"] = eff.core.memory_half_bytes * bw_ratio
        unit_ratio = _ratio(target.compute_units, source.compute_units)
        for name in BLOCK_HALVES:
            if getattr(eff, name) is not None:
                update[name] = getattr(eff, name) * unit_ratio
        if eff.decode.parallel_half_by_dtype:
            update["decode_attention_parallel_half_by_dtype"] = {
                d: v * unit_ratio for d, v in eff.decode.parallel_half_by_dtype.items()}
        mla_update.update({k: v * unit_ratio for k, v in eff.mla.overrides.items()
                           if k in BLOCK_HALVES or k.startswith("decode_attention_parallel_half_by_dtype.")})
    if eff.collectives.latency_us is not None:
        update["collective_latency_us"] = eff.collectives.latency_us * _ratio(
            target.scale_up.latency_s, source.scale_up.latency_s)
    if eff.collectives.latency_us_by_kind:
        link_ratio = _ratio(target.scale_up.latency_s, source.scale_up.latency_s)
        update["collective_latency_us_by_kind"] = {k: v * link_ratio
                                                   for k, v in eff.collectives.latency_us_by_kind.items()}
    cache_ratio = _ratio(target.sram_bytes, source.sram_bytes)
    for name in ("warm_cache_bytes", "attention_warm_cache_bytes"):
        if getattr(eff, name) is not None:
            update[name] = getattr(eff, name) * cache_ratio
    if "attention_warm_cache_bytes" in eff.mla.overrides:
        mla_update["attention_warm_cache_bytes"] = eff.mla.overrides["attention_warm_cache_bytes"] * cache_ratio
    if mla_update:
        update["mla_overrides"] = {**eff.mla.overrides, **mla_update}
    if eff.collectives.bandwidth_fraction_by_group_size and target.scale_up.topology != source.scale_up.topology:
        update["collective_bandwidth_fraction_by_group_size"] = {}
    update["source"] = (f"transferred from {source.name} (spec-sheet numbers of {target.name} + the efficiency "
                        f"shape calibrated on {source.name}): {eff.source}")
    return eff.model_copy(update=update)


@dataclass(frozen=True)
class MeasuredGemm:
    """A measured dense GEMM: ``flops_per_s`` reached on ``[m, k] x [k, n]`` in ``dtype``."""

    dtype: str
    flops_per_s: float
    m: int
    n: int
    k: int


#: AMD's published Max-Achievable FLOPs (ROCm blog "Measuring Max-Achievable FLOPs - Part 2",
#: Sander et al., 2025-02-28, Table 1; hipblaslt-bench with trig_float data, 512 MB rotating
#: buffers (cold cache), the commands of its Appendix B)
AMD_MAF_SOURCE = "AMD max-achievable GEMM FLOP/s (ROCm blog 'Measuring Max-Achievable FLOPs - Part 2', 2025-02-28)"
#: target device -> (source, measured GEMMs): what a transferred profile is scaled to
MEASURED_GEMM: dict[str, tuple[str, tuple[MeasuredGemm, ...]]] = {
    # MI300X: 708 TFLOP/s bf16 (4096 x 4864 x 32896), 1273 TFLOP/s fp8 (4096 x 3648 x 32896)
    "mi300x": (AMD_MAF_SOURCE, (MeasuredGemm("bf16", 708e12, 4096, 4864, 32896),
                                MeasuredGemm("fp8", 1273e12, 4096, 3648, 32896))),
    # MI325X: 843 TFLOP/s bf16, 1519 TFLOP/s fp8 (same commands)
    "mi325x": (AMD_MAF_SOURCE, (MeasuredGemm("bf16", 843e12, 4096, 4864, 32896),
                                MeasuredGemm("fp8", 1519e12, 4096, 3648, 32896))),
}


def gemm_flops_per_s(device: Device, gemm: MeasuredGemm) -> float:
    """FLOP/s the cost model predicts for ``gemm`` run alone on ``device`` (cold cache)."""
    b = OpBuilder(1)
    m, n, k = (np.array([float(x)]) for x in (gemm.m, gemm.n, gemm.k))
    size = bytes_per_element(gemm.dtype)
    b.gemm("gemm", m, n, k, weight_dtype_bytes=size, act_dtype_bytes=size, dtype=gemm.dtype)
    time_s = float(cost_ops(b.build(), device).step_time_s[0])
    return 2.0 * gemm.m * gemm.n * gemm.k / time_s


def scale_to_measured_gemm(eff: EfficiencySpec, target: Device) -> tuple[EfficiencySpec, str | None]:
    """``eff`` (transferred to ``target``) with the GEMM compute fraction of every dtype that
    :data:`MEASURED_GEMM` measures on ``target`` rescaled so that the model predicts the measured
    FLOP/s on the measured shape; returns the new section and the basis (None: nothing measured,
    ``eff`` unchanged). A fixed-point iteration: time is close to inversely proportional to the
    fraction on these compute-bound shapes, so a few rounds settle it to well under 0.1 %.

    The other matrix-core kernels of that dtype, MoE grouped GEMMs and prefill attention, get
    their transferred fractions multiplied by the same ratio (new / transferred GEMM fraction):
    AMD's measurement puts most of the gap in the clock under dense matrix load (median 1,207 MHz
    in bf16 on MI300X, against the 2,100 MHz at which 304 CUs x 2,048 bf16 FLOP/clock give the
    1,307 TFLOP/s peak) and the rest in a software efficiency of up to 94 %, and the clock drop
    applies to any kernel that keeps the matrix cores busy. (Chosen on the dev half of the
    validation table: MI300X dev MdAPE 6.9 % with the GEMM fraction alone, 6.0 % with all three.)"""
    entry = MEASURED_GEMM.get(target.name)
    if entry is None:
        return eff, None
    source, gemms = entry
    fractions = dict(eff.core.compute_max_fraction_by_dtype)
    parts = []
    for g in gemms:
        frac = eff.compute_fraction(g.dtype)
        for _ in range(6):
            trial = eff.model_copy(update={"compute_max_fraction_by_dtype": {**fractions, g.dtype: frac}})
            frac = min(1.0, frac * g.flops_per_s / gemm_flops_per_s(with_efficiency(target, trial), g))
        fractions[g.dtype] = frac
        parts.append(f"{g.dtype} {g.flops_per_s / 1e12:,.0f}")
    basis = f"{source}: {', '.join(parts)} TFLOP/s"
    ratio = {g.dtype: fractions[g.dtype] / eff.compute_fraction(g.dtype) for g in gemms}
    extra = {name: {d: min(1.0, v * ratio.get(d, 1.0)) for d, v in current.items()}
             for name, current in (("grouped_gemm_max_fraction_by_dtype", eff.moe.max_fraction_by_dtype),
                                   ("attention_max_fraction_by_dtype", eff.attention.max_fraction_by_dtype))}
    scaled = eff.model_copy(update={**extra, "compute_max_fraction_by_dtype": fractions,
                                    "source": f"{eff.source}; GEMM fractions scaled by {basis}"})
    return scaled, basis
