"""How fast does `infersim search` evaluate? Prints figures; asserts nothing.

Usage: python benchmarks/bench_search.py [--quick]

1. Static-estimate study: the built-in study's space widened to ~100k grid points
   (max batch every integer 1..160), evaluated end to end (grid, static screen,
   vectorized estimate, scoring, DuckDB commits): configurations per second, in
   process and on a 2-worker local pool.
2. Per-point studies: the exact evaluator ('estimate': every decode step costed,
   one configuration per task, the shape of a simulation-backed study) on 1 and 2
   workers: wall time and speed-up, and that both give identical stored results.
3. Simulation-backed study: ``examples/studies/sim-llama8b.yaml`` (48 points, 400 simulated
   requests each) and the same study with 10x the requests per simulation, on 1 and 2
   workers: wall time (pool start included), speed-up, and that both give identical stored
   results. The load average is printed before each run: on a shared machine other jobs
   take cores away and the speed-up says as much about them as about the search.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import yaml

from infersim.search import DEFAULT_STUDY, InlineBackend, LocalBackend, open_store, run_study, study_from_dict

SIM_EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "studies" / "sim-llama8b.yaml"


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


def simulation_study(requests_factor: int):
    """The simulation-backed example study, with ``requests_factor`` x its requests per simulation."""
    data = yaml.safe_load(SIM_EXAMPLE.read_text())
    options = data["evaluator"]["options"]
    options["requests"] *= requests_factor
    data["name"] = f"bench-sim-{options['requests']}"
    return study_from_dict(data, str(SIM_EXAMPLE)), options["requests"]


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg()) + " (1/5/15 min)"


def one_vs_two_workers(study, tmp: Path, tag: str, show_load: bool = False) -> None:
    """Wall time on 1 and 2 workers, the speed-up, and whether the stored results are identical."""
    results = {}
    for workers in (1, 2):
        before = load()
        backend = InlineBackend() if workers == 1 else LocalBackend(workers)
        with backend:
            p, wall, rows = timed(study, backend, tmp / f"{tag}-{workers}.duckdb")
        results[workers] = (wall, rows)
        print(f"   {workers} worker{'s' if workers > 1 else ' '}  {wall:6.2f} s  ({p.evaluated / wall:6.1f} configs/s)"
              + (f"   [{before} before the run]" if show_load else ""))
    speedup = results[1][0] / results[2][0]
    same = results[1][1] == results[2][1]
    print(f"   speed-up 1 -> 2 workers: {speedup:.2f}x; identical stored results: {same}")


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
        rows = store.con.execute("SELECT key, status, config, metrics, error FROM evaluations ORDER BY key").fetchall()
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
    one_vs_two_workers(study, tmp, "exact")
    print(f"   (this machine's 2-process speed-up on pure-Python work right now: {machine_parallelism():.2f}x)")

    print(f"\n3. simulation-backed study ({SIM_EXAMPLE.name}: serving simulation per point, one point per task)")
    for factor in (1,) if args.quick else (1, 10):
        study, requests = simulation_study(factor)
        print(f"   {study.trial_budget()} configurations x {requests} simulated requests")
        one_vs_two_workers(study, tmp, f"sim-{requests}", show_load=True)
    print(f"   (this machine's 2-process speed-up on pure-Python work right now: {machine_parallelism():.2f}x; "
          f"{load()})")


if __name__ == "__main__":
    main()
