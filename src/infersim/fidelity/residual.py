"""An optional learned residual on top of the calibrated cost model (reported separately).

The analytical model stays the explainable part; the residual only learns the
remaining log-error ``log(measured / calibrated prediction)`` from the same features
the model sees (log FLOPs, log bytes, log arithmetic intensity, the log calibrated
prediction, the log shape columns, op and dtype codes), with scikit-learn's
histogram gradient boosting (Ke et al., "LightGBM", NeurIPS 2017, the algorithm
``HistGradientBoostingRegressor`` implements). Needs ``scikit-learn``
(``pip install 'infersim[fidelity]'``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from ..errors import InfersimError
from .kernels import KernelSet
from .measurements import SHAPE_COLUMNS


def residual_available() -> bool:
    try:
        import sklearn  # noqa: F401
    except ImportError:
        return False
    return True


def _codes(values: np.ndarray, vocabulary: list[str]) -> np.ndarray:
    index = {v: i for i, v in enumerate(vocabulary)}
    return np.asarray([index.get(v, -1) for v in values], dtype=np.float64)


def features(table: pa.Table, kernels: KernelSet, pred_s: np.ndarray, vocab: dict[str, list[str]]) -> np.ndarray:
    """The residual model's inputs, one row per measurement row."""
    flops, nbytes = kernels.work()
    cols = [np.log10(flops + 1.0), np.log10(nbytes + 1.0), np.log10((flops + 1.0) / (nbytes + 1.0)),
            np.log10(np.maximum(pred_s, 1e-12))]
    for c in SHAPE_COLUMNS:
        cols.append(np.log2(table.column(c).to_numpy().astype(np.float64) + 1.0))
    for c in ("op", "dtype", "kv_dtype"):
        cols.append(_codes(np.asarray(table.column(c).to_pylist(), dtype=object), vocab[c]))
    return np.stack(cols, axis=1)


@dataclass
class Residual:
    """A fitted residual: ``corrected = prediction * exp(model(features))``."""

    model: object
    vocab: dict[str, list[str]]

    def apply(self, table: pa.Table, kernels: KernelSet, pred_s: np.ndarray) -> np.ndarray:
        out = np.asarray(pred_s, dtype=np.float64).copy()
        ok = np.isfinite(out)
        if ok.any():
            x = features(table, kernels, np.where(ok, out, 1.0), self.vocab)[ok]
            out[ok] = out[ok] * np.exp(self.model.predict(x))
        return out


def fit_residual(table: pa.Table, kernels: KernelSet, pred_s: np.ndarray, *, max_rows: int = 50_000,
                 seed: int = 0) -> Residual:
    """Fit the residual on rows of ``table`` (the training rows) given the calibrated predictions."""
    if not residual_available():
        raise InfersimError("the learned residual needs scikit-learn; install it with: "
                            "pip install 'infersim[fidelity]'")
    from sklearn.ensemble import HistGradientBoostingRegressor

    meas = table.column("latency_s").to_numpy()
    ok = np.isfinite(pred_s) & (pred_s > 0)
    idx = np.flatnonzero(ok)
    if idx.size > max_rows:
        idx = np.sort(np.random.default_rng(seed).choice(idx, max_rows, replace=False))
    vocab = {c: sorted(set(table.column(c).to_pylist())) for c in ("op", "dtype", "kv_dtype")}
    x = features(table, kernels, np.where(ok, pred_s, 1.0), vocab)[idx]
    y = np.log(meas[idx] / pred_s[idx])
    n_cat = 3
    categorical = np.r_[np.zeros(x.shape[1] - n_cat, dtype=bool), np.ones(n_cat, dtype=bool)]
    model = HistGradientBoostingRegressor(loss="absolute_error", max_iter=300, learning_rate=0.1,
                                          max_leaf_nodes=31, categorical_features=categorical, random_state=seed)
    model.fit(x, y)
    return Residual(model, vocab)
