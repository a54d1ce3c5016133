"""Compression methods on hand-checkable cases (no model needed)."""

import numpy as np
import pytest

from infersim.compress.masks import layer_mask, nm_mask, row_mask
from infersim.compress.methods import (METHODS, Calibration, CompressedLinear, get_method, lowrank_adapters,
                                       obs_compress, reconstruct_rows)
from infersim.compress.quant import group_params, quantize, quantize_groups
from infersim.compress.spec import CompressionSpec, parse_sparsity
from infersim.errors import InfersimError


def test_wanda_on_a_2x4_matrix_by_hand():
    w = np.array([[1.0, -2.0, 3.0, -4.0],
                  [4.0, 3.0, -2.0, 1.0]])
    # input norms: column j of X has norm ||X_j||; pick X so that they are 4, 1, 1, 0.5
    x = np.diag([4.0, 1.0, 1.0, 0.5])
    # scores |W| * norm: row 0: 4, 2, 3, 2 -> prune the two lowest (cols 1 and 3, ties by position);
    #                    row 1: 16, 3, 2, 0.5 -> prune cols 2 and 3
    out = get_method("wanda").compress(w, Calibration(x), CompressionSpec(sparsity=0.5))
    assert out.mask.tolist() == [[True, False, True, False], [True, True, False, False]]
    assert out.weight.tolist() == [[1.0, 0.0, 3.0, 0.0], [4.0, 3.0, 0.0, 0.0]]
    # magnitude pruning of the whole layer keeps the 4 largest |W|: 3, -4, 4, 3
    mag = get_method("magnitude").compress(w, Calibration(x), CompressionSpec(sparsity=0.5))
    assert mag.mask.tolist() == [[False, False, True, True], [True, True, False, False]]


def test_nm_mask_keeps_exactly_n_of_every_m():
    rng = np.random.default_rng(0)
    scores = rng.random((7, 24))
    keep = nm_mask(scores, 2, 4)
    groups = keep.reshape(7, 6, 4)
    assert (groups.sum(axis=2) == 2).all()
    # the kept two are the two largest of their group
    s = scores.reshape(7, 6, 4)
    assert (np.where(groups, s, np.inf).min(axis=2) >= np.where(groups, -np.inf, s).max(axis=2)).all()


def test_row_and_layer_masks_prune_the_asked_share():
    scores = np.arange(20.0).reshape(4, 5)
    assert (row_mask(scores, 0.4).sum(axis=1) == 3).all()
    assert layer_mask(scores, 0.5).sum() == 10 and not layer_mask(scores, 0.5)[:2].any()


def _lstsq_rows(w, x, mask):
    """Dense least squares per row: min ||X w_r - X_S v||, with the same 1% dampening as the methods."""
    h = 2 * x.T @ x / len(x)
    h = h + 0.01 * np.mean(np.diag(h)) * np.eye(len(h))
    out = np.zeros_like(w)
    for r in range(w.shape[0]):
        s = np.flatnonzero(mask[r])
        out[r, s] = np.linalg.solve(h[np.ix_(s, s)], (h @ w[r])[s])
    return out


def test_optima_reconstruction_is_the_dense_least_squares_solve():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(64, 8)) @ rng.normal(size=(8, 8))  # correlated inputs
    w = rng.normal(size=(3, 8))
    mask = rng.random((3, 8)) > 0.5
    h = 2 * x.T @ x / len(x)
    assert reconstruct_rows(w, h, mask) == pytest.approx(_lstsq_rows(w, x, mask), abs=1e-9)
    out = get_method("optima").compress(w, Calibration(x), CompressionSpec(sparsity=0.5))
    assert out.weight == pytest.approx(_lstsq_rows(w, x, out.mask), abs=1e-5)


def test_sparsegpt_equals_least_squares_when_the_pruned_columns_come_first():
    """OBS removes a column and updates every column after it; with all pruned columns before all
    kept ones, every kept weight gets the full update: the exact least-squares solution."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(128, 6)) @ rng.normal(size=(6, 6))
    w = rng.normal(size=(2, 6))
    mask = np.array([[False, False, True, True, True, True]] * 2)
    h = 2 * x.T @ x / len(x)
    out = obs_compress(w, h, CompressionSpec(sparsity=0.3), prune=True, mask=mask)
    assert out.weight == pytest.approx(_lstsq_rows(w, x, mask), abs=1e-5)


def test_quantize_dequantize_error_is_at_most_half_a_step():
    rng = np.random.default_rng(3)
    w = rng.normal(size=(16, 64))
    for bits in (2, 3, 4, 8):
        scale, zero = group_params(w, bits)
        q = quantize(w, scale, zero, bits)
        assert (np.abs(q - w) <= scale[:, None] / 2 + 1e-12).all()
        assert len(np.unique(np.round((q - 0) / scale[:, None], 6)[0])) <= 2**bits
    grouped = quantize_groups(w, 4, 16)
    for g in range(4):
        block = w[:, g * 16:(g + 1) * 16]
        scale, _ = group_params(block, 4)
        assert (np.abs(grouped[:, g * 16:(g + 1) * 16] - block) <= scale[:, None] / 2 + 1e-12).all()


def test_lowrank_adapters_are_exact_at_full_rank_and_optimal_in_the_weighted_norm():
    rng = np.random.default_rng(4)
    err = rng.normal(size=(6, 5))
    norms = rng.random(5) + 0.5
    a, b = lowrank_adapters(err, norms, 5)
    assert a @ b == pytest.approx(err, abs=1e-5)
    a1, b1 = lowrank_adapters(err, norms, 1)
    weighted = (err - a1 @ b1) * norms
    sigma = np.linalg.svd(err * norms, compute_uv=False)
    assert np.linalg.norm(weighted) == pytest.approx(np.sqrt((sigma[1:] ** 2).sum()), rel=1e-5)


def test_adapters_reduce_the_reconstruction_error():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(256, 32))
    w = rng.normal(size=(16, 32))
    calib = Calibration(x)
    plain = get_method("wanda").compress(w, calib, CompressionSpec(sparsity=0.5))
    lowrank = get_method("wanda").compress(w, calib, CompressionSpec(sparsity=0.5, lowrank=0.25))
    err = lambda c: np.linalg.norm(x @ (w - c.effective).T)  # noqa: E731
    assert lowrank.adapter_a.shape == (16, 4) and err(lowrank) < err(plain)


@pytest.mark.parametrize("key", sorted(METHODS))
def test_every_method_keeps_its_contract(key):
    """One contract over every registered method: shapes, mask share, masked zeros, a finite result."""
    rng = np.random.default_rng(6)
    x = rng.normal(size=(200, 16))
    w = rng.normal(size=(8, 16))
    method = get_method(key)
    spec = CompressionSpec(bits=4, group_size=8) if not method.prunes else CompressionSpec(n=2, m=4)
    out = method.compress(w, Calibration(x), spec)
    assert isinstance(out, CompressedLinear) and out.weight.shape == w.shape and np.isfinite(out.effective).all()
    if spec.prunes:
        assert out.mask.mean() == pytest.approx(0.5) and (out.weight[~out.mask] == 0).all()
    assert method.source and method.__doc__


@pytest.mark.parametrize("text, problem", [("1.0", "must be in"), ("-0.1", "must be in"), ("4:4", "0 < N < M"),
                                           ("5:4", "0 < N < M"), ("half", "expected a fraction")])
def test_bad_sparsity_is_a_clear_error(text, problem):
    with pytest.raises(InfersimError, match=problem):
        parse_sparsity(text)


def test_bad_specs_and_methods_are_clear_errors():
    with pytest.raises(InfersimError, match="bits must be one of"):
        CompressionSpec(bits=5)
    with pytest.raises(InfersimError, match="unknown compression method 'obs'"):
        get_method("obs")
    with pytest.raises(InfersimError, match="does not prune"):
        get_method("gptq").compress(np.ones((2, 4)), Calibration(np.ones((4, 4))), CompressionSpec(sparsity=0.5))
    assert parse_sparsity("2:4") == (0.0, 2, 4) and parse_sparsity("50%") == (0.5, None, None)


def test_inverse_cholesky_factor_is_upper_and_factors_the_dampened_inverse():
    from infersim.compress.methods import DAMP, _inverse_cholesky

    rng = np.random.default_rng(5)
    x = rng.normal(size=(40, 12)) @ rng.normal(size=(12, 12))
    h = 2 * x.T @ x / len(x)
    u = _inverse_cholesky(h)
    assert np.array_equal(u, np.triu(u)) and (np.diag(u) > 0).all()
    damped = h + DAMP * np.mean(np.diag(h)) * np.eye(12)
    assert u.T @ u == pytest.approx(np.linalg.inv(damped), rel=1e-9, abs=1e-12)
