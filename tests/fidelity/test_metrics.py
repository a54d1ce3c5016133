"""Error metrics and the deterministic train / test split."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from infersim.fidelity import (
    ErrorSummary,
    ape,
    deterministic_split,
    load_measurements,
    signed_error,
    summarize,
    summarize_groups,
)
from infersim.fidelity.measurements import hash_rows

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "fidelity" / "sample.parquet"


# ------------------------------------------------------------------ metrics


def test_ape_and_signed_error():
    np.testing.assert_allclose(ape([110, 90, 100], [100, 100, 100]), [0.1, 0.1, 0.0])
    np.testing.assert_allclose(signed_error([110, 90, 100], [100, 100, 100]), [0.1, -0.1, 0.0])
    np.testing.assert_allclose(ape([3e-6], [2e-6]), [0.5])


def test_summarize_hand_made_case():
    s = summarize([110, 90, 100], [100, 100, 100])
    assert isinstance(s, ErrorSummary)
    assert s.rows == 3
    assert s.mdape == pytest.approx(0.10)
    assert s.median_signed_bias == pytest.approx(0.0)
    assert s.p90_ape == pytest.approx(0.10)
    assert "MdAPE 10.0%" in str(s)


def test_summarize_bias_sign_and_percentile():
    over = summarize([2.0, 2.0, 2.0], [1.0, 1.0, 1.0])
    assert over.median_signed_bias == pytest.approx(1.0) and over.mdape == pytest.approx(1.0)
    under = summarize([0.5, 0.5], [1.0, 1.0])
    assert under.median_signed_bias == pytest.approx(-0.5)
    # APEs 0, 0.1, ..., 1.0 (11 values): the 90th percentile is 0.9, the median 0.5
    meas = np.ones(11)
    s = summarize(meas + np.linspace(0, 1, 11), meas)
    assert s.p90_ape == pytest.approx(0.9) and s.mdape == pytest.approx(0.5)


def test_summarize_empty_and_bad_input():
    s = summarize([], [])
    assert s.rows == 0 and math.isnan(s.mdape) and math.isnan(s.p90_ape) and math.isnan(s.median_signed_bias)
    with pytest.raises(ValueError, match="values"):
        summarize([1, 2], [1])
    with pytest.raises(ValueError, match="positive"):
        summarize([1], [0])
    with pytest.raises(ValueError, match="non-finite"):
        summarize([math.nan], [1])


def test_summarize_groups_by_device_and_op():
    table = pa.table(
        {
            "device": ["b", "a", "a", "b", "a", "a"],
            "op": ["gemm", "gemm", "gemm", "moe", "moe", "gemm"],
            "latency_s": [1.0, 1.0, 1.0, 2.0, 4.0, 1.0],
        }
    )
    pred = [1.5, 1.1, 0.9, 2.0, 2.0, 1.0]
    rows = summarize_groups(table, pred)
    assert [(r["device"], r["op"]) for r in rows] == [("a", "gemm"), ("a", "moe"), ("b", "gemm"), ("b", "moe")]
    a_gemm = rows[0]
    assert a_gemm["rows"] == 3
    assert a_gemm["mdape"] == pytest.approx(0.1)
    assert a_gemm["median_signed_bias"] == pytest.approx(0.0)
    assert rows[1]["median_signed_bias"] == pytest.approx(-0.5)
    assert rows[2]["mdape"] == pytest.approx(0.5) and rows[2]["rows"] == 1
    assert rows[3]["mdape"] == pytest.approx(0.0)
    by_op = summarize_groups(table, pred, by=("op",))
    assert [(r["op"], r["rows"]) for r in by_op] == [("gemm", 4), ("moe", 2)]
    # a plain mapping of columns works as well
    as_dict = summarize_groups({k: table.column(k).to_pylist() for k in table.column_names}, pred)
    assert as_dict == rows
    with pytest.raises(ValueError):
        summarize_groups(table, pred[:-1])


def test_summarize_groups_on_the_sample():
    t = load_measurements(SAMPLE)
    meas = t.column("latency_s").to_numpy()
    rows = summarize_groups(t, meas * 1.2)
    assert len(rows) == 20  # 2 devices x 10 ops
    assert sum(r["rows"] for r in rows) == t.num_rows
    for r in rows:
        assert r["mdape"] == pytest.approx(0.2) and r["median_signed_bias"] == pytest.approx(0.2)


# ------------------------------------------------------------------ split


def test_split_is_deterministic_and_about_the_fraction():
    t = load_measurements(SAMPLE)
    train, test = deterministic_split(t)
    train2, test2 = deterministic_split(t)
    np.testing.assert_array_equal(test, test2)
    assert train.dtype == bool and np.all(train ^ test)
    assert 0.12 < test.mean() < 0.28  # ~20 % of ~300 rows


def test_split_fraction_on_many_rows():
    n = 20_000
    rng = np.random.default_rng(0)
    t = pa.table(
        {
            "op": ["gemm"] * n,
            "m": rng.integers(1, 10**6, n),
            "n": rng.integers(1, 10**6, n),
            "k": rng.integers(1, 10**6, n),
            "dtype": ["bf16"] * n,
        }
    )
    _, test = deterministic_split(t, columns=("op", "m", "n", "k", "dtype"))
    assert abs(test.mean() - 0.2) < 0.01
    _, test30 = deterministic_split(t, test_fraction=0.3, columns=("op", "m", "n", "k", "dtype"))
    assert abs(test30.mean() - 0.3) < 0.01
    assert np.all(test30[test])  # a larger fraction keeps the smaller test set inside it


def test_split_depends_on_row_content_only():
    t = load_measurements(SAMPLE)
    _, test = deterministic_split(t)
    # reversing the rows moves the masks with them
    rev = t.take(pa.array(np.arange(t.num_rows)[::-1]))
    _, test_rev = deterministic_split(rev)
    np.testing.assert_array_equal(test_rev, test[::-1])
    # adding a device (same shapes under another name) does not reshuffle existing rows,
    # and a shape is in the same split on every device
    other = t.set_column(t.schema.get_field_index("device"), t.schema.field("device"), pa.array(["h200"] * t.num_rows))
    _, test_both = deterministic_split(pa.concat_tables([t, other]))
    np.testing.assert_array_equal(test_both[: t.num_rows], test)
    np.testing.assert_array_equal(test_both[t.num_rows :], test)
    # latency and source do not matter
    slower = t.set_column(
        t.schema.get_field_index("latency_s"), "latency_s", pa.array(t.column("latency_s").to_numpy() * 3)
    )
    np.testing.assert_array_equal(deterministic_split(slower)[1], test)


def test_split_seed_and_edge_fractions():
    t = load_measurements(SAMPLE)
    _, a = deterministic_split(t, seed=0)
    _, b = deterministic_split(t, seed=1)
    assert not np.array_equal(a, b)
    assert not deterministic_split(t, test_fraction=0.0)[1].any()
    assert deterministic_split(t, test_fraction=1.0)[1].all()
    with pytest.raises(ValueError):
        deterministic_split(t, test_fraction=1.5)


def test_row_hash_is_stable_across_runs_and_platforms():
    # golden values: a change here reshuffles every train / test split
    t = pa.table({"op": ["gemm", "moe"], "m": [128, 0], "dtype": ["bf16", "fp8"]})
    h = hash_rows(t, ("op", "m", "dtype"), seed=0)
    assert h.dtype == np.uint64
    assert [int(x) for x in h] == [8953134670735512343, 15232506924587593530]
