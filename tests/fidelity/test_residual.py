"""The learned residual (:mod:`infersim.fidelity.residual`): its features are the quantities they
name, it learns a known multiplicative error and generalizes it to shapes it did not see, leaves
a model with no error alone, and keeps unpredictable rows unpredicted."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pyarrow", reason="measurements are arrow tables (pip install 'infersim[test]')")
pytest.importorskip("sklearn", reason="the learned residual needs scikit-learn (pip install 'infersim[test]')")

from infersim.fidelity.kernels import build_kernels  # noqa: E402
from infersim.fidelity.metrics import three_way_split  # noqa: E402
from infersim.fidelity.residual import features, fit_residual  # noqa: E402
from infersim.hardware import get_device  # noqa: E402
from tests.fidelity.synth import gemm_rows, rows_table, with_latency  # noqa: E402

#: the error the "measurements" carry on top of the model, per dtype: fp8 GEMMs 30% slower, bf16 20% faster
TRUE_FACTOR = {"bf16": 0.8, "fp8": 1.3}


def _rows():
    table = rows_table(gemm_rows(("bf16", "fp8")))
    kernels = build_kernels(table)
    pred = kernels.predict(get_device("h100-sxm"))
    dtype = np.asarray(table.column("dtype").to_pylist())
    factor = np.where(dtype == "fp8", TRUE_FACTOR["fp8"], TRUE_FACTOR["bf16"])
    return table, kernels, pred, factor


def test_features_are_the_named_quantities():
    table, kernels, pred, _ = _rows()
    vocab = {"op": ["gemm"], "dtype": ["bf16", "fp8"], "kv_dtype": [""]}
    x = features(table, kernels, pred, vocab)
    m, n, k = (table.column(c).to_numpy().astype(float) for c in ("m", "n", "k"))
    flops = 2.0 * m * n * k  # a GEMM's multiply-adds, two FLOPs each
    np.testing.assert_allclose(x[:, 0], np.log10(flops + 1.0), rtol=1e-12)
    np.testing.assert_allclose(x[:, 2], x[:, 0] - x[:, 1], rtol=1e-9, atol=1e-12)  # intensity = flops / bytes
    np.testing.assert_allclose(x[:, 3], np.log10(pred), rtol=1e-12)
    dtype = np.asarray(table.column("dtype").to_pylist())
    np.testing.assert_array_equal(x[:, -2], np.where(dtype == "fp8", 1.0, 0.0))  # vocabulary positions
    assert np.all(x[:, -3] == 0.0) and np.all(x[:, -1] == 0.0)
    # a value outside the vocabulary is coded -1 (missing to the gradient boosting)
    assert np.all(features(table, kernels, pred, {"op": ["gemm"], "dtype": ["fp16"], "kv_dtype": [""]})[:, -2] == -1)


def test_learns_a_known_error_and_generalizes_to_unseen_shapes():
    table, kernels, pred, factor = _rows()
    measured = with_latency(table, pred * factor)
    fit, _, test = three_way_split(measured)
    assert test.sum() >= 30 and fit.sum() >= 150
    fit_rows = measured.filter(fit)
    res = fit_residual(fit_rows, build_kernels(fit_rows), pred[fit], seed=0)
    test_rows = measured.filter(test)
    corrected = res.apply(test_rows, build_kernels(test_rows), pred[test])
    meas = pred[test] * factor[test]
    before = np.abs(pred[test] / meas - 1.0)
    after = np.abs(corrected / meas - 1.0)
    # without it the error is the planted one (20% or 30%: |1/0.8 - 1| = 25%, |1/1.3 - 1| = 23%)
    np.testing.assert_allclose(np.sort(np.unique(np.round(before, 6))), [round(1 - 1 / 1.3, 6), 0.25])
    assert np.median(after) < 0.01 and np.max(after) < 0.05


def test_no_error_to_learn_leaves_predictions_alone_and_nan_stays_nan():
    table, kernels, pred, _ = _rows()
    exact = with_latency(table, pred)
    res = fit_residual(exact, kernels, pred, seed=0)
    out = res.apply(exact, kernels, pred)
    np.testing.assert_allclose(out, pred, rtol=1e-12)
    holes = pred.copy()
    holes[::7] = np.nan
    out = res.apply(exact, kernels, holes)
    assert np.all(np.isnan(out[::7]))
    np.testing.assert_allclose(np.delete(out, np.s_[::7]), np.delete(pred, np.s_[::7]), rtol=1e-12)


def test_subsampled_fit_is_repeatable():
    table, kernels, pred, factor = _rows()
    measured = with_latency(table, pred * factor * np.exp(np.random.default_rng(1).normal(0, 0.05, pred.size)))
    a = fit_residual(measured, kernels, pred, max_rows=120, seed=3).apply(measured, kernels, pred)
    b = fit_residual(measured, kernels, pred, max_rows=120, seed=3).apply(measured, kernels, pred)
    np.testing.assert_array_equal(a, b)
