"""Results at scale: how long do `results pareto`, `results export` and a re-run with nothing
left to do take on a 204,800-point study? Prints figures; asserts nothing.

Usage: python benchmarks/bench_results_scale.py [--points-axis 320] [--db PATH]

The study is the built-in one (Llama-3.1-70B chat, static evaluator) with max batch every
integer 1..320: 4 devices x 4 TP x 8 replicas x 320 x 5 prefill budgets x 2 dtypes = 204,800
grid points. The first run evaluates and stores them; each command below then runs as its own
`infersim` process (import and database open included), as a user would run it. Also prints
the Pareto ranking alone (library call) for two objectives and for three.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from infersim.search import DEFAULT_STUDY, InlineBackend, open_store, run_study, study_from_dict
from infersim.search.pareto import pareto_ranks


def study_data(axis: int) -> dict:
    data = dict(DEFAULT_STUDY, name="bench-scale")
    data["space"] = dict(DEFAULT_STUDY["space"], max_batch={"type": "int", "low": 1, "high": axis})
    return data


def cli(*args: str) -> str:
    """'wall s (cpu s)' of ``infersim args`` in a fresh process: the CPU time (user + system of the
    child) is what the machine's load does not inflate."""
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1] / "src"))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "infersim.cli.main", *args], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode != 0:
        raise SystemExit(f"infersim {' '.join(args)} failed:\n{out.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return f"{wall:.2f} s wall ({cpu:.2f} s CPU)"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--points-axis", type=int, default=320, help="max batch values (320: 204,800 points)")
    parser.add_argument("--db", default=None, help="reuse this database (default: a new temporary one)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    db = Path(args.db) if args.db else tmp / "scale.duckdb"
    data = study_data(args.points_axis)
    study_file = tmp / "study.yaml"
    study_file.write_text(yaml.safe_dump(data, sort_keys=False))
    study = study_from_dict(data, str(study_file))
    n = study.trial_budget()
    print(f"study: {n:,} grid points; database {db}")
    with open_store(db, write=True) as store, InlineBackend() as backend:
        t0 = time.perf_counter()
        p = run_study(study, store, backend)
        print(f"first run (library): {p.evaluated:,} evaluated, {p.cached:,} reused from the database, "
              f"{time.perf_counter() - t0:.1f} s")
        keys, status, feasible, metrics = store.load_columns(study.name, [o.metric for o in study.scoring.objectives]
                                                             + ["ttft_p99_s"])
    ok = feasible & np.isfinite(np.column_stack(list(metrics.values()))).all(axis=1)
    two = np.column_stack([metrics[o.metric] for o in study.scoring.objectives])[ok]
    three = np.column_stack(list(metrics.values()))[ok]
    for label, values, dirs in (("2 objectives", two, ["min", "max"]), ("3 objectives", three, ["min", "max", "min"])):
        t0 = time.perf_counter()
        ranks = pareto_ranks(values, dirs)
        print(f"pareto_ranks, {label}: {values.shape[0]:,} feasible points, {ranks.max() + 1} fronts, "
              f"{time.perf_counter() - t0:.2f} s")
    # the study's feasible set is small; the hard case is many mutually non-dominated points
    rng = np.random.default_rng(0)
    for k in (2, 3):
        values = rng.random((n, k))
        t0 = time.perf_counter()
        ranks = pareto_ranks(values, ["min"] * k)
        print(f"pareto_ranks, {k} objectives, {n:,} uniform random points: {ranks.max() + 1} fronts, "
              f"{time.perf_counter() - t0:.2f} s")
    print(f"infersim results pareto:  {cli('results', 'pareto', study.name, '--db', str(db))}")
    print(f"infersim results export:  {cli('results', 'export', study.name, '--db', str(db), '--csv', str(tmp / 'out.csv'))}"
          f"  ({(tmp / 'out.csv').stat().st_size / 1e6:.0f} MB of CSV)")
    print(f"infersim search (re-run, nothing to do): "
          f"{cli('search', str(study_file), '--db', str(db), '--no-progress')}")


if __name__ == "__main__":
    main()
