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
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import yaml

from ..dtypes import DTYPE_BYTES
from ..errors import ConfigError, InfersimError, unknown_name_error
from ..userfile import check_readable

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

#: aiconfigurator quantization recipes -> (infersim dtype of the weights, variant)
#: The plain recipe of each dtype (bf16, fp8 per-tensor, NVFP4) has variant "".
AIC_RECIPES: dict[str, tuple[str, str]] = {
    "bfloat16": ("bf16", ""),
    "float16": ("fp16", ""),
    "half": ("fp16", ""),
    "fp8": ("fp8", ""),
    "fp8_e4m3": ("fp8", ""),
    "int8": ("int8", ""),
    "nvfp4": ("fp4", ""),
    "fp8_block": ("fp8", "fp8_block"),  # fp8 with 128x128 (weights) / 1x128 (activations) block scales
    "int8_wo": ("int8", "int8_wo"),  # weight-only int8, bf16 math
    "int4_wo": ("int4", "int4_wo"),  # weight-only int4 (W4A16), bf16 math
    "sq": ("int8", "sq"),  # SmoothQuant W8A8
    "w4afp8": ("int4", "w4afp8"),  # int4 weights, fp8 activations
    "w4a16_mxfp4": ("fp4", "w4a16_mxfp4"),  # MXFP4 weights, bf16 activations
    "w4a8_mxfp4_mxfp8": ("fp4", "w4a8_mxfp4_mxfp8"),  # MXFP4 weights, MXFP8 activations
}


def normalize_dtype(name: str) -> str | None:
    """infersim's name for a dtype spelling (``'bfloat16'`` -> ``'bf16'``); None if unknown."""
    key = name.strip().lower()
    if key in DTYPE_ALIASES:
        return DTYPE_ALIASES[key]
    if key in DTYPE_BYTES:
        return key
    return None


# ------------------------------------------------------------- device names

#: aiconfigurator system directory -> infersim hardware name
AIC_DEVICE_NAMES: dict[str, str] = {
    "a100_sxm": "a100-sxm-80gb",
    "a100_pcie": "a100-pcie-80gb",
    "a30": "a30",
    "b200_sxm": "b200",
    "b300_sxm": "b300",
    "b60": "arc-pro-b60",
    "gb200": "gb200",
    "gb300": "gb300",
    "h100_pcie": "h100-pcie",
    "h100_sxm": "h100-sxm",
    "h200_sxm": "h200",
    "l4": "l4",
    "l40s": "l40s",
    "rtx_pro_6000_server": "rtx-pro-6000-server",
}


def infersim_device_name(aic_name: str) -> str:
    """infersim's hardware name for an aiconfigurator system name (``'h100_sxm'`` -> ``'h100-sxm'``)."""
    return AIC_DEVICE_NAMES.get(aic_name, aic_name.replace("_", "-"))


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


# ------------------------------------------------------- aiconfigurator data


def aiconfigurator_systems_dir() -> Path | None:
    """The ``systems`` folder of an installed aiconfigurator-core, or None.

    Found without importing the package: ``importlib.util.find_spec`` on a top-level
    name only locates it, and the distribution's file list is the fallback.
    """
    candidates: list[Path] = []
    try:
        spec = importlib.util.find_spec("aiconfigurator_core")
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        candidates += [Path(p) / "systems" for p in spec.submodule_search_locations]
    try:
        dist = importlib.metadata.distribution("aiconfigurator-core")
    except importlib.metadata.PackageNotFoundError:
        dist = None
    if dist is not None:
        candidates.append(Path(str(dist.locate_file("aiconfigurator_core/systems"))))
    for c in candidates:
        if (c / "data").is_dir():
            return c
    return None


_VERSION_RE = re.compile(r"^(\d+(?:\.\d+)*)(?:[.-]?(a|b|rc|dev|post)\.?(\d*))?(.*)$")
_PRE_RANK = {"dev": -4, "a": -3, "b": -2, "rc": -1, None: 0, "post": 1}


def version_key(version: str) -> tuple:
    """Sort key for version directory names (``1.3.0rc20 < 1.3.0 < 1.3.0.post1``)."""
    m = _VERSION_RE.match(version)
    if not m:
        return ((), -9, 0, version)
    release = tuple(int(x) for x in m.group(1).split("."))
    release = release + (0,) * (6 - len(release))
    return (release, _PRE_RANK[m.group(2)], int(m.group(3) or 0), m.group(4))


#: framework preference for framework-specific tables (the first one with data wins)
FRAMEWORK_PREFERENCE: tuple[str, ...] = ("trtllm", "vllm", "sglang")
#: collective-library "frameworks" (tables shared by all serving frameworks)
CCL_FRAMEWORKS: tuple[str, ...] = ("nccl", "oneccl")

# canonical op -> (family folder, file name, converter kind); tried in order
_CCL_OP_NAMES = {"allreduce": "all_reduce", "allgather": "all_gather", "reducescatter": "reduce_scatter", "alltoall": "alltoall"}
_SOURCES: dict[str, list[tuple[str, str, str]]] = {
    "gemm": [("gemm", "gemm_perf.parquet", "gemm")],
    "attention_prefill": [("attention", "context_attention_perf.parquet", "attention")],
    "attention_decode": [("attention", "generation_attention_perf.parquet", "attention")],
    "mla_prefill": [("mla", "context_mla_perf.parquet", "mla_prefill")],
    "mla_decode": [("mla", "generation_mla_perf.parquet", "mla_decode")],
    "moe": [("moe", "moe_perf.parquet", "moe")],
    "allreduce": [("comm", "custom_allreduce_perf.parquet", "custom_allreduce"), ("comm", "*ccl_perf.parquet", "ccl")],
    "allgather": [("comm", "*ccl_perf.parquet", "ccl")],
    "reducescatter": [("comm", "*ccl_perf.parquet", "ccl")],
    "alltoall": [("comm", "*ccl_perf.parquet", "ccl")],
}

#: DeepSeek-V3 MLA dimensions the aiconfigurator MLA collectors hard-code
MLA_QK_HEAD_DIM_PREFILL = 128 + 64  # qk_nope_head_dim + qk_rope_head_dim
MLA_QK_HEAD_DIM_DECODE = 512 + 64  # kv_lora_rank + qk_rope_head_dim (absorbed, MQA over the latent)


def _current_versions(root: Path) -> dict[str, dict[str, str]]:
    """{aic system: {framework: current version}} from query_versions.yaml and the system YAMLs."""
    out: dict[str, dict[str, str]] = {}
    defaults: dict[str, str] = {}
    overrides: dict[str, dict] = {}
    qv = root / "query_versions.yaml"
    if qv.is_file():
        doc = yaml.safe_load(qv.read_text()) or {}
        defaults = {fw: str(v["current"]) for fw, v in (doc.get("defaults") or {}).items() if v and v.get("current")}
        overrides = doc.get("overrides") or {}
    data = root / "data"
    for sysdir in sorted(p for p in data.iterdir() if p.is_dir()):
        cur = dict(defaults)
        for fw, v in (overrides.get(sysdir.name) or {}).items():
            if v and v.get("current"):
                cur[fw] = str(v["current"])
        spec = root / f"{sysdir.name}.yaml"
        if spec.is_file():
            try:
                nccl = ((yaml.safe_load(spec.read_text()) or {}).get("misc") or {}).get("nccl_version")
            except yaml.YAMLError:
                nccl = None
            if nccl:
                cur["nccl"] = str(nccl)
        out[sysdir.name] = cur
    return out


def _find_file(
    systems_dir: Path,
    system: str,
    family: str,
    filename: str,
    frameworks: Sequence[str],
    current: Mapping[str, str],
) -> tuple[str, str, Path] | None:
    """(framework, version, file) of the table to use, or None.

    The first framework in ``frameworks`` that has the file in some version wins;
    within it the "current" version (query_versions.yaml; for nccl the system YAML's
    nccl_version) if that version has the file, else the newest version that has it.
    """
    for fw in frameworks:
        fw_dir = systems_dir / "data" / system / family / fw
        if not fw_dir.is_dir():
            continue
        found: dict[str, Path] = {}
        for vdir in fw_dir.iterdir():
            if not vdir.is_dir():
                continue
            matches = sorted(vdir.glob(filename))
            if matches:
                found[vdir.name] = matches[0]
        if not found:
            continue
        ver = current.get(fw)
        if ver not in found:
            ver = max(found, key=version_key)
        return fw, ver, found[ver]
    return None


def _recipe(values: pa.Array) -> tuple[pa.Array, pa.Array]:
    """(infersim dtype, variant) columns for aiconfigurator recipe names."""

    def dt(v: str) -> str:
        r = AIC_RECIPES.get(v.lower())
        return r[0] if r else ""

    def var(v: str) -> str:
        r = AIC_RECIPES.get(v.lower())
        return r[1] if r else f"quant={v}"

    return _map_strings(values, dt), _map_strings(values, var)


def _dtype_only(values: pa.Array) -> pa.Array:
    return _map_strings(values, lambda v: normalize_dtype(v) or "")


def _int(t: pa.Table, name: str, default: int = 0) -> np.ndarray:
    if name not in t.column_names:
        return np.full(t.num_rows, default, dtype=np.int64)
    return np.asarray(pc.fill_null(t.column(name), default).to_numpy(), dtype=np.int64)


def _str(t: pa.Table, name: str, default: str = "") -> pa.Array:
    if name not in t.column_names:
        return _const_str(default, t.num_rows)
    return pc.fill_null(t.column(name).combine_chunks().cast(pa.string()), default)


def _convert(kind: str, t: pa.Table, op: str) -> dict[str, object]:
    """aiconfigurator table -> canonical columns (without identity columns)."""
    n = t.num_rows
    cols: dict[str, object] = {"op": op}
    if kind == "gemm":
        cols.update(m=_int(t, "m"), n=_int(t, "n"), k=_int(t, "k"))
        cols["dtype"], cols["variant"] = _recipe(_str(t, "gemm_dtype"))
    elif kind == "attention":
        heads = _int(t, "num_heads")
        kv_heads = _int(t, "num_key_value_heads")
        kv_heads = np.where(kv_heads <= 0, heads, kv_heads)  # 0 = MHA in old collectors
        isl, step = _int(t, "isl"), _int(t, "step")
        window = _int(t, "window_size")
        beam = _int(t, "beam_width", 1)
        cols.update(
            batch=_int(t, "batch_size"),
            seq_len=isl,
            kv_len=isl + step,
            num_heads=heads,
            num_kv_heads=kv_heads,
            head_dim=_int(t, "head_dim"),
            dtype=_dtype_only(_str(t, "attn_dtype")),
            kv_dtype=_dtype_only(_str(t, "kv_cache_dtype")),
        )
        cols["variant"] = _join_variants(
            _int_labels(window, lambda w: f"window={w}" if w > 0 else ""),
            _int_labels(beam, lambda b: f"beam={b}" if b > 1 else ""),
        )
    elif kind in ("mla_prefill", "mla_decode"):
        heads = _int(t, "num_heads")
        isl, step = _int(t, "isl"), _int(t, "step")
        prefill = kind == "mla_prefill"
        cols.update(
            batch=_int(t, "batch_size"),
            seq_len=isl,
            kv_len=isl + step,
            num_heads=heads,
            num_kv_heads=heads if prefill else np.ones(n, dtype=np.int64),
            head_dim=np.full(n, MLA_QK_HEAD_DIM_PREFILL if prefill else MLA_QK_HEAD_DIM_DECODE, dtype=np.int64),
            tp=_int(t, "tp_size"),
            dtype=_dtype_only(_str(t, "mla_dtype")),
            kv_dtype=_dtype_only(_str(t, "kv_cache_dtype")),
        )
    elif kind == "moe":
        dtype, recipe_var = _recipe(_str(t, "moe_dtype"))
        kernel = _str(t, "kernel_source")
        dist = _str(t, "distribution", "balanced")
        kvar = _map_strings(kernel, _moe_kernel_variant)
        dvar = _map_strings(dist, lambda d: "" if d in ("", "balanced") else f"dist={d}")
        cols.update(
            tokens=_int(t, "num_tokens"),
            hidden=_int(t, "hidden_size"),
            inter=_int(t, "inter_size"),
            topk=_int(t, "topk"),
            num_experts=_int(t, "num_experts"),
            tp=_int(t, "moe_tp_size"),
            ep=_int(t, "moe_ep_size"),
            dtype=dtype,
            variant=_join_variants(recipe_var, kvar, dvar),
        )
    elif kind == "custom_allreduce":
        dtype = _str(t, "allreduce_dtype", "bfloat16")
        nbytes = _map_numbers(dtype, lambda v: DTYPE_BYTES.get(normalize_dtype(v) or "", 0.0))
        kernel = _str(t, "kernel_source")
        cols.update(
            num_devices=_int(t, "num_gpus"),
            message_bytes=np.round(_int(t, "message_size") * nbytes).astype(np.int64),
            dtype=_dtype_only(dtype),
            variant=_map_strings(kernel, _allreduce_kernel_variant),
        )
    elif kind == "ccl":
        dtype = _str(t, "nccl_dtype")
        nbytes = _map_numbers(dtype, lambda v: DTYPE_BYTES.get(normalize_dtype(v) or "", 0.0))
        cols.update(
            num_devices=_int(t, "num_gpus"),
            message_bytes=np.round(_int(t, "message_size") * nbytes).astype(np.int64),
            dtype=_dtype_only(dtype),
        )
    else:  # pragma: no cover - internal
        raise AssertionError(kind)
    cols["latency_s"] = _np(t, "latency").astype(np.float64) * 1e-3  # aiconfigurator latencies are ms
    return cols


def _moe_kernel_variant(kernel: str) -> str:
    k = kernel.lower()
    if "nongated" in k:
        return "nongated"  # relu2 MoE: up + down projections only, no gate
    if "min_latency" in k:
        return "min_latency"
    if "situ_as_silu" in k:
        return "situ_as_silu"
    return ""


def _allreduce_kernel_variant(kernel: str) -> str:
    k = kernel.lower()
    if k.endswith("eager"):
        return "eager"  # measured outside a CUDA graph
    return ""


def _load_one(
    root: Path, system: str, op: str, frameworks: Sequence[str], current: Mapping[str, str]
) -> pa.Table | None:
    for family, pattern, kind in _SOURCES[op]:
        fws = CCL_FRAMEWORKS if kind == "ccl" else frameworks
        hit = _find_file(root, system, family, pattern, fws, current)
        if hit is None:
            continue
        fw, _ver, path = hit
        table = canonical_rows(pq.read_table(path), kind, op, device=infersim_device_name(system), framework=fw,
                               source="aiconfigurator_core/systems/" + path.relative_to(root).as_posix())
        if table is not None:
            return table
    return None


def canonical_rows(raw: pa.Table, kind: str, op: str, *, device: str, framework: str,
                   source: str) -> pa.Table | None:
    """One aiconfigurator table (``kind`` of :data:`_SOURCES`) as the long format's rows of ``op``:
    collective-library tables filtered to ``op``, rows without a positive latency (or, for a
    collective, without a positive message size) dropped, repeated measurements collapsed to their
    median; None when no row of ``op`` is left."""
    if kind == "ccl":
        if "op_name" not in raw.column_names:
            return None
        raw = raw.filter(pc.equal(raw.column("op_name"), _CCL_OP_NAMES[op]))
        if raw.num_rows == 0:
            return None
    cols = _convert(kind, raw, op)
    lat = cols["latency_s"]
    keep = np.isfinite(lat) & (lat > 0)
    if kind in ("ccl", "custom_allreduce"):
        keep &= cols["message_bytes"] > 0
    table = _table_from_columns({**cols, "device": device, "framework": framework, "source": source}, raw.num_rows)
    if not keep.all():
        table = table.filter(pa.array(keep))
    return _dedupe_median(table) if table.num_rows else None


def _resolve_devices(systems_dir: Path, devices: Iterable[str] | None) -> list[str]:
    systems = sorted(p.name for p in (systems_dir / "data").iterdir() if p.is_dir())
    if devices is None:
        return systems
    by_name = {infersim_device_name(s): s for s in systems}
    by_name.update({s: s for s in systems})
    out = []
    for d in [devices] if isinstance(devices, str) else devices:
        if d not in by_name:
            raise unknown_name_error("device", d, sorted({infersim_device_name(s) for s in systems}))
        out.append(by_name[d])
    return list(dict.fromkeys(out))


#: MoE rows measured under skewed routing, kept with the plain rows (the cost model predicts
#: them with the routing they were measured under, :mod:`infersim.perf.routing`)
ROUTING_VARIANTS: tuple[str, ...] = ("dist=power_law_1.01", "dist=power_law_1.2")


def plain_rows(table: pa.Table) -> pa.Table:
    """The rows of plain kernels (``variant`` "") and of the plain MoE kernels under skewed routing
    (:data:`ROUTING_VARIANTS`)."""
    return table.filter(pc.is_in(table.column("variant"), value_set=pa.array(("",) + ROUTING_VARIANTS)))


def load_aiconfigurator(
    devices: Iterable[str] | str | None = None,
    ops: Iterable[str] | str | None = None,
    framework: str | None = None,
    *,
    include_variants: bool = False,
    systems_dir: str | Path | None = None,
) -> pa.Table:
    """aiconfigurator-core's measured kernel latencies in the long format.

    ``devices``: infersim names (``'h100-sxm'``) or aiconfigurator names (``'h100_sxm'``);
    None = every device with data. ``ops``: names from :data:`OPS`; None = all it has.
    ``framework``: ``'trtllm'``, ``'vllm'`` or ``'sglang'`` to take framework-specific
    tables from that framework only; None = the first of trtllm, vllm, sglang that has
    the table. Collective-library tables (NCCL, oneCCL: allgather, reducescatter,
    alltoall, and allreduce where no framework table exists) are used whatever the
    framework.

    Exactly one table (framework + version) is read per device and op, so no
    configuration is counted twice: the framework's "current" version from the
    package's ``query_versions.yaml`` (NCCL: the system YAML's ``nccl_version``) when
    it has the table, else its newest version that does. Repeated measurements of
    one configuration inside a table are collapsed to their median; rows with a
    non-positive latency are dropped.

    ``include_variants=False`` keeps only rows whose ``variant`` is "" (plain
    kernels: no block-scaled / weight-only / MX quantization, no sliding window,
    balanced MoE routing, CUDA-graph collectives) and the plain MoE kernels measured under
    power-law routing (:data:`ROUTING_VARIANTS`), so each (device, op, shape, dtype,
    kv_dtype, routing) appears once.

    ``systems_dir``: an aiconfigurator ``systems`` folder (default: the installed
    package's, located without importing it).
    """
    if systems_dir is None:
        found = aiconfigurator_systems_dir()
        if found is None:
            raise InfersimError(
                "aiconfigurator-core's data was not found; install it with: pip install aiconfigurator-core"
            )
        root = found
    else:
        root = Path(systems_dir)
        if not (root / "data").is_dir():
            raise InfersimError(f"{root}: not an aiconfigurator systems folder (no data/ folder inside)")
    if ops is None:
        op_list = list(_SOURCES)
    else:
        op_list = [ops] if isinstance(ops, str) else list(ops)
        for op in op_list:
            if op not in OPS:
                raise unknown_name_error("op", op, OPS)
    if framework is None:
        frameworks = FRAMEWORK_PREFERENCE
    else:
        if framework not in FRAMEWORK_PREFERENCE:
            raise unknown_name_error("framework", framework, FRAMEWORK_PREFERENCE)
        frameworks = (framework,)
    tables = []
    current = _current_versions(root)
    for system in _resolve_devices(root, devices):
        for op in op_list:
            if op not in _SOURCES:
                continue  # no aiconfigurator data for this op (p2p, elementwise)
            t = _load_one(root, system, op, frameworks, current.get(system, {}))
            if t is not None and not include_variants:
                t = plain_rows(t)
            if t is not None and t.num_rows:
                tables.append(t)
    if not tables:
        return empty_table()
    return pa.concat_tables(tables).combine_chunks()


# ----------------------------------------------------------------- user files


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
