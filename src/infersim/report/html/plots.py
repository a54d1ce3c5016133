"""Shared plot data: decimated CDFs and time-binned series, so a large run stays a small page."""

from __future__ import annotations

import numpy as np

#: points kept of an empirical CDF (the plotted steps are exact sample values at evenly spaced ranks)
CDF_POINTS = 400
#: time bins of a series over a run
TIME_BINS = 300
#: significant digits kept of decimated / binned plot data (the summaries' numbers are kept whole)
DIGITS = 6


def rounded(values) -> list:
    """``values`` as a list of floats rounded to :data:`DIGITS` significant digits (NaN -> None)."""
    return [None if v is None or not np.isfinite(v) else float(f"{v:.{DIGITS}g}") for v in np.asarray(values, float)]


def cdf(values, max_points: int = CDF_POINTS) -> dict:
    """Empirical CDF of the finite ``values``: ``x`` sorted sample values, ``y`` = rank / n, at most
    ``max_points`` of them (every sample when fewer), always including the first and last; both
    rounded to :data:`DIGITS` significant digits."""
    x = np.asarray(values, dtype=np.float64)
    x = np.sort(x[np.isfinite(x)])
    n = x.size
    if n == 0:
        return {"x": [], "y": [], "n": 0}
    idx = np.unique(np.linspace(0, n - 1, min(n, max_points)).round().astype(np.int64))
    return {"x": rounded(x[idx]), "y": rounded((idx + 1) / n), "n": int(n)}


def weighted_cdf(values, weights, max_points: int = CDF_POINTS) -> dict:
    """CDF of values with integer weights (inter-token gaps shared by many requests)."""
    v = np.asarray(values, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    keep = np.isfinite(v) & (w > 0)
    v, w = v[keep], w[keep]
    if v.size == 0:
        return {"x": [], "y": [], "n": 0}
    order = np.argsort(v, kind="stable")
    v, cum = v[order], np.cumsum(w[order])
    idx = np.unique(np.linspace(0, v.size - 1, min(v.size, max_points)).round().astype(np.int64))
    return {"x": rounded(v[idx]), "y": rounded(cum[idx] / cum[-1]), "n": int(cum[-1])}


def time_bins(t0: float, t1: float, bins: int = TIME_BINS) -> np.ndarray:
    if not np.isfinite(t1) or t1 <= t0:
        t1 = t0 + 1.0
    return np.linspace(t0, t1, bins + 1)


def binned_rate(times, edges: np.ndarray, weights=None) -> list[float]:
    """Events (or their weights) per second in each bin."""
    t = np.asarray(times, dtype=np.float64)
    ok = np.isfinite(t)
    counts, _ = np.histogram(t[ok], bins=edges, weights=None if weights is None else np.asarray(weights)[ok])
    return rounded(counts / np.diff(edges))


def binned_time_mean(start, duration, value, edges: np.ndarray) -> list[float | None]:
    """Duration-weighted mean of ``value`` over the intervals starting in each bin (None where none)."""
    start = np.asarray(start, dtype=np.float64)
    dur = np.asarray(duration, dtype=np.float64)
    val = np.asarray(value, dtype=np.float64)
    num, _ = np.histogram(start, bins=edges, weights=val * dur)
    den, _ = np.histogram(start, bins=edges, weights=dur)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(den > 0, num / den, np.nan)
    return rounded(out)


def level_at(edges: np.ndarray, up, down) -> list[float]:
    """Count of items with ``up <= t`` and not yet ``down <= t`` at each bin's right edge (a queue length)."""
    up = np.sort(np.asarray(up, dtype=np.float64)[np.isfinite(up)])
    down = np.sort(np.asarray(down, dtype=np.float64)[np.isfinite(down)])
    t = edges[1:]
    return (np.searchsorted(up, t, side="right") - np.searchsorted(down, t, side="right")).astype(float).tolist()


def decimate_indices(n: int, limit: int) -> np.ndarray:
    """At most ``limit`` evenly spaced indices of ``range(n)`` (all of them when n <= limit)."""
    if n <= limit:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, limit).round().astype(np.int64))
