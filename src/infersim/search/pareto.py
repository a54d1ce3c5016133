"""Pareto fronts over any set of objectives, each minimized or maximized.

Point ``a`` dominates ``b`` when it is at least as good in every objective and
strictly better in one. Points with equal objective vectors do not dominate
each other (both stay on the front). :func:`pareto_mask` sorts the points
lexicographically (a dominator always sorts before what it dominates) and
sweeps once, comparing each point with the front found so far, O(n log n + n f k)
for a front of ``f`` points. :func:`pareto_ranks` peels fronts: rank 0 is the
front, rank 1 the front of the rest, and so on; dominated points are kept.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _as_minimization(values, directions: Sequence[str]) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 2:
        raise ValueError(f"values must be (points, objectives), got shape {v.shape}")
    if len(directions) != v.shape[1]:
        raise ValueError(f"{len(directions)} directions for {v.shape[1]} objectives")
    signs = np.array([1.0 if d == "min" else -1.0 if d == "max" else np.nan for d in directions])
    if np.isnan(signs).any():
        raise ValueError(f"directions must be 'min' or 'max', got {list(directions)}")
    return v * signs


def dominates(a, b, directions: Sequence[str]) -> bool:
    """Whether ``a`` dominates ``b`` (the definition, for one pair)."""
    x = _as_minimization([a, b], directions)
    return bool(np.all(x[0] <= x[1]) and np.any(x[0] < x[1]))


def pareto_mask(values, directions: Sequence[str]) -> np.ndarray:
    """Boolean mask of the non-dominated rows of ``values`` (n points x k objectives)."""
    x = _as_minimization(values, directions)
    n = x.shape[0]
    mask = np.zeros(n, dtype=bool)
    if n == 0:
        return mask
    if np.isnan(x).any():
        raise ValueError("objective values must not be NaN")
    order = np.lexsort(x.T[::-1])
    front = np.empty((0, x.shape[1]))
    for i in order:
        p = x[i]
        if front.shape[0]:
            no_worse = (front <= p).all(axis=1)
            better = (front < p).any(axis=1)
            if (no_worse & better).any():
                continue
        mask[i] = True
        front = np.vstack([front, p])
    return mask


def pareto_ranks(values, directions: Sequence[str]) -> np.ndarray:
    """Front number of every row (0 = Pareto front)."""
    x = np.asarray(values, dtype=np.float64)
    ranks = np.full(x.shape[0], -1, dtype=np.int64)
    remaining = np.arange(x.shape[0])
    rank = 0
    while remaining.size:
        front = pareto_mask(x[remaining], directions)
        ranks[remaining[front]] = rank
        remaining = remaining[~front]
        rank += 1
    return ranks
