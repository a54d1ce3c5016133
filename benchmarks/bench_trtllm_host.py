"""Can a host time per step close the TensorRT-LLM rows' gap? A sweep (figures printed, never asserted).

The ``trtllm`` runtime models TensorRT-LLM's PyTorch-backend executor, whose overlap scheduler hides
the host's work, so it charges no host time. The MLPerf submissions in the validation table ran
TensorRT engines under the C++ executor of their harness, whose per-step host time was never
published. This script asks what such a host time would have to be: it registers, for every
point of a grid, a variant of ``trtllm`` whose host time ``fixed + per_seq * sequences`` runs on
the critical path (no overlap), predicts the TensorRT-LLM rows of one half of the table under each,
and prints MdAPE / p90 |error| / median signed bias over those rows, over their Mixtral rows and
over the rest, with every row's signed error.

The sweep looks at the dev half by default; ``--half test`` reports the test half, which no choice
may be made on (docs/validation.md "Dev and test halves").

Usage::

    python benchmarks/bench_trtllm_host.py                          # dev half, 4 x 4 grid (~2 min, 2 cores)
    python benchmarks/bench_trtllm_host.py --half test
    python benchmarks/bench_trtllm_host.py --fixed-ms 0,4 --per-seq-us 0,10,20,40
    python benchmarks/bench_trtllm_host.py --engine-kernels          # each row with its release's kernels
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np

from infersim.runtime.base import register
from infersim.runtime.profiles import TensorRTLLM
from infersim.validation import RunSize, load_datasets, load_table
from infersim.validation.predict import ROW_ENGINE, predict_row
from infersim.validation.score import SPLITS, split_of

_PREFIX = "trtllm-host-sweep-"


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def register_variants(fixed_ms: list[float], per_seq_us: list[float]) -> list[tuple[str, float, float]]:
    """One registered runtime per grid point: ``trtllm`` with its host time on the critical path."""
    grid = []
    for i, (a_ms, b_us) in enumerate((a, b) for a in fixed_ms for b in per_seq_us):
        name = f"{_PREFIX}{i}"
        fields = {"__annotations__": {"host_fixed_s": float, "host_per_seq_s": float, "overlap": bool},
                  "host_fixed_s": a_ms * 1e-3, "host_per_seq_s": b_us * 1e-6, "overlap": False, "name": name,
                  "title": f"TensorRT-LLM, host {a_ms:g} ms + {b_us:g} us/seq per step, not overlapped"}
        register(dataclass(frozen=True)(type(f"TrtllmHostSweep{i}", (TensorRTLLM,), fields)))
        grid.append((name, a_ms, b_us))
    return grid


def _predict(job: tuple[str, str, str | None]) -> tuple[str, str, float]:
    row_id, runtime, kernels = job
    datasets = load_datasets()
    row = next(r for r in load_table(datasets=datasets) if r.id == row_id)
    return row_id, runtime, predict_row(row, datasets[row.dataset], RunSize(), runtime=runtime,
                                        kernels=kernels).signed_error


def _stats(errors: np.ndarray) -> str:
    if errors.size == 0:
        return f"{'-':>22s}"
    a = np.abs(errors)
    return f"{100 * np.median(a):5.1f} {100 * np.quantile(a, 0.9):5.1f} {100 * np.median(errors):+6.1f}%"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--half", choices=(*SPLITS, "all"), default="dev", help="which rows (default: dev)")
    ap.add_argument("--fixed-ms", default="0,1,2,4", help="fixed host times per step, ms (comma-separated)")
    ap.add_argument("--per-seq-us", default="0,5,10,20", help="host times per sequence per step, us")
    ap.add_argument("--engine-kernels", action="store_true",
                    help="each row's device with its engine release's kernels where shipped (as validate)")
    ap.add_argument("-j", "--jobs", type=int, default=2, help="worker processes")
    args = ap.parse_args()

    grid = register_variants(_floats(args.fixed_ms), _floats(args.per_seq_us))
    kernels = ROW_ENGINE if args.engine_kernels else None
    rows = [r for r in load_table() if r.engine == "trtllm" and args.half in ("all", split_of(r.id))]
    mixtral = np.array([r.model.startswith("mixtral") for r in rows])
    t0 = time.perf_counter()
    jobs = [(r.id, name, kernels) for name, _, _ in grid for r in rows]
    errors: dict[tuple[str, str], float] = {}
    with ProcessPoolExecutor(max(1, args.jobs)) as pool:
        for row_id, runtime, err in pool.map(_predict, jobs):
            errors[(runtime, row_id)] = err
    wall = time.perf_counter() - t0

    which = "both halves" if args.half == "all" else f"the {args.half} half"
    print(f"{len(rows)} TensorRT-LLM rows of {which} ({int(mixtral.sum())} Mixtral)"
          f"{', engine kernels' if kernels else ''}; MdAPE / p90 / median bias")
    print(f"{'fixed':>7s} {'per seq':>8s}   {'all':^22s}   {'Mixtral':^22s}   {'other':^22s}   signed error per row")
    for name, a_ms, b_us in grid:
        e = np.array([errors[(name, r.id)] for r in rows])
        per_row = " ".join(f"{100 * x:+.0f}" for x in e)
        print(f"{a_ms:5.1f}ms {b_us:6.1f}us   {_stats(e)}   {_stats(e[mixtral])}   {_stats(e[~mixtral])}   {per_row}")
    print("rows: " + ", ".join(r.id for r in rows))
    print(f"{len(jobs)} predictions in {wall:.0f} s wall ({args.jobs} workers)")


if __name__ == "__main__":
    main()
