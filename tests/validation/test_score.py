"""MdAPE / p90 / bias of the validation, checked on a hand case."""

import math

import pytest

from infersim.validation import load_table
from infersim.validation.predict import RowPrediction
from infersim.validation.score import score


def _prediction(row, device: str, measured: float, predicted: float) -> RowPrediction:
    r = row.model_copy(update={"device": device, "measured_output_tokens_per_s": measured})
    return RowPrediction(r, predicted, runtime="none", device_basis="test", requests=1, simulations=1, wall_s=0.0)


def test_mdape_p90_and_bias_on_a_hand_case():
    base = load_table()[0]
    # errors: +10%, -20%, +50%, 0%  ->  |errors| 0.1, 0.2, 0.5, 0.0
    preds = [_prediction(base, "h100-sxm", 1000.0, 1100.0), _prediction(base, "h100-sxm", 2000.0, 1600.0),
             _prediction(base, "mi300x", 100.0, 150.0), _prediction(base, "mi300x", 400.0, 400.0)]
    report = score(preds, groupings=("device",))
    o = report.overall
    assert o["rows"] == 4
    assert o["mdape"] == pytest.approx(0.15)  # median of 0, 0.1, 0.2, 0.5
    assert o["p90_ape"] == pytest.approx(0.2 + 0.7 * 0.3)  # rank 0.9 * 3 = 2.7 between 0.2 and 0.5
    assert o["median_signed_bias"] == pytest.approx(0.05)  # median of -0.2, 0, 0.1, 0.5
    by = {g["device"]: g for g in report.groups["device"]}
    assert by["h100-sxm"]["rows"] == 2 and by["h100-sxm"]["mdape"] == pytest.approx(0.15)
    assert by["h100-sxm"]["median_signed_bias"] == pytest.approx(-0.05)
    assert by["mi300x"]["mdape"] == pytest.approx(0.25) and by["mi300x"]["p90_ape"] == pytest.approx(0.45)
    rows = report.to_dict()["rows"]
    assert [r["signed_error"] for r in rows] == pytest.approx([0.1, -0.2, 0.5, 0.0])
    assert all(r["runtime"] == "none" and r["device_basis"] == "test" for r in rows)


def test_an_empty_selection_scores_as_nan():
    o = score([]).overall
    assert o["rows"] == 0 and math.isnan(o["mdape"])


def test_the_halves_partition_the_table_and_score_like_their_own_subsets():
    from infersim.validation.score import SPLITS, split_of

    rows = load_table()
    # predictions off by a different amount on every row: -18% .. +29%
    preds = [RowPrediction(r, r.measured_output_tokens_per_s * (1 + 0.01 * (i - 18)), runtime="none",
                           device_basis="test", requests=1, simulations=1, wall_s=0.0) for i, r in enumerate(rows)]
    report = score(preds)
    halves = {h: [p for p in preds if split_of(p.row.id) == h] for h in SPLITS}
    assert sum(len(v) for v in halves.values()) == len(rows)
    # the split depends on the id alone (the bundled table: 25 dev rows, 23 test rows, docs/validation.md)
    assert [len(halves[h]) for h in SPLITS] == [25, 23]
    assert [split_of(p.row.id) for p in preds] == [split_of(r.id) for r in load_table()]
    by_split = {g["split"]: g for g in report.groups["split"]}
    for h in SPLITS:
        own = score(halves[h])
        assert by_split[h]["rows"] == len(halves[h]) and by_split[h]["mdape"] == pytest.approx(own.overall["mdape"])
        assert report.halves[h]["device"] == own.groups["device"]
        assert report.halves[h]["model"] == own.groups["model"]
    assert {r["split"] for r in report.rows_dict()} == set(SPLITS)
