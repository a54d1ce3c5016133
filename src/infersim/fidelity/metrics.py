"""Prediction-error metrics and stable fit / validation / test splits.

All metrics are fractions (0.10 = 10 %), computed vectorized with numpy:

* APE (absolute percentage error) = ``|pred - meas| / meas``
* signed error = ``(pred - meas) / meas`` (> 0: the prediction is too slow)
* MdAPE = median APE; p90 APE = 90th percentile (linear interpolation);
  median signed bias = median signed error.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pyarrow as pa

from .measurements import KIND_COLUMNS, SHAPE_COLUMNS, hash_rows

#: the columns that identify a kernel configuration independent of the device:
#: :func:`deterministic_split` hashes these, so one shape is in the same split on
#: every device and adding devices or rows never moves existing rows
SPLIT_COLUMNS: tuple[str, ...] = ("op",) + SHAPE_COLUMNS + KIND_COLUMNS


def _arrays(pred, meas) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(pred, dtype=np.float64).reshape(-1)
    m = np.asarray(meas, dtype=np.float64).reshape(-1)
    if p.shape != m.shape:
        raise ValueError(f"pred has {p.size} values but meas has {m.size}")
    if not np.all(np.isfinite(m) & (m > 0)):
        raise ValueError(f"meas must be positive and finite ({int(np.sum(~(np.isfinite(m) & (m > 0))))} values are not)")
    if not np.all(np.isfinite(p)):
        raise ValueError(
            f"pred has {int(np.sum(~np.isfinite(p)))} non-finite values; mask the rows you cannot predict first"
        )
    return p, m


def signed_error(pred, meas) -> np.ndarray:
    """``(pred - meas) / meas`` per element."""
    p, m = _arrays(pred, meas)
    return (p - m) / m


def ape(pred, meas) -> np.ndarray:
    """Absolute percentage error ``|pred - meas| / meas`` per element, as a fraction."""
    return np.abs(signed_error(pred, meas))


@dataclass(frozen=True)
class ErrorSummary:
    """Error statistics of a set of predictions; fractions (0.1 = 10 %); NaN when ``rows`` is 0."""

    rows: int
    mdape: float
    p90_ape: float
    median_signed_bias: float

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)

    def __str__(self) -> str:
        return (
            f"{self.rows} rows: MdAPE {100 * self.mdape:.1f}%, p90 APE {100 * self.p90_ape:.1f}%, "
            f"median bias {100 * self.median_signed_bias:+.1f}%"
        )


def _summary_of(err: np.ndarray) -> ErrorSummary:
    if err.size == 0:
        return ErrorSummary(0, math.nan, math.nan, math.nan)
    a = np.abs(err)
    return ErrorSummary(
        rows=int(err.size),
        mdape=float(np.median(a)),
        p90_ape=float(np.percentile(a, 90)),
        median_signed_bias=float(np.median(err)),
    )


def summarize(pred, meas) -> ErrorSummary:
    """MdAPE, p90 APE and median signed bias of ``pred`` against ``meas``."""
    return _summary_of(signed_error(pred, meas))


def _column(table, name: str) -> np.ndarray:
    if isinstance(table, pa.Table):
        col = table.column(name)
        if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            return np.asarray(col.to_numpy(zero_copy_only=False), dtype=object)
        return col.to_numpy()
    if isinstance(table, Mapping):
        return np.asarray(table[name])
    raise TypeError(f"expected a pyarrow.Table or a mapping of columns, got {type(table).__name__}")


def _num_rows(table) -> int:
    if isinstance(table, pa.Table):
        return table.num_rows
    return len(next(iter(table.values()))) if table else 0


def summarize_groups(
    table,
    pred,
    by: Sequence[str] = ("device", "op"),
    meas_column: str = "latency_s",
) -> list[dict[str, object]]:
    """One row per distinct value of the ``by`` columns, sorted by them.

    Each row is a dict: the ``by`` values, then ``rows``, ``mdape``, ``p90_ape`` and
    ``median_signed_bias`` (fractions). ``pred`` holds one prediction per table row,
    in the table's units of ``meas_column`` (seconds for ``latency_s``).
    """
    by = (by,) if isinstance(by, str) else tuple(by)
    err = signed_error(pred, _column(table, meas_column))
    n = _num_rows(table)
    if err.size != n:
        raise ValueError(f"pred has {err.size} values but the table has {n} rows")
    if n == 0:
        return []
    if not by:
        return [_summary_of(err).as_dict()]
    codes, uniques = [], []
    for name in by:
        col = _column(table, name)
        u, inv = np.unique(col.astype(str) if col.dtype == object else col, return_inverse=True)
        uniques.append(u)
        codes.append(inv.reshape(-1))
    combo = np.ravel_multi_index(codes, [len(u) for u in uniques])
    order = np.argsort(combo, kind="stable")
    sorted_combo = combo[order]
    starts = np.flatnonzero(np.r_[True, sorted_combo[1:] != sorted_combo[:-1]])
    ends = np.r_[starts[1:], n]
    idx = np.unravel_index(sorted_combo[starts], [len(u) for u in uniques])
    out = []
    for g, (s, e) in enumerate(zip(starts, ends)):
        row: dict[str, object] = {}
        for j, name in enumerate(by):
            v = uniques[j][idx[j][g]]
            row[name] = v.item() if hasattr(v, "item") else v
        row.update(_summary_of(err[order[s:e]]).as_dict())
        out.append(row)
    return out


def deterministic_split(
    table: pa.Table,
    test_fraction: float = 0.2,
    seed: int = 0,
    columns: Sequence[str] = SPLIT_COLUMNS,
) -> tuple[np.ndarray, np.ndarray]:
    """(train_mask, test_mask): boolean arrays, each row in exactly one of them.

    A row is in the test set when a stable 64-bit hash of its ``columns`` (op, shape,
    dtypes, variant; not device, framework, source or latency) falls in the lowest
    ``test_fraction`` of the hash range. So the split of a row never depends on the
    other rows or their order, a kernel shape lands in the same split on every
    device, and ``seed`` picks a different (equally stable) split.
    """
    if not 0.0 <= test_fraction <= 1.0:
        raise ValueError(f"test_fraction must be within [0, 1], got {test_fraction}")
    h = hash_rows(table, columns, seed=seed)
    u = (h >> np.uint64(11)).astype(np.float64) / float(1 << 53)  # uniform in [0, 1)
    test = u < test_fraction
    return ~test, test


#: seed offset of the test split's own hash (independent of the validation split's)
TEST_SEED_OFFSET = 0x7E57


def three_way_split(
    table: pa.Table,
    test_fraction: float = 0.2,
    validation_fraction: float = 0.2,
    seed: int = 0,
    columns: Sequence[str] = SPLIT_COLUMNS,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fit, validation, test) masks, each row in exactly one, decided by hashes of the shape.

    The validation split is :func:`deterministic_split`'s held-out set at ``validation_fraction``
    (with ``seed`` 0 and 20 %: the held-out shapes of earlier rounds, whose scores were watched
    while the efficiency model's structure grew, so they are fit for choosing structure and not
    for reporting). The test split takes, of the other shapes, those whose hash under a second,
    independent salt (``seed + TEST_SEED_OFFSET``) falls in the lowest
    ``test_fraction / (1 - validation_fraction)``: ``test_fraction`` of all shapes in
    expectation, none of them a former held-out shape. The rest is fitted. As with
    :func:`deterministic_split`, a shape lands in the same split on every device and no row's
    split depends on the other rows.
    """
    if not (0.0 <= test_fraction and 0.0 <= validation_fraction and test_fraction + validation_fraction < 1.0):
        raise ValueError(f"test_fraction ({test_fraction}) and validation_fraction ({validation_fraction}) must be "
                         ">= 0 with a sum below 1")
    _, validation = deterministic_split(table, validation_fraction, seed, columns)
    h = hash_rows(table, columns, seed=seed + TEST_SEED_OFFSET)
    u = (h >> np.uint64(11)).astype(np.float64) / float(1 << 53)
    test = ~validation & (u < test_fraction / (1.0 - validation_fraction))
    return ~validation & ~test, validation, test
