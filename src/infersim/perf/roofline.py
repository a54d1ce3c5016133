"""Roofline time of every operator in an :class:`OpTable` on one device (vectorized).

For each operator occurrence::

    compute_s  = flops / (peak_flops[dtype] * eff_compute)
    memory_s   = bytes / (memory_bandwidth * eff_memory)
    time_s     = max(compute_s, memory_s) + kernels * kernel_overhead      (compute ops)
    time_s     = alpha-beta collective time + kernel_overhead             (collectives)

(fused attention adds its non-overlapped per-query time when the device sets
``attention_query_bandwidth_fraction``; see :class:`~infersim.hardware.schema.EfficiencySpec`
for the per-kind fractions and overheads.)

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
                   gemm_k=None, half_flops=None, gemm_rows=None):
    """Compute-side time of kernels doing ``flops`` (GEMM shape enables wave quantization).

    ``ramp`` applies the size-dependent ramp-up of matrix units (tensor cores / MXUs);
    vector work (elementwise) runs at ``compute_max_fraction`` of the vector peak.
    ``max_fraction`` (scalar or array) overrides the device's ``compute_max_fraction``,
    ``half_flops`` (scalar or array) its ``compute_half_flops``. With GEMM shapes,
    the device's tile model applies (:func:`gemm_utilization`), only to ``gemm_rows``
    (a boolean mask) when given.
    """
    eff = device.efficiency
    fraction = eff.compute_max_fraction if max_fraction is None else max_fraction
    half = (eff.compute_half_flops if half_flops is None else half_flops) if ramp else 0.0
    flops = np.asarray(flops, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        if np.ndim(half) == 0:
            e = fraction * flops / (flops + half) if half > 0 else fraction * np.ones_like(flops)
        else:
            half = np.asarray(half, dtype=np.float64)
            e = np.where(half > 0, fraction * flops / (flops + half), fraction * np.ones_like(flops))
    if gemm_m is not None:
        util = gemm_utilization(gemm_m, gemm_n, gemm_k, device)
        if gemm_rows is not None and device.efficiency.gemm_tiles and not np.all(gemm_rows):
            # (the single-tile wave model gives non-GEMMs, passed as 1e9 x 1e9, ~1 already)
            util = np.where(gemm_rows, util, 1.0)
        e = e * util
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(flops > 0, flops / (peak_flops * np.maximum(e, 1e-12)), 0.0)


def gemm_utilization(m, n, k, device: Device):
    """Compute-unit utilization of GEMMs: the padded-tile model over the device's candidate
    tiles when it lists some (``gemm_tiles``), else wave quantization of one tile size."""
    eff = device.efficiency
    if eff.gemm_tiles:
        return tiled_gemm_utilization(m, n, 1.0 if k is None else k, eff.gemm_tiles, device.compute_units,
                                      eff.gemm_k_half, eff.gemm_gemv_max_m)
    return wave_utilization(m, n, eff.gemm_tile_m, eff.gemm_tile_n, device.compute_units)


def memory_time_s(n_bytes, device: Device, max_fraction=None):
    eff = device.efficiency
    fraction = eff.memory_max_fraction if max_fraction is None else max_fraction
    n_bytes = np.asarray(n_bytes, dtype=np.float64)
    half = eff.memory_half_bytes
    e = fraction * n_bytes / (n_bytes + half) if half > 0 else fraction * np.ones_like(n_bytes)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(n_bytes > 0, n_bytes / (device.memory_bandwidth_bytes_per_s * np.maximum(e, 1e-12)), 0.0)


def collective_device(device: Device, kind: int) -> Device:
    """``device`` as the collective model should see it for ``kind``: the calibrated per-step
    latency on the scale-up link and the per-collective bandwidth fraction, when set."""
    eff = device.efficiency
    name = COLLECTIVE_NAMES[Collective(kind)]
    fraction = eff.collective_bandwidth_fraction_by_kind.get(name)
    if eff.collective_latency_us is None and fraction is None:
        return device
    up = device.scale_up
    if eff.collective_latency_us is not None:
        up = dataclasses.replace(up, latency_s=eff.collective_latency_us * 1e-6)
    if fraction is not None:
        eff = eff.model_copy(update={"collective_bandwidth_fraction": fraction})
    return dataclasses.replace(device, scale_up=up, efficiency=eff)


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
    for name, kind, dtype in zip(table.names, table.kind, table.dtype):
        cost = None
        if kind == OpKind.GEMM:
            cost = eff.gemm_overhead_us(dtype)
            if eff.grouped_gemm_overhead_us is not None and is_grouped_gemm(name):
                cost = eff.grouped_gemm_overhead_us
        elif kind == OpKind.ATTENTION:
            cost = eff.attention_terms(is_decode_attention(name))[2]
        elif kind == OpKind.COLLECTIVE:
            cost = eff.collective_overhead_us
        per_launch.append(eff.kernel_overhead_us if cost is None else cost)
    return table.kernels * np.asarray(per_launch, dtype=np.float64) * 1e-6


def _attention_columns(table: OpTable, device: Device) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Per-row (memory fraction, per-query bandwidth in bytes/s; 0 = none), shape (n_ops, 1),
    or None where no attention-specific value is set."""
    eff = device.efficiency
    mem = np.full(len(table.names), eff.memory_max_fraction)
    query_bw = np.zeros(len(table.names))
    any_mem = any_query = False
    for i, (name, kind) in enumerate(zip(table.names, table.kind)):
        if kind != OpKind.ATTENTION:
            continue
        m, q, _ = eff.attention_terms(is_decode_attention(name))
        if m is not None:
            mem[i], any_mem = m, True
        if q is not None:
            query_bw[i], any_query = device.memory_bandwidth_bytes_per_s * q, True
    return (mem[:, None] if any_mem else None), (query_bw[:, None] if any_query else None)


def cost_ops(table: OpTable, device: Device, sparse: bool = False) -> OpCosts:
    """Roofline time of every operator occurrence in ``table`` on ``device``."""
    # elementwise math runs on the vector units (fp32 CUDA-core / VPU peak), not tensor cores
    vector_peak = device.peak_flops("fp32")
    peaks = np.array([vector_peak if k == OpKind.ELEMENTWISE else device.peak_flops(d, sparse=sparse)
                      for k, d in zip(table.kind, table.dtype)])[:, None]
    is_gemm = (table.kind == OpKind.GEMM)[:, None]
    is_attn = (table.kind == OpKind.ATTENTION)[:, None]
    is_matrix = (table.kind != OpKind.ELEMENTWISE)[:, None]
    eff = device.efficiency
    fractions = np.array([eff.gemm_fraction(d, grouped=is_grouped_gemm(name)) if k == OpKind.GEMM
                          else eff.compute_fraction(d, attention=k == OpKind.ATTENTION)
                          for name, k, d in zip(table.names, table.kind, table.dtype)])[:, None]
    half = eff.compute_half_flops
    if eff.attention_half_flops is not None:
        half = np.where(is_attn, eff.attention_half_flops, eff.compute_half_flops)
    compute = compute_time_s(
        table.flops, peaks, device,
        gemm_m=np.where(is_gemm, table.gemm_m, 1e9),  # non-GEMMs: no wave penalty
        gemm_n=np.where(is_gemm, table.gemm_n, 1e9),
        gemm_k=np.where(is_gemm, table.gemm_k, 1e9),
        max_fraction=fractions, half_flops=half, gemm_rows=is_gemm,
    )
    if not is_matrix.all():
        vector = compute_time_s(table.flops, peaks, device, ramp=False)
        compute = np.where(is_matrix, compute, vector)
    mem_fraction, query_bw = _attention_columns(table, device)
    if eff.gemm_memory_max_fraction is not None and is_gemm.any():
        # tiled GEMMs (not matrix-vector ones) stream at their own fraction
        base = eff.memory_max_fraction if mem_fraction is None else mem_fraction
        tiled = is_gemm & (table.gemm_m > eff.gemm_gemv_max_m)
        mem_fraction = np.where(tiled, eff.gemm_memory_max_fraction, base)
    memory = memory_time_s(table.total_bytes, device, mem_fraction)
    if query_bw is not None:
        # per-query work of fused attention that does not overlap its main loop
        with np.errstate(divide="ignore", invalid="ignore"):
            query = np.where(query_bw > 0, table.act_bytes / np.where(query_bw > 0, query_bw, 1.0), 0.0)
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
    time = np.maximum(np.maximum(compute, memory), network)
    if query_bw is not None:
        time += query
        memory = memory + query
    time += overhead
    bound = np.where(is_coll[:, None], Bound.NETWORK, np.where(compute >= memory, Bound.COMPUTE, Bound.MEMORY))
    return OpCosts(compute, memory, network, overhead, time, bound.astype(np.int8), table.count)
