"""A user's measured kernel latencies (CSV or parquet) in the long format of :mod:`.measurements`.

:func:`load_measurements` checks every column against the schema and names the file, the
column and the rows of the first problem; :func:`save_measurements` writes a table back.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ..dtypes import DTYPE_BYTES
from ..errors import ConfigError
from ..userfile import check_readable
from .measurements import (
    _LATENCY_HELP,
    COLUMNS,
    LATENCY_UNITS,
    OP_REQUIRED_COLUMNS,
    OPS,
    SHAPE_COLUMNS,
    STRING_COLUMNS,
    _map_strings,
    _obj,
    _table_from_columns,
    conform,
    normalize_dtype,
)

def _read_raw(path: Path) -> pa.Table:
    suffix = path.suffix.lower()
    check_readable(path)
    try:
        if suffix == ".parquet":
            return pq.read_table(path)
        if suffix == ".csv":
            return pacsv.read_csv(
                path,
                convert_options=pacsv.ConvertOptions(
                    column_types={c: pa.string() for c in STRING_COLUMNS},
                    strings_can_be_null=False,
                ),
            )
    except (pa.ArrowInvalid, OSError) as exc:
        kind = "parquet" if suffix == ".parquet" else "CSV"
        raise ConfigError(path, None, f"not a readable {kind} file: {exc}") from None
    raise ConfigError(path, None, f"unknown file type '{suffix}'; expected a .csv or .parquet file")


def _row_hint(mask: np.ndarray) -> str:
    rows = np.flatnonzero(mask)[:3] + 1
    more = int(mask.sum()) - len(rows)
    return "data row " + ", ".join(str(r) for r in rows) + (f" (and {more} more)" if more > 0 else "")


def _as_int_column(path: Path, raw: pa.Table, name: str) -> np.ndarray:
    col = raw.column(name)
    if pa.types.is_integer(col.type):
        return np.asarray(pc.fill_null(col, 0).to_numpy(), dtype=np.int64)
    if pa.types.is_floating(col.type) or pa.types.is_null(col.type):
        arr = np.asarray(pc.fill_null(col.cast(pa.float64()), 0.0).to_numpy(), dtype=np.float64)
    else:
        try:
            strs = _obj(col)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise ConfigError(path, name, f"expected whole numbers, got a {col.type} column") from None
        arr = np.zeros(len(strs), dtype=np.float64)
        unparsable = np.zeros(len(strs), dtype=bool)
        for i, text in enumerate(strs):
            text = text.strip()
            try:
                arr[i] = float(text) if text else 0.0
            except ValueError:
                unparsable[i] = True
        if unparsable.any():
            first = strs[np.flatnonzero(unparsable)[0]]
            raise ConfigError(path, name, f"{_row_hint(unparsable)}: expected a whole number, got '{first}'")
    bad = ~np.isfinite(arr) | (arr != np.round(arr))
    if bad.any():
        raise ConfigError(path, name, f"{_row_hint(bad)}: expected a whole number")
    return arr.astype(np.int64)


def _latency_column(path: Path, names: Sequence[str]) -> str:
    lat_cols = [c for c in names if c == "latency" or c.startswith("latency_")]
    for c in lat_cols:
        if c not in LATENCY_UNITS:
            problem = (
                "latency column without a unit"
                if c == "latency"
                else f"unknown latency unit '{c[len('latency_'):]}'"
            )
            raise ConfigError(path, c, f"{problem}; accepted latency columns: {_LATENCY_HELP}")
    if len(lat_cols) > 1:
        raise ConfigError(path, lat_cols[1], f"more than one latency column ({', '.join(lat_cols)}); give exactly one")
    if not lat_cols:
        raise ConfigError(
            path,
            "latency_s",
            f"required column missing; expected columns: device, op, one of {_LATENCY_HELP}, "
            "and the shape columns of each op",
        )
    return lat_cols[0]


def load_measurements(path: str | Path) -> pa.Table:
    """Read measurements in the long format from a ``.csv`` or ``.parquet`` file.

    Required: ``device``, ``op``, one latency column (``latency_s``, ``latency_ms`` or
    ``latency_us``; converted to seconds), and the shape columns the file's ops need
    (:data:`OP_REQUIRED_COLUMNS`, e.g. ``m, n, k`` for gemm rows). Other columns of
    :data:`SCHEMA` are optional (0 / "" when absent); columns outside the schema are
    ignored. dtype spellings are normalized (``bfloat16`` -> ``bf16``). Missing
    derived values are filled in: attention / mla_prefill ``num_kv_heads`` 0 ->
    ``num_heads`` (mla_decode: 1);
    decode ``seq_len`` 0 -> 1; prefill ``kv_len`` 0 -> ``seq_len``; ``framework``
    "" -> "user"; ``source`` "" -> the file's path.

    Problems raise :class:`~infersim.errors.ConfigError` naming the file and column.
    """
    path = Path(path)
    raw = _read_raw(path)
    names = raw.column_names
    lat_col = _latency_column(path, names)
    for c in ("device", "op"):
        if c not in names:
            raise ConfigError(path, c, "required column missing; expected columns: " + _expected_columns_text())
    n = raw.num_rows
    cols: dict[str, object] = {}

    for c in STRING_COLUMNS:
        if c in names:
            cols[c] = _obj(_map_strings(raw.column(c), str.strip))

    ops = cols["op"]
    bad = ~np.isin(ops.astype(str), OPS)
    if bad.any():
        first = ops[np.flatnonzero(bad)[0]]
        raise ConfigError(path, "op", f"{_row_hint(bad)}: unknown op '{first}'; expected one of {', '.join(OPS)}")
    bad = cols["device"].astype(str) == ""
    if bad.any():
        raise ConfigError(path, "device", f"{_row_hint(bad)}: empty device name")

    present_ops = sorted(set(ops.tolist()), key=OPS.index)
    for op in present_ops:
        for c in OP_REQUIRED_COLUMNS[op]:
            if c not in names:
                raise ConfigError(
                    path,
                    c,
                    f"required column missing (the file has '{op}' rows); expected columns for {op}: "
                    + ", ".join(("device", "op") + OP_REQUIRED_COLUMNS[op])
                    + f", and one of {_LATENCY_HELP}",
                )

    for c in SHAPE_COLUMNS:
        if c in names:
            arr = _as_int_column(path, raw, c)
            if (arr < 0).any():
                raise ConfigError(path, c, f"{_row_hint(arr < 0)}: must not be negative")
            cols[c] = arr
    for op in present_ops:
        rows = ops == op
        for c in OP_REQUIRED_COLUMNS[op]:
            bad = rows & (cols[c] <= 0)
            if bad.any():
                raise ConfigError(path, c, f"{_row_hint(bad)} ({op}): must be a positive whole number")

    for c in ("dtype", "kv_dtype"):
        if c in cols:
            vals = cols[c]
            norm = _obj(_map_strings(vals, lambda v: "" if v == "" else (normalize_dtype(v) or "?")))
            bad = norm == "?"
            if bad.any():
                first = vals[np.flatnonzero(bad)[0]]
                raise ConfigError(
                    path, c, f"{_row_hint(bad)}: unknown dtype '{first}'; expected one of {', '.join(DTYPE_BYTES)}"
                )
            cols[c] = norm

    lat_arr = raw.column(lat_col)
    try:
        lat = np.asarray(pc.fill_null(lat_arr.cast(pa.float64()), math.nan).to_numpy(), dtype=np.float64)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise ConfigError(path, lat_col, "expected numbers") from None
    bad = ~np.isfinite(lat) | (lat <= 0)
    if bad.any():
        raise ConfigError(path, lat_col, f"{_row_hint(bad)}: latency must be a positive number")
    cols["latency_s"] = lat * LATENCY_UNITS[lat_col]

    # fill what is derivable
    zeros = np.zeros(n, dtype=np.int64)
    heads = cols.get("num_heads", zeros)
    is_attn = np.isin(ops.astype(str), ("attention_prefill", "attention_decode", "mla_prefill"))
    kvh = cols.get("num_kv_heads", zeros)
    kvh = np.where(is_attn & (kvh == 0), heads, kvh)
    cols["num_kv_heads"] = np.where((ops == "mla_decode") & (kvh == 0), 1, kvh)  # MQA over the latent
    is_decode = np.isin(ops.astype(str), ("attention_decode", "mla_decode"))
    seq = cols.get("seq_len", zeros)
    cols["seq_len"] = np.where(is_decode & (seq == 0), 1, seq)
    is_prefill = np.isin(ops.astype(str), ("attention_prefill", "mla_prefill"))
    kv = cols.get("kv_len", zeros)
    cols["kv_len"] = np.where(is_prefill & (kv == 0), cols["seq_len"], kv)
    fw = cols.get("framework", np.full(n, "", dtype=object))
    cols["framework"] = np.where(fw == "", "user", fw).astype(object)
    src = cols.get("source", np.full(n, "", dtype=object))
    cols["source"] = np.where(src == "", str(path), src).astype(object)
    return _table_from_columns(cols, n)


def _expected_columns_text() -> str:
    return f"device, op, one of {_LATENCY_HELP}, and the shape columns of each op (optional: " + ", ".join(
        c for c in COLUMNS if c not in ("device", "op", "latency_s")
    ) + ")"


def save_measurements(table: pa.Table, path: str | Path) -> Path:
    """Write ``table`` (conformed to :data:`SCHEMA`) to ``path``; .parquet or .csv by suffix."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".parquet", ".csv"):
        raise ConfigError(path, None, f"unknown file type '{suffix}'; expected a .csv or .parquet file")
    table = conform(table)
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".parquet":
        pq.write_table(table, path)
    else:
        pacsv.write_csv(table, path)
    return path
