"""Roofline time of every operator in an :class:`OpTable` on one device (vectorized).

For each operator occurrence::

    compute_s  = flops / (peak_flops[dtype] * eff_compute)
    memory_s   = bytes / (memory_bandwidth * eff_memory)
    time_s     = max(compute_s, memory_s) + kernels * kernel_overhead      (compute ops)
    time_s     = alpha-beta collective time + kernel_overhead             (collectives)

This is the roofline model (Williams, Waterman & Patterson, CACM 2009) with a
size-dependent achievable peak (:mod:`infersim.perf.efficiency`) instead of one
constant, plus a fixed per-kernel launch cost.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from ..hardware.device import Device
from .collectives import collective_time_s
from .efficiency import ramp_efficiency, wave_utilization
from .operators import OpKind, OpTable


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


def compute_time_s(flops, peak_flops, device: Device, gemm_m=None, gemm_n=None, ramp=True, max_fraction=None):
    """Compute-side time of kernels doing ``flops`` (GEMM shape enables wave quantization).

    ``ramp`` applies the size-dependent ramp-up of matrix units (tensor cores / MXUs);
    vector work (elementwise) runs at ``compute_max_fraction`` of the vector peak.
    ``max_fraction`` (scalar or array) overrides the device's ``compute_max_fraction``.
    """
    eff = device.efficiency
    fraction = eff.compute_max_fraction if max_fraction is None else max_fraction
    e = ramp_efficiency(flops, fraction, eff.compute_half_flops if ramp else 0.0)
    if gemm_m is not None:
        e = e * wave_utilization(gemm_m, gemm_n, eff.gemm_tile_m, eff.gemm_tile_n, device.compute_units)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(flops > 0, flops / (peak_flops * np.maximum(e, 1e-12)), 0.0)


def memory_time_s(n_bytes, device: Device):
    eff = device.efficiency
    e = ramp_efficiency(n_bytes, eff.memory_max_fraction, eff.memory_half_bytes)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(n_bytes > 0, n_bytes / (device.memory_bandwidth_bytes_per_s * np.maximum(e, 1e-12)), 0.0)


def cost_ops(table: OpTable, device: Device, sparse: bool = False) -> OpCosts:
    """Roofline time of every operator occurrence in ``table`` on ``device``."""
    # elementwise math runs on the vector units (fp32 CUDA-core / VPU peak), not tensor cores
    vector_peak = device.peak_flops("fp32")
    peaks = np.array([vector_peak if k == OpKind.ELEMENTWISE else device.peak_flops(d, sparse=sparse)
                      for k, d in zip(table.kind, table.dtype)])[:, None]
    is_gemm = (table.kind == OpKind.GEMM)[:, None]
    is_matrix = (table.kind != OpKind.ELEMENTWISE)[:, None]
    eff = device.efficiency
    fractions = np.array([eff.compute_fraction(d, attention=k == OpKind.ATTENTION)
                          for k, d in zip(table.kind, table.dtype)])[:, None]
    compute = compute_time_s(
        table.flops, peaks, device,
        gemm_m=np.where(is_gemm, table.gemm_m, 1e9),  # non-GEMMs: no wave penalty
        gemm_n=np.where(is_gemm, table.gemm_n, 1e9),
        max_fraction=fractions,
    )
    if not is_matrix.all():
        vector = compute_time_s(table.flops, peaks, device, ramp=False)
        compute = np.where(is_matrix, compute, vector)
    memory = memory_time_s(table.total_bytes, device)
    network = np.zeros_like(compute)
    is_coll = table.kind == OpKind.COLLECTIVE
    for i in np.flatnonzero(is_coll):
        network[i] = collective_time_s(int(table.collective[i]), table.comm_bytes[i], int(table.group_size[i]), device)
    active = (table.flops + table.total_bytes + table.comm_bytes) > 0
    overhead = np.where(active, table.kernels[:, None] * device.efficiency.kernel_overhead_us * 1e-6, 0.0)
    time = np.maximum(np.maximum(compute, memory), network) + overhead
    bound = np.where(is_coll[:, None], Bound.NETWORK, np.where(compute >= memory, Bound.COMPUTE, Bound.MEMORY))
    return OpCosts(compute, memory, network, overhead, time, bound.astype(np.int8), table.count)
