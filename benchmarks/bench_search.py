"""How fast does `infersim search` evaluate? Prints figures; asserts nothing.

Usage: python benchmarks/bench_search.py [--quick]

1. Static-estimate study: the built-in study's space widened to ~100k grid points
   (max batch every integer 1..160), evaluated end to end (grid, static screen,
   vectorized estimate, scoring, DuckDB commits): configurations per second, in
   process and on a 2-worker local pool.
2. Per-point studies: the exact evaluator ('estimate': every decode step costed,
   one configuration per task, the shape of a simulation-backed study) on 1 and 2
   workers: wall time and speed-up, and that both give identical stored results.
3. Simulation-backed study: run when the serving simulator exposes
   ``infersim.serving.simulate``; until then this prints that it is pending.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from infersim.search import DEFAULT_STUDY, InlineBackend, LocalBackend, open_store, run_study, study_from_dict
from infersim.search.evaluators.simulation import serving_simulate


def static_study(points_per_batch_axis: int):
    data = dict(DEFAULT_STUDY, name="bench-static")
    data["space"] = dict(DEFAULT_STUDY["space"], max_batch={"type": "int", "low": 1, "high": points_per_batch_axis})
    return study_from_dict(data, "<bench>")


def exact_study(n_batches: int):
    return study_from_dict({
        "name": "bench-exact", "evaluator": "estimate",
        "workload": {"input_tokens": 1024, "output_tokens": 4096, "rate_rps": 4},
        "space": {"model": "llama-3.1-8b", "device": ["h100-sxm", "h200"], "tp": [1, 2],
                  "max_batch": {"type": "int", "low": 1, "high": n_batches}},
        "slo": {"ttft_p99_s": 1.0, "tpot_p90_s": 0.05},
        "objectives": [{"min": "usd_per_million_output_tokens"}],
    }, "<bench>")


def _burn(n: int) -> int:
    x = 0
    for i in range(n):
        x += i * i
    return x


def machine_parallelism() -> float:
    """Speed-up of two processes over one on pure-Python work: what this machine can give right now
    (other jobs on a shared machine take cores away)."""
    import multiprocessing as mp

    n = 4_000_000
    t0 = time.perf_counter()
    _burn(n), _burn(n)
    serial = time.perf_counter() - t0
    with mp.get_context("forkserver").Pool(2) as pool:
        pool.map(_burn, [10, 10])
        t0 = time.perf_counter()
        pool.map(_burn, [n, n])
        parallel = time.perf_counter() - t0
    return serial / parallel


def timed(study, backend, db: Path):
    with open_store(db, write=True) as store:
        t0 = time.perf_counter()
        progress = run_study(study, store, backend)
        wall = time.perf_counter() - t0
        rows = store.con.execute("SELECT key, status, metrics FROM evaluations ORDER BY key").fetchall()
    return progress, wall, rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="smaller studies")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-search-"))
    print(f"machine: {os.cpu_count()} cores")

    study = static_study(40 if args.quick else 160)
    n = study.trial_budget()
    print(f"\n1. static-estimate study, {n:,} configurations (grid, static evaluator, DuckDB)")
    for label, make in (("in process", InlineBackend), ("local pool, 2 workers", lambda: LocalBackend(2))):
        with make() as backend:
            p, wall, _ = timed(study, backend, tmp / f"static-{label[:5]}.duckdb")
        print(f"   {label:<22} {p.evaluated:>8,} evaluated in {wall:6.2f} s = {p.evaluated / wall:>9,.0f} configs/s"
              f"  ({p.feasible:,} feasible, {p.rejected:,} rejected)")

    study = exact_study(12 if args.quick else 40)
    n = study.trial_budget()
    print(f"\n2. per-point study, {n} configurations (exact evaluator, 4096 decode steps costed each)")
    results = {}
    for workers in (1, 2):
        backend = InlineBackend() if workers == 1 else LocalBackend(workers)
        with backend:
            p, wall, rows = timed(study, backend, tmp / f"exact-{workers}.duckdb")
        results[workers] = (wall, rows)
        print(f"   {workers} worker{'s' if workers > 1 else ' '}  {wall:6.2f} s  ({p.evaluated / wall:6.1f} configs/s)")
    speedup = results[1][0] / results[2][0]
    same = results[1][1] == results[2][1]
    print(f"   speed-up 1 -> 2 workers: {speedup:.2f}x; identical stored results: {same}")
    print(f"   (this machine's 2-process speed-up on pure-Python work right now: {machine_parallelism():.2f}x)")

    print("\n3. simulation-backed study:", "pending: infersim.serving.simulate is not exposed yet"
          if serving_simulate() is None else "see the simulation evaluator (not wired in this benchmark yet)")


if __name__ == "__main__":
    main()
