"""Achievable fraction of peak as a function of problem size (vectorized).

Two effects, both physical and both fitted by ``infersim calibrate``:

* **Ramp-up**: ``eff(x) = max_fraction * x / (x + half)``. A kernel with little work
  cannot fill the machine's pipelines (launch latency, prologue/epilogue, too few
  thread blocks to hide memory latency). Equivalently the time is
  ``(x + half) / (max_fraction * peak)``: a fixed start-up cost of ``half/peak``
  seconds plus a throughput term, the form used for kernel timing in
  LLMCompass (Zhang et al., ISCA 2024) and in the "roofline with offsets" of
  Williams et al. (CACM 2009).
* **Wave quantization** (GEMMs only): ``tiles = ceil(m/Tm) * ceil(n/Tn)`` output tiles
  run in ``ceil(tiles/units)`` waves over the device's compute units; the last
  partial wave leaves units idle, so utilization is ``tiles / (waves * units)``
  (NVIDIA, "Matrix Multiplication Background User's Guide", wave quantization).
"""

from __future__ import annotations

import numpy as np


def ramp_efficiency(work, max_fraction: float, half_work: float):
    """``max_fraction * work / (work + half_work)``, 0 for zero work."""
    work = np.asarray(work, dtype=np.float64)
    if half_work <= 0:
        return np.full_like(work, max_fraction)
    return max_fraction * work / (work + half_work)


def wave_utilization(m, n, tile_m: int, tile_n: int, units: int):
    """Fraction of compute units busy, averaged over the waves of a tiled GEMM."""
    m = np.asarray(m, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    tiles = np.ceil(m / tile_m) * np.ceil(n / tile_n)
    waves = np.ceil(tiles / units)
    with np.errstate(invalid="ignore", divide="ignore"):
        util = np.where(tiles > 0, tiles / np.maximum(waves * units, 1.0), 1.0)
    return util
