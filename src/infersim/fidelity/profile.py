"""Measure kernels on the local machine in the long format (``infersim profile``).

CPU via numpy (fp32): GEMMs (``x[m, k] @ w[k, n]``), attention written the way numpy
runs it (``softmax(q k^T + causal mask) v``: the unfused attention of the step graph,
rows tagged ``variant = "unfused"``; GQA by grouping the query heads of each KV head),
and a memory-bound elementwise kernel (``y = x * c``: one read, one write). Every
kernel is timed as the median of ``repeats`` samples, one in each of ``repeats`` passes over
the whole grid (after ``warmup`` discarded samples in the first pass): a slow phase of a
shared machine lasting seconds then costs one sample of many kernels, which the median drops,
rather than every sample of the few kernels measured during it (on the 2-core development VM
one such phase made every GEMM with m = 32-64 of a run 2x slower). A sample loops over
distinct copies of the operands (up to four times the last-level
cache in all, at most 256 copies, fewer for long kernels) so that kernels stream from
memory as they do in a model rather than from cache, and lasts at least
``min_sample_s``.

The grids (``--grid``; sizes in elements, fp32):

* ``tiny`` (CI, a few seconds): gemm m in {1, 2, 8, 32, 128, 256} x (n, k) in 8 pairs
  from 128 to 1024; prefill batch {1, 2} x seq {16, 64, 128, 256} x heads {4/4, 8/2}
  (head dim 64); decode batch {1, 4, 16} x context {64, 256, 1024, 2048} x heads
  {8/2, 8/8}; elementwise tokens {1 .. 4096} x hidden {128 .. 8192} up to 4 M elements.
* ``small`` (about a minute): gemm m in {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024} x
  (n, k) in 16 pairs from 128 to 2048; prefill batch {1, 2, 4} x seq {16 .. 512} x heads
  {4/4, 8/2, 16/4} (head dims 64, 128); decode batch {1, 2, 8, 32} x context
  {64 .. 4096} x the same heads; elementwise up to 16 M elements.
* ``full`` (several minutes): ``small`` plus larger GEMMs (n, k up to 4096, m up to 2048),
  prefill seq 1024, decode context 8192 and elementwise up to 64 M elements.

:func:`measure_local_spec` derives a device spec for the machine from two
micro-benchmarks (peak fp32 FLOP/s: the best of large matmuls; memory bandwidth: the
best of large array copies); its ``source`` fields say so. Collective links and power
are placeholders (nothing is measured there).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import glob
import itertools
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from ..errors import InfersimError
from ..hardware.schema import HardwareSpec
from .measurements import _table_from_columns

GRIDS: tuple[str, ...] = ("tiny", "small", "full")


@dataclass(frozen=True)
class Grid:
    gemm_m: tuple[int, ...]
    gemm_nk: tuple[tuple[int, int], ...]
    prefill_batch: tuple[int, ...]
    prefill_seq: tuple[int, ...]
    heads: tuple[tuple[int, int], ...]  # (query heads, kv heads)
    head_dims: tuple[int, ...]
    decode_batch: tuple[int, ...]
    decode_ctx: tuple[int, ...]
    ew_tokens: tuple[int, ...]
    ew_hidden: tuple[int, ...]
    ew_max_elems: int
    copy_budget_bytes: int
    spec_matmul_n: int


_NK_TINY = ((128, 128), (128, 512), (512, 128), (256, 256), (512, 512), (256, 1024), (1024, 256), (1024, 1024))
_NK_SMALL = _NK_TINY + ((128, 2048), (2048, 128), (384, 768), (768, 384), (1536, 512), (512, 1536), (2048, 1024),
                        (1024, 2048))


def grid(name: str) -> Grid:
    """The shapes of a named grid (see the module docstring)."""
    if name == "tiny":
        return Grid((1, 2, 8, 32, 128, 256), _NK_TINY, (1, 2), (16, 64, 128, 256), ((4, 4), (8, 2)), (64,),
                    (1, 4, 16), (64, 256, 1024, 2048), (1, 4, 16, 64, 256, 1024, 4096), (128, 512, 2048, 8192),
                    4 << 20, 16 << 20, 1024)
    if name == "small":
        return Grid((1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024), _NK_SMALL, (1, 2, 4), (16, 32, 64, 128, 256, 512),
                    ((4, 4), (8, 2), (16, 4)), (64, 128), (1, 2, 8, 32), (64, 128, 256, 512, 1024, 2048, 4096),
                    (1, 4, 16, 64, 256, 1024, 4096, 16384), (128, 512, 2048, 8192), 16 << 20, 128 << 20, 2048)
    if name == "full":
        g = grid("small")
        return Grid(g.gemm_m + (2048,), g.gemm_nk + ((4096, 4096), (4096, 1024), (1024, 4096)), g.prefill_batch,
                    g.prefill_seq + (1024,), g.heads, g.head_dims, g.decode_batch, g.decode_ctx + (8192,),
                    g.ew_tokens + (65536,), g.ew_hidden, 64 << 20, 256 << 20, 2048)
    raise InfersimError(f"unknown grid '{name}'; expected one of {', '.join(GRIDS)}")


# ------------------------------------------------------------------ timing


def time_kernel(run: Callable[[int], object], copies: int, *, warmup: int, repeats: int,
                min_sample_s: float = 2e-4, max_sample_s: float = 5e-3,
                plan: dict | None = None, key: object = None) -> float:
    """Median seconds per call of ``run(i)`` (``i`` picks the operand copy), over ``repeats``
    samples after ``warmup``. A sample cycles through the copies (fewer when one pass would
    exceed ``max_sample_s``: a long kernel is not cache-sensitive) for at least ``min_sample_s``.
    ``plan[key]`` keeps the (copies, rounds) found on the first call for the later passes."""
    run(0)
    if plan is not None and key in plan:
        copies, rounds = plan[key]
    else:
        t0 = time.perf_counter()
        run(0)
        call = time.perf_counter() - t0
        copies = int(np.clip(max_sample_s / max(call, 1e-9), 1, copies))
        rounds = 1
        t0 = time.perf_counter()
        for i in range(copies):
            run(i)
        one = time.perf_counter() - t0
        if one < min_sample_s:
            rounds = int(np.ceil(min_sample_s / max(one, 1e-7)))
        if plan is not None:
            plan[key] = (copies, rounds)
    samples = []
    for s in range(warmup + repeats):
        t0 = time.perf_counter()
        for _ in range(rounds):
            for i in range(copies):
                run(i)
        dt = (time.perf_counter() - t0) / (rounds * copies)
        if s >= warmup:
            samples.append(dt)
    return float(np.median(samples))


def _cache_bytes() -> tuple[int, int]:
    """(largest cache level, sum of the cache levels of one core) in bytes, from sysfs (Linux)."""
    sizes = []
    for index in sorted(glob.glob("/sys/devices/system/cpu/cpu0/cache/index*")):
        try:
            with open(os.path.join(index, "type")) as f:
                if f.read().strip() == "Instruction":
                    continue
            with open(os.path.join(index, "size")) as f:
                text = f.read().strip().upper()
        except OSError:
            continue
        scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
        try:
            sizes.append(int(text.rstrip("KMG")) * scale)
        except ValueError:
            continue
    return (max(sizes), sum(sizes)) if sizes else (32 << 20, 33 << 20)


def _copies(bytes_per_call: float, budget: int) -> int:
    """Operand copies so that a pass over them exceeds ``budget`` bytes (at most 256)."""
    budget = max(budget, 4 * _cache_bytes()[0])  # well beyond the last-level cache
    return int(np.clip(np.ceil(budget / max(bytes_per_call, 1.0)), 1, 256))


def _rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def _rand(rng: np.random.Generator, shape, dtype=np.float32) -> np.ndarray:
    """Operands in [-1, 1): the values do not change CPU kernel speed, only need to be finite."""
    return (rng.random(shape, dtype=dtype) * 2 - 1).astype(dtype, copy=False)


class _Pool:
    """Distinct operand buffers carved out of one random fp32 array (generated once, grown on
    demand), so that making dozens of operand copies per kernel costs nothing."""

    def __init__(self) -> None:
        self._data = np.zeros(0, dtype=np.float32)
        self._next = 0

    def operands(self, shapes, copies: int) -> list[list[np.ndarray]]:
        """``copies`` sets of arrays of the given shapes, no two sharing memory."""
        sizes = [int(np.prod(s)) for s in shapes]
        need = copies * sum(sizes)
        if need > self._data.size:
            self._data = _rand(_rng(), (max(need, 2 * self._data.size),))
        out, offset = [], 0
        for _ in range(copies):
            group = []
            for shape, size in zip(shapes, sizes):
                group.append(self._data[offset:offset + size].reshape(shape))
                offset += size
            out.append(group)
        return out


def _gemm_rows(g: Grid, warmup: int, repeats: int, pool: _Pool, plan: dict | None = None):
    for m, (n, k) in itertools.product(g.gemm_m, g.gemm_nk):
        nbytes = 4.0 * (m * k + k * n + m * n)
        c = _copies(nbytes, g.copy_budget_bytes)
        ops = pool.operands([(m, k), (k, n)], c)
        out = np.empty((m, n), dtype=np.float32)
        lat = time_kernel(lambda i: np.matmul(ops[i][0], ops[i][1], out=out), c, warmup=warmup, repeats=repeats,
                          plan=plan, key=(m, n, k))
        yield dict(op="gemm", m=m, n=n, k=k, dtype="fp32", latency_s=lat)


def _softmax_inplace(s: np.ndarray) -> None:
    s -= s.max(axis=-1, keepdims=True)
    np.exp(s, out=s)
    s /= s.sum(axis=-1, keepdims=True)


def _attention_fn(q, k, v, mask):
    """Unfused attention: scores = q k^T (+ mask), softmax, @ v; GQA via grouped query heads."""
    scale = np.float32(1.0 / np.sqrt(q.shape[-1]))
    s = np.matmul(q, np.swapaxes(k, -1, -2))
    s *= scale
    if mask is not None:
        s += mask
    _softmax_inplace(s)
    return np.matmul(s, v)


def _attention_rows(g: Grid, warmup: int, repeats: int, pool: _Pool, plan: dict | None = None):
    for (h, kvh), d in itertools.product(g.heads, g.head_dims):
        group = h // kvh
        for b, s in itertools.product(g.prefill_batch, g.prefill_seq):
            # queries of the `group` heads sharing one KV head, stacked: [b, kvh, group * s, d]
            nbytes = 4.0 * (2 * b * h * s * d + 2 * b * kvh * s * d)
            c = _copies(nbytes, g.copy_budget_bytes)
            ops = pool.operands([(b, kvh, group * s, d), (b, kvh, s, d), (b, kvh, s, d)], c)
            causal = np.triu(np.full((s, s), -np.inf, dtype=np.float32), k=1)
            mask = np.tile(causal, (group, 1))
            lat = time_kernel(lambda i: _attention_fn(*ops[i], mask), c, warmup=warmup, repeats=repeats,
                              plan=plan, key=("prefill", h, kvh, d, b, s))
            yield dict(op="attention_prefill", batch=b, seq_len=s, kv_len=s, num_heads=h, num_kv_heads=kvh,
                       head_dim=d, dtype="fp32", kv_dtype="fp32", variant="unfused", latency_s=lat)
        for b, ctx in itertools.product(g.decode_batch, g.decode_ctx):
            nbytes = 4.0 * (2 * b * h * d + 2 * b * kvh * ctx * d)
            c = _copies(nbytes, g.copy_budget_bytes)
            ops = pool.operands([(b, kvh, group, d), (b, kvh, ctx, d), (b, kvh, ctx, d)], c)
            lat = time_kernel(lambda i: _attention_fn(*ops[i], None), c, warmup=warmup, repeats=repeats,
                              plan=plan, key=("decode", h, kvh, d, b, ctx))
            yield dict(op="attention_decode", batch=b, seq_len=1, kv_len=ctx, num_heads=h, num_kv_heads=kvh,
                       head_dim=d, dtype="fp32", kv_dtype="fp32", variant="unfused", latency_s=lat)


def _elementwise_rows(g: Grid, warmup: int, repeats: int, pool: _Pool, plan: dict | None = None):
    scale = np.float32(1.0001)
    for t, hid in itertools.product(g.ew_tokens, g.ew_hidden):
        if t * hid > g.ew_max_elems:
            continue
        c = _copies(8.0 * t * hid, g.copy_budget_bytes)
        ops = pool.operands([(t, hid)], c)
        ys = [np.empty((t, hid), dtype=np.float32) for _ in range(c)]
        lat = time_kernel(lambda i: np.multiply(ops[i][0], scale, out=ys[i]), c, warmup=warmup, repeats=repeats,
                          plan=plan, key=(t, hid))
        yield dict(op="elementwise", tokens=t, hidden=hid, dtype="fp32", latency_s=lat)


@contextlib.contextmanager
def blas_threads(threads: int | None):
    """Limit the BLAS thread pool numpy uses to ``threads`` (None: leave it as it is).

    One thread gives repeatable timings on a small shared machine (a multi-threaded
    GEMM waits for its slowest thread, and a descheduled vCPU makes it 2-20x slower).
    Needs ``threadpoolctl`` (``pip install 'infersim[fidelity]'``).
    """
    if threads is None:
        yield
        return
    if threads < 1:
        raise InfersimError(f"--threads must be >= 1, got {threads}")
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        raise InfersimError("--threads needs threadpoolctl; install it with: "
                            "pip install 'infersim[fidelity]'") from None
    with threadpool_limits(limits=threads, user_api="blas"):
        yield


def profile(grid_name: str = "tiny", *, device_name: str = "local-cpu", warmup: int = 2, repeats: int = 5,
            ops: tuple[str, ...] = ("gemm", "attention", "elementwise"), threads: int | None = None,
            progress=None) -> pa.Table:
    """Measure the grid on this machine; a long-format table (``framework`` = ``numpy``)."""
    if repeats < 1 or warmup < 0:
        raise InfersimError(f"--repeats must be >= 1 and --warmup >= 0, got {repeats} and {warmup}")
    g = grid(grid_name)
    rows: list[dict] = []
    makers = {"gemm": _gemm_rows, "attention": _attention_rows, "elementwise": _elementwise_rows}
    for name in ops:
        if name not in makers:
            raise InfersimError(f"unknown kernel kind '{name}'; expected one of {', '.join(makers)}")
    pools = {name: _Pool() for name in ops}  # operands made once, sliced again on every pass
    plan: dict = {}  # each kernel's copies and rounds per sample, found in the first pass
    with blas_threads(threads):
        for p in range(repeats):  # interleaved: one sample of every kernel per pass
            samples: list[dict] = []
            for name in ops:
                samples.extend(makers[name](g, warmup if p == 0 else 0, 1, pools[name], plan))
            if not rows:
                rows = [dict(r, latency_s=[r["latency_s"]]) for r in samples]
            else:
                for row, sample in zip(rows, samples):
                    row["latency_s"].append(sample["latency_s"])
            if progress:
                progress(f"pass {p + 1}/{repeats}: {len(samples)} kernels", p + 1, repeats)
    for row in rows:
        row["latency_s"] = float(np.median(row["latency_s"]))
    n = len(rows)
    cols: dict[str, object] = {"device": device_name, "framework": "numpy",
                               "source": f"infersim profile --grid {grid_name} ({_dt.date.today().isoformat()})"}
    keys = sorted({k for r in rows for k in r})
    for key in keys:
        default = "" if key in ("op", "dtype", "kv_dtype", "variant") else 0
        cols[key] = np.asarray([r.get(key, default) for r in rows],
                               dtype=object if default == "" else (np.float64 if key == "latency_s" else np.int64))
    return _table_from_columns(cols, n)


# ------------------------------------------------------------------ local spec


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _memory_gb() -> float:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9
    except (ValueError, OSError, AttributeError):  # pragma: no cover
        return 16.0


def measure_local_spec(name: str = "local-cpu", *, matmul_n: int = 1024, copy_bytes: int | None = None,
                       repeats: int = 5, threads: int | None = None) -> HardwareSpec:
    """A device spec for this machine from micro-benchmarks (peak fp32 matmul FLOP/s, copy bandwidth
    of arrays twice the last-level cache, at least 64 MiB), with the BLAS limited to ``threads``
    as the profile is."""
    if copy_bytes is None:
        copy_bytes = max(64 << 20, 2 * _cache_bytes()[0])
    with blas_threads(threads):
        return _measure_local_spec(name, matmul_n, copy_bytes, repeats, threads)


def _measure_local_spec(name: str, matmul_n: int, copy_bytes: int, repeats: int, threads: int | None) -> HardwareSpec:
    rng = _rng()
    a = _rand(rng, (matmul_n, matmul_n), dtype=np.float32)
    b = _rand(rng, (matmul_n, matmul_n), dtype=np.float32)
    out = np.empty_like(a)
    np.matmul(a, b, out=out)
    best = min(_timed(lambda: np.matmul(a, b, out=out)) for _ in range(repeats))
    flops = 2.0 * matmul_n ** 3 / best
    src = np.ones(copy_bytes // 4, dtype=np.float32)
    dst = np.empty_like(src)
    np.copyto(dst, src)
    best_copy = min(_timed(lambda: np.copyto(dst, src)) for _ in range(repeats))
    bandwidth = 2.0 * src.nbytes / best_copy
    cores = _cores() if threads is None else min(threads, _cores())
    today = _dt.date.today().isoformat()
    where = (f"{_cpu_model()}, {cores} {'cores visible' if threads is None else 'BLAS threads'}, "
             f"host {platform.node() or 'unknown'}")
    measured = f"measured by infersim profile on {today} ({where})"
    placeholder = "placeholder: a single host, no collectives measured (infersim profile)"
    spec = {
        "name": name,
        "display_name": f"Local CPU ({_cpu_model()}, {cores} cores)",
        "vendor": "local",
        "category": "cpu",
        "compute": {
            "dense_tflops": {"fp32": round(flops / 1e12, 6)},
            "compute_units": cores,
            "source": f"{measured}: best of {repeats} fp32 numpy matmuls {matmul_n}^3 (peak achieved, not a datasheet)",
        },
        "memory": {
            "capacity_gb": round(_memory_gb(), 2),
            "bandwidth_gb_per_s": round(bandwidth / 1e9, 3),
            "sram_mb": round(_cache_bytes()[1] / 1e6, 3),
            "source": f"{measured}: best of {repeats} copies of {copy_bytes >> 20} MiB (read + write); "
                      "capacity and caches from sysconf / sysfs",
        },
        "scale_up": {"name": "none (single host)", "bandwidth_gb_per_s": round(bandwidth / 1e9, 3), "latency_us": 1.0,
                     "domain_size": 1, "topology": "mesh", "source": placeholder},
        "scale_out": {"name": "none", "bandwidth_gb_per_s": 1.0, "latency_us": 10.0, "domain_size": 1,
                      "topology": "network", "source": placeholder},
        "power": {"tdp_w": 100.0, "source": "placeholder: not measured (infersim profile)"},
        "efficiency": {
            "compute_max_fraction": 0.9,
            "compute_half_flops": 1.0e6,
            "memory_max_fraction": 0.9,
            "memory_half_bytes": 1.0e5,
            "kernel_overhead_us": 2.0,
            "gemm_tile_m": 16,
            "gemm_tile_n": 16,
            "source": "infersim generic defaults for a measured local CPU (uncalibrated); "
                      "infersim calibrate refits these",
        },
    }
    return HardwareSpec.model_validate(spec)


def _timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0
