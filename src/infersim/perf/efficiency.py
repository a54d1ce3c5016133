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
* **Padded tiles with a choice of tile** (GEMMs, when a device lists candidate tiles):
  every output tile costs a full ``tile_m x tile_n`` tile of work, so utilization is
  ``m n / (waves * units * tile_m * tile_n)``, and the library is assumed to pick the
  candidate tile with the best utilization, as CUTLASS / cuBLAS heuristics choose a
  kernel per shape (same guide: "tile quantization" and "wave quantization"). Each
  tile's main loop over ``k`` pays a fixed prologue/epilogue (pipeline fill, writing
  the tile) worth ``k_half`` of depth: efficiency ``k / (k + k_half)``, the per-tile
  form of the ramp above (the tile-level timing view of LLMCompass, Zhang et al.,
  ISCA 2024). With few output tiles the library may split the reduction over ``s``
  blocks per tile (split-K; Stream-K, Osama et al. PPoPP 2023): ``s`` times the blocks,
  each ``k / s`` deep, so it pays ``k_half`` per shorter slice.
* **Tile size** (padded-tile model): a ``tm x tn`` output tile loads ``(tm + tn)`` operand
  elements per step of ``k`` for ``tm tn`` multiply-adds, an operand reuse (arithmetic
  intensity) of ``I = tm tn / (tm + tn)``; small tiles reuse less and reach less of the
  peak (shared-memory and register bandwidth per FLOP; the tiling analysis of CUTLASS and
  of Kerr et al., "CUTLASS: Fast Linear Algebra in CUDA C++", NVIDIA 2017). Efficiency
  ``I / (I + gemm_tile_intensity_half)`` on each candidate, so a library that falls back
  to small tiles for a mid-size ``m`` pays for it.
* **Per-expert tiles** (MoE grouped GEMMs, padded-tile model): a grouped GEMM runs
  ``experts`` independent problems of ``m / experts`` rows each, and every expert's rows
  are tiled apart, so the output tiles are ``experts * ceil(m / (experts tile_m)) *
  ceil(n / tile_n)``: with few tokens per expert most of each tile is padding (CUTLASS
  grouped GEMM; the padding MegaBlocks, Gale et al. MLSys 2023, set out to remove).
"""

from __future__ import annotations

import math

import numpy as np


def ramp_efficiency(work, max_fraction: float, half_work: float):
    """``max_fraction * work / (work + half_work)``, 0 for zero work."""
    work = np.asarray(work, dtype=np.float64)
    if half_work <= 0:
        return np.full_like(work, max_fraction)
    return max_fraction * work / (work + half_work)


def tile_efficiency(tm: float, tn: float, intensity_half: float) -> float:
    """``I / (I + intensity_half)`` with the tile's operand reuse ``I = tm tn / (tm + tn)``."""
    if intensity_half <= 0:
        return 1.0
    reuse = tm * tn / (tm + tn)
    return reuse / (reuse + intensity_half)


def wave_utilization(m, n, tile_m: int, tile_n: int, units: int):
    """Fraction of compute units busy, averaged over the waves of a tiled GEMM.

    A GEMM with fewer output tiles than compute units splits its reduction over the
    idle units (split-K / Stream-K, Osama et al., PPoPP 2023, as cuBLAS and CUTLASS
    heuristics do for such shapes), so it is not charged for idle units: the ramp
    (:func:`ramp_efficiency`) already charges small kernels for their size. From
    the second wave on, the last partial wave leaves units idle.
    """
    m = np.asarray(m, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    tiles = np.ceil(m / tile_m) * np.ceil(n / tile_n)
    waves = np.ceil(tiles / units)
    with np.errstate(invalid="ignore", divide="ignore"):
        util = np.where(tiles > units, tiles / np.maximum(waves * units, 1.0), 1.0)
    return util


def _row_tiles(m, tm: float, experts):
    """Row tiles of ``m`` rows: ``ceil(m / tm)``, or split over ``experts`` (where > 0), each
    tiled apart: ``experts * ceil(m / (experts tm))``."""
    if experts is None:
        return np.ceil(m / tm)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_expert = experts * np.ceil(m / np.where(experts > 0, experts, 1.0) / tm - 1e-9)
    return np.where(experts > 0, per_expert, np.ceil(m / tm))


def _split_k_utilization(m, n, k, tiles, units: int, k_half: float, experts, split_k: int,
                         intensity_half: float = 0.0):
    """Best over tiles and split-K factors ``s`` (powers of two up to ``split_k``) of
    ``m n s / (waves * units * tm * tn) * (k/s) / (k/s + k_half) * tile_efficiency`` with
    ``waves = ceil(row_tiles * ceil(n/tn) * s / units)``."""
    best = np.zeros(np.broadcast_shapes(m.shape, n.shape, np.shape(k)))
    splits = [1 << i for i in range(int(math.log2(split_k)) + 1)]
    for tm, tn in tiles:
        tiles_mn = _row_tiles(m, tm, experts) * np.ceil(n / tn)
        per_tile = tile_efficiency(tm, tn, intensity_half)
        for sk in splits:
            waves = np.ceil(tiles_mn * sk / units)
            with np.errstate(invalid="ignore", divide="ignore"):
                util = (m * n * sk) / (np.maximum(waves, 1.0) * (units * float(tm) * float(tn))) * per_tile
                if k_half > 0:
                    depth = k / sk
                    util = util * np.where(k > 0, depth / (depth + k_half), 1.0)
            best = np.maximum(best, util)
    return best


def tiled_gemm_utilization(m, n, k, tiles, units: int, k_half: float = 0.0, gemv_max_m: int = 0, experts=None,
                           split_k: int = 1, intensity_half: float = 0.0):
    """Best padded-tile utilization over candidate ``tiles`` times the k-depth ramp.

    ``max over (tm, tn) of m n / (ceil(ceil(m/tm) ceil(n/tn) / units) * units * tm * tn)``
    times ``k / (k + k_half)``; 1 where ``m`` or ``n`` is 0 (no GEMM) or where
    ``0 < m <= gemv_max_m`` (a matrix-vector kernel: no tiles to pad, no per-tile cost).
    ``experts`` (array, 0 = a plain GEMM): grouped GEMMs whose rows are split over that many
    experts, each expert's rows tiled apart (``ceil(m/tm)`` becomes ``experts ceil(m/(experts tm))``).
    ``split_k`` > 1: the kernel may also split the reduction over ``s`` (a power of two up to
    ``split_k``) thread blocks per output tile (split-K / Stream-K, Osama et al. PPoPP 2023),
    which fills the units when there are few tiles, at a shorter per-block depth ``k / s``.
    ``intensity_half`` > 0: each candidate tile's utilization is scaled by its
    :func:`tile_efficiency` (the library picks the best product).
    """
    m = np.asarray(m, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    if experts is not None:
        experts = np.asarray(experts, dtype=np.float64)
        if not np.any(experts > 0):
            experts = None
    if split_k > 1:
        k = np.asarray(k, dtype=np.float64)
        best = _split_k_utilization(m, n, k, tiles, units, k_half, experts, split_k, intensity_half)
        tiled = (m > 0) & (n > 0) & (m > gemv_max_m)
        return np.where(tiled, best, 1.0)
    best = np.zeros(np.broadcast_shapes(m.shape, n.shape))
    for tm, tn in tiles:
        waves = np.ceil(_row_tiles(m, tm, experts) * np.ceil(n / tn) / units)
        with np.errstate(invalid="ignore", divide="ignore"):
            util = (m * n) / (np.maximum(waves, 1.0) * (units * float(tm) * float(tn)))
        best = np.maximum(best, util * tile_efficiency(tm, tn, intensity_half))
    tiled = (m > 0) & (n > 0) & (m > gemv_max_m)
    best = np.where(tiled, best, 1.0)
    if k_half > 0:
        k = np.asarray(k, dtype=np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            best = best * np.where(tiled & (k > 0), k / (k + k_half), 1.0)
    return best


def tiled_gemm_utilization_scalar(m: float, n: float, k: float, tiles, units: int, k_half: float,
                                  gemv_max_m: int = 0, experts: float = 0.0, split_k: int = 1,
                                  intensity_half: float = 0.0) -> float:
    """:func:`tiled_gemm_utilization` for one GEMM in plain floats."""
    if m <= 0 or n <= 0 or m <= gemv_max_m:
        return 1.0
    best = 0.0
    if split_k > 1:
        for tm, tn in tiles:
            rows = experts * math.ceil(m / experts / tm - 1e-9) if experts > 0 else math.ceil(m / tm)
            tiles_mn = rows * math.ceil(n / tn)
            per_tile = tile_efficiency(tm, tn, intensity_half)
            sk = 1
            while sk <= split_k:
                waves = math.ceil(tiles_mn * sk / units)
                util = (m * n * sk) / (max(waves, 1) * (units * float(tm) * float(tn))) * per_tile
                if k_half > 0 and k > 0:
                    util *= (k / sk) / (k / sk + k_half)
                best = max(best, util)
                sk *= 2
        return best
    for tm, tn in tiles:
        rows = experts * math.ceil(m / experts / tm - 1e-9) if experts > 0 else math.ceil(m / tm)
        waves = math.ceil(rows * math.ceil(n / tn) / units)
        util = (m * n) / (max(waves, 1) * (units * float(tm) * float(tn))) * tile_efficiency(tm, tn, intensity_half)
        if util > best:
            best = util
    if k_half > 0 and k > 0:
        best *= k / (k + k_half)
    return best
