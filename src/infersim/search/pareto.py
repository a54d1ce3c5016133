"""Pareto fronts over any set of objectives, each minimized or maximized.

Point ``a`` dominates ``b`` when it is at least as good in every objective and strictly
better in one. Points with equal objective vectors do not dominate each other (both stay on
the front). Both functions first sort the points lexicographically, so that a dominator
always comes before what it dominates.

* Two objectives (the common case): O(n log n). After the sort, an earlier point ``q``
  dominates ``p`` exactly when ``(q2, q1) < (p2, p1)`` lexicographically, so each point's
  front is found by a binary search over the smallest such key of every front so far (the
  2-D case of Jensen, "Reducing the run-time complexity of multiobjective EAs: the NSGA-II
  and other algorithms", IEEE TEC 2003), and the first front is a running minimum.
* Three: ENS-BS (below) with each front kept as a 2-D staircase. After the lexicographic sort
  of the distinct points, an earlier point ``q`` dominates ``p`` exactly when ``q2 <= p2`` and
  ``q3 <= p3``, and a front dominates ``p`` exactly when the member with the largest ``q2 <= p2``
  among its 2-D non-dominated members (kept sorted, ``q3`` decreasing) has ``q3 <= p3``: one
  bisection per front tested, O(n log n log F) in all for F fronts (the staircase is the 2-D
  case of the dimension sweep of Kung, Luccio and Preparata, JACM 1975).
* Four or more: the efficient non-dominated sort with binary search (ENS-BS; Zhang, Tian,
  Cheng and Jin, "An efficient approach to nondominated sorting for evolutionary
  multiobjective optimization", IEEE TEC 2015): each point, in sorted order, goes to the
  first front none of whose members dominates it, found by binary search over the fronts
  (if a front dominates a point, so does every earlier one); each front test is one numpy
  comparison against that front's members.

:func:`pareto_ranks` returns the front number of every point (0 = the Pareto front; rank 1
is the front of the rest, and so on); :func:`pareto_mask` the first front only (for three or
more objectives one sweep against the front, O(n log n + n f k) for a front of f points).
"""

from __future__ import annotations

import bisect
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
    if np.isnan(v).any():
        raise ValueError("objective values must not be NaN")
    return v * signs + 0.0  # + 0.0: a negated 0 is -0.0, which np.unique would tell from 0.0


def dominates(a, b, directions: Sequence[str]) -> bool:
    """Whether ``a`` dominates ``b`` (the definition, for one pair)."""
    x = _as_minimization([a, b], directions)
    return bool(np.all(x[0] <= x[1]) and np.any(x[0] < x[1]))


def _sorted_2d(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The lexicographic order of the rows (by objective 1, then 2) and, per row of that order,
    an integer code that orders the keys ``(objective 2, objective 1)`` (equal rows, equal codes)."""
    order = np.lexsort((x[:, 1], x[:, 0]))
    by_key = np.lexsort((x[:, 0], x[:, 1]))
    ranked = x[by_key]
    new = np.ones(x.shape[0], dtype=bool)
    new[1:] = (ranked[1:] != ranked[:-1]).any(axis=1)
    codes = np.empty(x.shape[0], dtype=np.int64)
    codes[by_key] = np.cumsum(new) - 1
    return order, codes[order]


def pareto_mask(values, directions: Sequence[str]) -> np.ndarray:
    """Boolean mask of the non-dominated rows of ``values`` (n points x k objectives)."""
    x = _as_minimization(values, directions)
    n, k = x.shape
    mask = np.zeros(n, dtype=bool)
    if n == 0:
        return mask
    if k == 1:
        return x[:, 0] == x[:, 0].min()
    if k == 2:
        order, codes = _sorted_2d(x)
        # on the front: no earlier point has a smaller key (an equal key is an equal point)
        mask[order] = codes <= np.minimum.accumulate(codes)
        return mask
    if k == 3:
        return _ranks_3d(x, first_front_only=True) == 0
    order = np.lexsort(x.T[::-1])
    front = np.empty((16, k))
    size = 0
    for i in order.tolist():  # one front: the sweep of ENS against the members found so far
        p = x[i]
        f = front[:size]
        if size and ((f <= p).all(axis=1) & (f < p).any(axis=1)).any():
            continue
        if size == front.shape[0]:
            front = np.concatenate([front, np.empty_like(front)])
        front[size] = p
        size += 1
        mask[i] = True
    return mask


def pareto_ranks(values, directions: Sequence[str]) -> np.ndarray:
    """Front number of every row (0 = Pareto front)."""
    x = _as_minimization(values, directions)
    n, k = x.shape
    ranks = np.zeros(n, dtype=np.int64)
    if n == 0:
        return ranks
    if k == 1:
        return np.unique(x[:, 0], return_inverse=True)[1].astype(np.int64).reshape(-1)
    if k == 2:
        order, codes = _sorted_2d(x)
        tails: list[int] = []  # per front, the smallest key of its members so far (increasing)
        out = np.empty(n, dtype=np.int64)
        for i, c in enumerate(codes.tolist()):
            f = bisect.bisect_left(tails, c)  # the first front whose members do not dominate p
            if f == len(tails):
                tails.append(c)
            else:
                tails[f] = c
            out[i] = f
        ranks[order] = out
        return ranks
    if k == 3:
        return _ranks_3d(x)
    return _ens_bs(x)


def _ranks_3d(x: np.ndarray, first_front_only: bool = False) -> np.ndarray:
    """Front numbers of 3-objective points (minimized), ENS-BS over 2-D staircases; equal points
    share a rank. ``first_front_only``: -1 for every point off the first front."""
    unique, inverse = np.unique(x, axis=0, return_inverse=True)  # rows in lexicographic order
    ys, zs = unique[:, 1].tolist(), unique[:, 2].tolist()
    fronts: list[tuple[list, list]] = []  # per front: its staircase (q2 increasing, q3 decreasing)
    ranks = np.empty(len(ys), dtype=np.int64)
    bisect_right = bisect.bisect_right
    for i, (y, z) in enumerate(zip(ys, zs)):
        lo, hi = 0, len(fronts)
        while lo < hi:  # the first front that does not dominate (y, z)
            mid = (lo + hi) // 2
            keys, vals = fronts[mid]
            j = bisect_right(keys, y) - 1
            if j >= 0 and vals[j] <= z:
                lo = mid + 1
            else:
                hi = mid
        if lo == len(fronts):
            if first_front_only and fronts:
                ranks[i] = -1
                continue
            fronts.append(([], []))
        keys, vals = fronts[lo]
        a = bisect.bisect_left(keys, y)
        b = a
        while b < len(vals) and vals[b] >= z:  # members (y, z) now dominates in 2-D
            b += 1
        keys[a:b] = [y]
        vals[a:b] = [z]
        ranks[i] = lo
    return ranks[inverse.reshape(-1)]


def _ens_bs(x: np.ndarray) -> np.ndarray:
    n, k = x.shape
    order = np.lexsort(x.T[::-1])
    ranks = np.zeros(n, dtype=np.int64)
    members: list[np.ndarray] = []  # per front, its points (rows of a buffer that doubles)
    sizes: list[int] = []

    def dominated_by(f: int, p: np.ndarray) -> bool:
        front = members[f][: sizes[f]]
        return bool(((front <= p).all(axis=1) & (front < p).any(axis=1)).any())

    for i in order.tolist():
        p = x[i]
        lo, hi = 0, len(members)
        while lo < hi:  # first front that does not dominate p
            mid = (lo + hi) // 2
            if dominated_by(mid, p):
                lo = mid + 1
            else:
                hi = mid
        if lo == len(members):
            members.append(np.empty((16, k)))
            sizes.append(0)
        if sizes[lo] == members[lo].shape[0]:
            members[lo] = np.concatenate([members[lo], np.empty_like(members[lo])])
        members[lo][sizes[lo]] = p
        sizes[lo] += 1
        ranks[i] = lo
    return ranks
