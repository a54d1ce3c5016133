"""Measured kernel latencies in one long format.

Every measurement source (aiconfigurator-core's bundled GPU tables, a user's CSV or
parquet file) becomes a :class:`pyarrow.Table` with exactly the columns of
:data:`SCHEMA`: identity (``device``, ``op``, ``framework``, ``source``), the shape
columns of every op (a column an op does not use holds 0, a string column ""),
``dtype`` / ``kv_dtype`` / ``variant``, and ``latency_s`` in seconds.

Shape columns, per op (see DATA.md for how aiconfigurator's columns map onto them):

* ``gemm``: ``m`` (rows of the activation, i.e. tokens), ``n`` (output features),
  ``k`` (input features): ``[m, k] @ [k, n]``.
* ``attention_prefill`` / ``attention_decode`` / ``mla_prefill`` / ``mla_decode``: one
  attention layer on one device: ``batch`` sequences, each with ``seq_len`` new (query)
  tokens attending over ``kv_len`` tokens (cached + new); ``num_heads`` /
  ``num_kv_heads`` are the heads computed on this device, ``head_dim`` the q/k head size.
* ``moe``: one MoE layer on one device: ``tokens`` entering the layer on this device
  (before top-k expansion), full-model ``hidden`` / ``inter`` sizes, ``topk``,
  ``num_experts`` (global), and the layer's ``tp`` / ``ep`` degrees.
* collectives (``allreduce``, ``allgather``, ``reducescatter``, ``alltoall``, ``p2p``):
  ``num_devices`` and ``message_bytes``, the nccl-tests "size": the full tensor each
  device holds for all-reduce, the gathered output for all-gather, the unscattered
  input for reduce-scatter, the whole send buffer for all-to-all.
* ``elementwise``: ``tokens`` x ``hidden`` elements.

``variant`` is "" for the plain kernel of a shape and dtype, otherwise a comma-joined
description of what else distinguishes the row (``fp8_block``, ``window=128``,
``dist=power_law_1.2``, ``nongated``, ...), so that (op, shape, dtype, kv_dtype,
variant) identifies a row within a device.

This module holds the schema and the table helpers; :mod:`.aic_tables` reads
aiconfigurator-core's tables into it and :mod:`.measurement_files` a user's files.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..dtypes import DTYPE_BYTES

# --------------------------------------------------------------------------- schema

#: the ops a measurement row can describe
OPS: tuple[str, ...] = (
    "gemm",
    "attention_prefill",
    "attention_decode",
    "mla_prefill",
    "mla_decode",
    "moe",
    "allreduce",
    "allgather",
    "reducescatter",
    "alltoall",
    "p2p",
    "elementwise",
)

COLLECTIVE_OPS: tuple[str, ...] = ("allreduce", "allgather", "reducescatter", "alltoall", "p2p")

#: identity columns (strings)
ID_COLUMNS: tuple[str, ...] = ("device", "op", "framework", "source")
#: shape columns (int64; 0 where an op does not use the column)
SHAPE_COLUMNS: tuple[str, ...] = (
    "m",
    "n",
    "k",
    "batch",
    "seq_len",
    "kv_len",
    "num_heads",
    "num_kv_heads",
    "head_dim",
    "tokens",
    "hidden",
    "inter",
    "topk",
    "num_experts",
    "tp",
    "ep",
    "num_devices",
    "message_bytes",
)
#: dtype / variant columns (strings; "" where not applicable)
KIND_COLUMNS: tuple[str, ...] = ("dtype", "kv_dtype", "variant")
STRING_COLUMNS: tuple[str, ...] = ID_COLUMNS + KIND_COLUMNS
COLUMNS: tuple[str, ...] = ID_COLUMNS + SHAPE_COLUMNS + KIND_COLUMNS + ("latency_s",)

SCHEMA = pa.schema(
    [pa.field(c, pa.string(), nullable=False) for c in ID_COLUMNS]
    + [pa.field(c, pa.int64(), nullable=False) for c in SHAPE_COLUMNS]
    + [pa.field(c, pa.string(), nullable=False) for c in KIND_COLUMNS]
    + [pa.field("latency_s", pa.float64(), nullable=False)]
)

#: columns that identify a measured configuration on a device (everything but the
#: result and where it came from)
KEY_COLUMNS: tuple[str, ...] = ("device", "op") + SHAPE_COLUMNS + KIND_COLUMNS

#: shape columns a user file must have when it holds rows of that op
OP_REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "gemm": ("m", "n", "k"),
    "attention_prefill": ("batch", "seq_len", "num_heads", "head_dim"),
    "attention_decode": ("batch", "kv_len", "num_heads", "head_dim"),
    "mla_prefill": ("batch", "seq_len", "num_heads"),
    "mla_decode": ("batch", "kv_len", "num_heads"),
    "moe": ("tokens", "hidden", "inter", "topk", "num_experts"),
    "allreduce": ("num_devices", "message_bytes"),
    "allgather": ("num_devices", "message_bytes"),
    "reducescatter": ("num_devices", "message_bytes"),
    "alltoall": ("num_devices", "message_bytes"),
    "p2p": ("message_bytes",),
    "elementwise": ("tokens", "hidden"),
}

#: accepted latency columns and their factor to seconds
LATENCY_UNITS: dict[str, float] = {"latency_s": 1.0, "latency_ms": 1e-3, "latency_us": 1e-6}
_LATENCY_HELP = "latency_s (seconds), latency_ms (milliseconds) or latency_us (microseconds)"

# ------------------------------------------------------------------ dtype names

#: dtype spellings seen in measurement files -> infersim dtype names
DTYPE_ALIASES: dict[str, str] = {
    "fp32": "fp32",
    "float32": "fp32",
    "float": "fp32",
    "tf32": "tf32",
    "bf16": "bf16",
    "bfloat16": "bf16",
    "fp16": "fp16",
    "float16": "fp16",
    "half": "fp16",
    "fp8": "fp8",
    "fp8_e4m3": "fp8",
    "float8_e4m3fn": "fp8",
    "e4m3": "fp8",
    "int8": "int8",
    "fp4": "fp4",
    "nvfp4": "fp4",
    "mxfp4": "fp4",
    "int4": "int4",
}

def normalize_dtype(name: str) -> str | None:
    """infersim's name for a dtype spelling (``'bfloat16'`` -> ``'bf16'``); None if unknown."""
    key = name.strip().lower()
    if key in DTYPE_ALIASES:
        return DTYPE_ALIASES[key]
    if key in DTYPE_BYTES:
        return key
    return None


# ------------------------------------------------------------- table helpers


def empty_table() -> pa.Table:
    """A table with the measurement schema and no rows."""
    return SCHEMA.empty_table()


def _const_str(value: str, n: int) -> pa.Array:
    return pa.array([value], pa.string()).take(pa.array(np.zeros(n, dtype=np.int64)))


def _strings(values) -> pa.Array:
    """Any string column (pyarrow or numpy) as a pyarrow string array without nulls."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if not isinstance(values, pa.Array):
        values = pa.array(np.asarray(values, dtype=object), pa.string())
    values = values.cast(pa.string())
    if values.null_count:
        values = pc.fill_null(values, "")
    return values


def _obj(values) -> np.ndarray:
    """A string column as a numpy object array."""
    return np.asarray(_strings(values).to_numpy(zero_copy_only=False), dtype=object)


def _codes(values) -> tuple[np.ndarray, list[str]]:
    """(code per row, distinct strings) of a string column; codes index the strings."""
    enc = pc.dictionary_encode(_strings(values))
    codes = np.asarray(enc.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
    return codes, enc.dictionary.to_pylist()


def _map_strings(values, fn) -> pa.Array:
    """Apply ``fn`` once per distinct string; returns a pyarrow string array."""
    codes, uniq = _codes(values)
    return pa.array([fn(u) for u in uniq], pa.string()).take(pa.array(codes))


def _map_numbers(values, fn) -> np.ndarray:
    """Apply ``fn`` (str -> number) once per distinct string; returns float64."""
    codes, uniq = _codes(values)
    return np.asarray([fn(u) for u in uniq] or [0.0], dtype=np.float64)[codes]


def _int_labels(values: np.ndarray, fmt) -> pa.Array:
    """``fmt(int)`` per row, computed once per distinct value."""
    uniq, inv = np.unique(values, return_inverse=True)
    return pa.array([fmt(int(u)) for u in uniq], pa.string()).take(pa.array(inv.reshape(-1)))


def _join_variants(*parts) -> pa.Array:
    """Row-wise ','.join of the non-empty strings of several string columns."""
    n = len(parts[0])
    if n == 0:
        return pa.array([], pa.string())
    codes, uniqs = zip(*(_codes(p) for p in parts))
    dims = [len(u) for u in uniqs]
    combo = np.ravel_multi_index(codes, dims)
    cu, cinv = np.unique(combo, return_inverse=True)
    idx = np.unravel_index(cu, dims)
    joined = [
        ",".join(s for s in (uniqs[j][idx[j][i]] for j in range(len(parts))) if s) for i in range(len(cu))
    ]
    return pa.array(joined, pa.string()).take(pa.array(cinv.reshape(-1)))


def _table_from_columns(columns: Mapping[str, object], nrows: int) -> pa.Table:
    """Build a schema-conforming table; columns not given are filled with 0 / ""."""
    arrays = []
    for field in SCHEMA:
        values = columns.get(field.name)
        if field.type == pa.string():
            if values is None:
                values = ""
            arrays.append(_const_str(values, nrows) if isinstance(values, str) else _strings(values))
        elif values is None:
            arrays.append(pa.array(np.zeros(nrows, dtype=np.int64 if field.type == pa.int64() else np.float64)))
        elif isinstance(values, (pa.Array, pa.ChunkedArray)):
            arrays.append(values.cast(field.type))
        elif field.type == pa.int64():
            arrays.append(pa.array(np.asarray(values, dtype=np.int64)))
        else:
            arrays.append(pa.array(np.asarray(values, dtype=np.float64)))
    return pa.Table.from_arrays(arrays, schema=SCHEMA)


def _np(table: pa.Table, name: str) -> np.ndarray:
    col = table.column(name)
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        return _obj(col)
    return col.to_numpy()


def _string_hash64(values: Iterable[str]) -> np.ndarray:
    return np.asarray(
        [int.from_bytes(hashlib.blake2b(v.encode("utf-8"), digest_size=8).digest(), "little") for v in values],
        dtype=np.uint64,
    )


_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _mix64(z: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer, element-wise on uint64 (wraps modulo 2**64)."""
    z = z ^ (z >> np.uint64(30))
    z = z * _M1
    z = z ^ (z >> np.uint64(27))
    z = z * _M2
    return z ^ (z >> np.uint64(31))


def hash_rows(table: pa.Table, columns: Sequence[str], seed: int = 0) -> np.ndarray:
    """A stable 64-bit hash of each row's values in ``columns`` (uint64 array).

    Depends only on the values (and column names and ``seed``), not on the row's
    position, the other rows, the platform or the Python process.
    """
    n = table.num_rows
    with np.errstate(over="ignore"):
        h = np.full(n, _mix64(np.asarray([seed & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64))[0], dtype=np.uint64)
        for name in columns:
            col = table.column(name)
            if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
                codes, uniq = _codes(col)
                v = _string_hash64(uniq)[codes] if n else np.zeros(0, dtype=np.uint64)
            else:
                arr = col.to_numpy()
                if arr.dtype.kind == "f":
                    v = arr.astype(np.float64).view(np.uint64)
                else:
                    v = arr.astype(np.int64).view(np.uint64)
            name_h = _string_hash64([name])[0]
            h = _mix64(h ^ _mix64(v ^ name_h))
    return h


def _dedupe_median(table: pa.Table) -> pa.Table:
    """Collapse rows with identical :data:`KEY_COLUMNS` into one with the median latency."""
    n = table.num_rows
    if n < 2:
        return table
    if np.unique(hash_rows(table, KEY_COLUMNS)).size == n:
        return table  # no two rows share a key (distinct hashes imply distinct keys)
    keys = []
    for name in KEY_COLUMNS:
        col = table.column(name)
        keys.append(_codes(col)[0] if pa.types.is_string(col.type) else col.to_numpy())
    lat = _np(table, "latency_s")
    order = np.lexsort([lat] + keys[::-1])  # primary: first key column; latency sorted within a group
    sorted_keys = np.stack([k[order] for k in keys], axis=1)
    new_group = np.ones(n, dtype=bool)
    new_group[1:] = np.any(sorted_keys[1:] != sorted_keys[:-1], axis=1)
    if new_group.all():
        return table
    starts = np.flatnonzero(new_group)
    counts = np.diff(np.append(starts, n))
    lat_sorted = lat[order]
    median = 0.5 * (lat_sorted[starts + (counts - 1) // 2] + lat_sorted[starts + counts // 2])
    out = table.take(pa.array(order[starts]))
    return out.set_column(out.schema.get_field_index("latency_s"), SCHEMA.field("latency_s"), pa.array(median))


def conform(table: pa.Table) -> pa.Table:
    """``table`` with exactly :data:`SCHEMA` (columns in order, types cast, missing ones filled)."""
    n = table.num_rows
    cols = {}
    for field in SCHEMA:
        if field.name in table.column_names:
            col = table.column(field.name)
            if col.null_count:
                col = pc.fill_null(col.cast(field.type), "" if field.type == pa.string() else 0)
            cols[field.name] = col.cast(field.type)
    return _table_from_columns(cols, n)
