"""Uniform asymmetric quantization with per-group scales (the GPTQ / AWQ weight format)."""

from __future__ import annotations

import numpy as np


def group_params(w: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Scale and zero point of each row of ``w`` (out, g): min/max over the group mapped to
    ``[0, 2^bits - 1]`` (Frantar et al., GPTQ, ICLR 2023, appendix: asymmetric per-group min-max)."""
    top = 2**bits - 1
    lo = np.minimum(w.min(axis=1), 0.0)
    hi = np.maximum(w.max(axis=1), 0.0)
    scale = (hi - lo) / top
    scale = np.where(scale > 0, scale, 1.0)
    zero = np.round(-lo / scale)
    return scale, zero


def quantize(w: np.ndarray, scale: np.ndarray, zero: np.ndarray, bits: int) -> np.ndarray:
    """Quantize-dequantize ``w`` (out,) or (out, g) with per-row ``scale`` / ``zero``: the error is at
    most half a step (``scale / 2``) for values inside the group's range."""
    s = scale if w.ndim == 1 else scale[:, None]
    z = zero if w.ndim == 1 else zero[:, None]
    q = np.clip(np.round(w / s) + z, 0, 2**bits - 1)
    return (q - z) * s


def quantize_groups(w: np.ndarray, bits: int, group_size: int) -> np.ndarray:
    """Round-to-nearest quantization of every ``group_size`` input columns (no error feedback)."""
    out = np.empty_like(w)
    for start in range(0, w.shape[1], group_size):
        block = w[:, start:start + group_size]
        scale, zero = group_params(block, bits)
        out[:, start:start + group_size] = quantize(block, scale, zero, bits)
    return out
