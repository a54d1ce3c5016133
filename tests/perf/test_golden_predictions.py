"""The efficiency model's predictions are the same bit for bit as those recorded before it was
split into sections (``tests/perf/golden_predictions.py`` explains the grid and how it was
recorded): estimates, step costs, the serving step-time model, fidelity kernel predictions on
six GPUs with shipped, calibrated and every-term profiles, and a short calibration."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pyarrow", reason="the recorded kernel rows are parquet (pip install 'infersim[test]')")

from tests.perf import golden_predictions as golden  # noqa: E402


@pytest.fixture(scope="module")
def recorded() -> dict[str, np.ndarray]:
    with np.load(golden.DATA / "predictions.npz") as data:
        return {k: data[k] for k in data.files}


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and a.dtype.kind == b.dtype.kind and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")


def test_predictions_unchanged_bit_for_bit(recorded):
    now = golden.compute()
    expected = {k for k in recorded if not k.startswith("calibration/")}
    assert set(now) == expected
    changed = [k for k in sorted(now) if not _same(now[k], recorded[k])]
    assert not changed, f"{len(changed)} of {len(now)} recorded predictions changed, e.g. {changed[:5]}"


def test_calibration_unchanged_bit_for_bit(recorded):
    pytest.importorskip("scipy", reason="calibration needs scipy (pip install 'infersim[test]')")
    now = golden.calibration()
    changed = [k for k in sorted(now) if not _same(now[k], recorded[k])]
    assert not changed, f"calibration results changed: {changed}"
