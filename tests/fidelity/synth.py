"""Synthetic measurements: long-format tables built by hand, latencies from a known device."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pyarrow as pa

from infersim.fidelity.kernels import predict
from infersim.fidelity.measurements import _table_from_columns
from infersim.hardware import get_device
from infersim.hardware.device import Device


def rows_table(rows: list[dict], device: str = "h100-sxm") -> pa.Table:
    """A schema-conforming table from row dicts (missing columns 0 / ""; latency_s 1.0 if absent)."""
    keys = sorted({k for r in rows for k in r} | {"latency_s"})
    cols: dict[str, object] = {"device": device, "framework": "synthetic", "source": "tests"}
    for key in keys:
        text = key in ("op", "dtype", "kv_dtype", "variant", "device")
        default = "" if text else (1.0 if key == "latency_s" else 0)
        dtype = object if text else (np.float64 if key == "latency_s" else np.int64)
        cols[key] = np.asarray([r.get(key, default) for r in rows], dtype=dtype)
    return _table_from_columns(cols, len(rows))


def with_latency(table: pa.Table, latency_s: np.ndarray) -> pa.Table:
    i = table.schema.get_field_index("latency_s")
    return table.set_column(i, "latency_s", pa.array(np.asarray(latency_s, dtype=np.float64)))


def with_efficiency(device: Device, **fields) -> Device:
    eff = device.efficiency.model_copy(update=fields)
    return dataclasses.replace(device, efficiency=eff, spec=device.spec.model_copy(update={"efficiency": eff}))


def gemm_rows(dtypes=("bf16", "fp8")) -> list[dict]:
    ms = (1, 3, 8, 16, 32, 64, 100, 128, 200, 256, 512, 1000, 1024, 2048, 4096, 8192)
    nks = ((128, 4096), (512, 512), (1024, 4096), (2560, 2048), (4096, 4096), (4096, 14336), (8192, 1024),
           (14336, 4096), (6144, 8192), (32000, 512))
    return [dict(op="gemm", m=m, n=n, k=k, dtype=d) for d, m, (n, k) in itertools.product(dtypes, ms, nks)]


def attention_rows() -> list[dict]:
    out = []
    for (h, kvh, hd), b in itertools.product(((32, 8, 128), (16, 16, 64), (64, 8, 128), (8, 1, 128)), (1, 4, 16, 64)):
        for s in (16, 128, 512, 2048, 8192):
            out.append(dict(op="attention_prefill", batch=b, seq_len=s, kv_len=s, num_heads=h, num_kv_heads=kvh,
                            head_dim=hd, dtype="bf16", kv_dtype="bf16"))
        for ctx in (16, 256, 2048, 16384):
            out.append(dict(op="attention_decode", batch=b, seq_len=1, kv_len=ctx, num_heads=h, num_kv_heads=kvh,
                            head_dim=hd, dtype="bf16", kv_dtype="bf16"))
    return out


def mla_rows(kv_dtypes=("bf16",), heads=(16, 128)) -> list[dict]:
    out = []
    for kv in kv_dtypes:
        for h, b in itertools.product(heads, (1, 4, 32)):
            for s in (16, 256, 2048):
                out.append(dict(op="mla_prefill", batch=b, seq_len=s, kv_len=s, num_heads=h, num_kv_heads=h,
                                head_dim=192, dtype="bf16", kv_dtype=kv))
            for ctx in (16, 512, 8192, 65536):
                out.append(dict(op="mla_decode", batch=b, seq_len=1, kv_len=ctx, num_heads=h, num_kv_heads=1,
                                head_dim=576, dtype="bf16", kv_dtype=kv))
    return out


def collective_rows() -> list[dict]:
    out = []
    for op, p in itertools.product(("allreduce", "allgather", "reducescatter", "alltoall"), (2, 4, 8)):
        for e in range(9, 31, 2):
            out.append(dict(op=op, num_devices=p, message_bytes=2 ** e, dtype="bf16"))
    return out


#: a "true" H100 efficiency used to generate synthetic latencies
TRUE_GEMM = dict(
    gemm_tiles=[(64, 64), (64, 128), (128, 128), (128, 256)],
    compute_max_fraction_by_dtype={"bf16": 0.74, "fp8": 0.58},
    compute_half_flops=3.0e8,
    memory_max_fraction=0.72,
    memory_half_bytes=8.0e5,
    gemm_k_half=180.0,
    gemm_overhead_us_by_dtype={"bf16": 3.2, "fp8": 9.5},
    gemm_tile_intensity_half=25.0,
)
TRUE_ATTENTION = dict(
    attention_max_fraction_by_dtype={"bf16": 0.47},
    attention_half_flops=5.0e8,
    attention_memory_max_fraction=0.81,
    attention_query_bandwidth_fraction=0.3,
    attention_overhead_us=11.0,
    decode_attention_memory_max_fraction=0.66,
    decode_attention_query_bandwidth_fraction=0.08,
    decode_attention_overhead_us=6.5,
)
#: per-thread-block attention terms (prefill blocks of 128 queries, softmax, decode blocks and parallelism)
TRUE_BLOCKS = dict(
    attention_query_tile=128,
    attention_softmax_fraction=0.07,
    attention_cta_us=2.5,
    decode_attention_cta_us_by_dtype={"bf16": 3.0},
    decode_attention_head_cta_us=1.1,
    decode_attention_parallel_half_by_dtype={"bf16": 4.0},
)
#: MLA kernels apart from the attention ones
TRUE_MLA = dict(mla_overrides={"attention_max_fraction_by_dtype.bf16": 0.55, "attention_half_flops": 2e9,
                               "attention_overhead_us": 14.0,
                               "decode_attention_overhead_us": 8.0, "decode_attention_memory_max_fraction": 0.6})
TRUE_COLLECTIVE = dict(
    collective_bandwidth_fraction_by_kind={"all-reduce": 0.9, "all-gather": 0.6, "reduce-scatter": 0.55,
                                           "all-to-all": 0.5},
    collective_latency_us=0.8,
    collective_overhead_us=4.5,
)


def synthetic(rows: list[dict], true: dict, device: str = "h100-sxm", noise: float = 0.0, seed: int = 0):
    """(table with latencies from ``device`` under efficiency ``true`` (times lognormal noise), the true device)."""
    dev = with_efficiency(get_device(device, efficiency="spec"), **true)
    table = rows_table(rows, device)
    lat = predict(table, dev)
    if noise:
        lat = lat * np.exp(np.random.default_rng(seed).normal(0.0, noise, lat.size))
    return with_latency(table, lat), dev
