"""How fast are the fidelity pieces? Prints rows/s of prediction and the time of one calibration.

Usage: python benchmarks/bench_fidelity.py

Uses aiconfigurator-core's H100 SXM tables when installed, else a synthetic GEMM table.
1. build: measurement rows -> step-graph operator tables (done once per table);
2. predict: cost every row on a device (what every fit evaluation does);
3. calibrate: the full staged fit on the training split (<= 20,000 rows per stage).
"""

from __future__ import annotations

import itertools
import time

import numpy as np

from infersim.fidelity import aiconfigurator_systems_dir, build_kernels, calibrate, deterministic_split
from infersim.fidelity.measurements import _table_from_columns
from infersim.hardware import get_device


def _table():
    if aiconfigurator_systems_dir() is not None:
        from infersim.fidelity import load_aiconfigurator

        return load_aiconfigurator(devices="h100-sxm"), "aiconfigurator-core h100-sxm"
    shapes = list(itertools.product((1, 8, 64, 512, 4096), (512, 4096, 14336), (512, 4096, 8192), ("bf16", "fp8")))
    n = len(shapes)
    cols = {"device": "h100-sxm", "op": "gemm", "m": [s[0] for s in shapes], "n": [s[1] for s in shapes],
            "k": [s[2] for s in shapes], "dtype": np.asarray([s[3] for s in shapes], dtype=object),
            "latency_s": np.full(n, 1e-4)}
    return _table_from_columns(cols, n), "synthetic GEMMs"


def main() -> None:
    table, what = _table()
    device = get_device("h100-sxm")
    t0 = time.perf_counter()
    kernels = build_kernels(table)
    t_build = time.perf_counter() - t0
    best = min(_timed(lambda: kernels.predict(device)) for _ in range(5))
    train, _ = deterministic_split(table)
    t0 = time.perf_counter()
    calibrate(table.filter(train), device)
    t_fit = time.perf_counter() - t0
    print(f"{what}: {table.num_rows} rows")
    print(f"build operator tables: {t_build:.2f} s ({table.num_rows / t_build / 1e3:.0f} k rows/s)")
    print(f"predict all rows:      {best * 1e3:.1f} ms ({table.num_rows / best / 1e6:.1f} M rows/s)")
    print(f"calibrate (train split): {t_fit:.1f} s")


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


if __name__ == "__main__":
    main()
