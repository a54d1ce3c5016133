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
"""

from __future__ import annotations

from ..hardware.device import Device
from ..hardware.schema import EfficiencySpec


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
