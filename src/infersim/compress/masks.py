"""Pruning masks from importance scores: per layer, per output row, or N:M along the input."""

from __future__ import annotations

import numpy as np


def nm_mask(scores: np.ndarray, n: int, m: int) -> np.ndarray:
    """Keep the ``n`` highest-scoring of every ``m`` consecutive input weights of each row (the 2:4
    pattern of sparse tensor cores, Mishra et al. 2021); a trailing partial group keeps the same share."""
    out_dim, in_dim = scores.shape
    keep = np.zeros_like(scores, dtype=bool)
    full = in_dim - in_dim % m
    if full:
        groups = scores[:, :full].reshape(out_dim, full // m, m)
        top = np.argsort(-groups, axis=2, kind="stable")[:, :, :n]
        kept = np.zeros_like(groups, dtype=bool)
        np.put_along_axis(kept, top, True, axis=2)
        keep[:, :full] = kept.reshape(out_dim, full)
    if full < in_dim:
        tail = scores[:, full:]
        k = max(1, round(tail.shape[1] * n / m))
        idx = np.argsort(-tail, axis=1, kind="stable")[:, :k]
        np.put_along_axis(keep[:, full:], idx, True, axis=1)
    return keep


def row_mask(scores: np.ndarray, sparsity: float) -> np.ndarray:
    """Prune the lowest ``sparsity`` fraction of each output row (Wanda's comparison group)."""
    k = int(scores.shape[1] * sparsity)
    keep = np.ones_like(scores, dtype=bool)
    if k:
        idx = np.argsort(scores, axis=1, kind="stable")[:, :k]
        np.put_along_axis(keep, idx, False, axis=1)
    return keep


def layer_mask(scores: np.ndarray, sparsity: float) -> np.ndarray:
    """Prune the lowest ``sparsity`` fraction of the whole matrix (magnitude pruning's group)."""
    k = int(scores.size * sparsity)
    keep = np.ones(scores.size, dtype=bool)
    if k:
        keep[np.argsort(scores.reshape(-1), kind="stable")[:k]] = False
    return keep.reshape(scores.shape)
