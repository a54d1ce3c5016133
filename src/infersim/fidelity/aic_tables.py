"""aiconfigurator-core's measured kernel tables in the long format of :mod:`.measurements`.

:func:`load_aiconfigurator` finds the installed package's ``systems`` folder without importing
it (:func:`aiconfigurator_systems_dir`), picks each op's table of the preferred framework and
version, converts it column by column (:func:`canonical_rows`; DATA.md maps the columns) and
collapses repeated measurements of a configuration to their median. The quantization recipes
and system names of the package map to infersim's dtypes, variants and hardware names here.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml

from ..dtypes import DTYPE_BYTES
from ..errors import InfersimError, unknown_name_error
from .measurements import (
    OPS,
    _const_str,
    _dedupe_median,
    _int_labels,
    _join_variants,
    _map_numbers,
    _map_strings,
    _np,
    _table_from_columns,
    empty_table,
    normalize_dtype,
)

# ------------------------------------------------------------- quantization recipes

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
