"""Sample efficiency of the optimizers on a chip-design space (Apollo-style comparison).

Usage: python benchmarks/bench_chip_search.py [--budget 80] [--seeds 3]

The space: a GA100-like template's cores, array shape, global buffer, HBM stacks and clock, for
Llama-3.1-8B chat serving, maximizing output tokens/s per chip $ under a 600 mm2 / 500 W budget
(infeasible designs are rejected before evaluation). Each optimizer gets the same number of trials;
the exhaustive grid gives the true optimum of the discrete space. Prints, per optimizer, the median
over seeds of the best feasible value found as a fraction of the optimum, and the share of trials
spent on infeasible designs.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from infersim.search import InlineBackend, load_results, open_store, run_study
from infersim.search.study import study_from_dict

GA100 = Path(__file__).resolve().parents[1] / "examples" / "accelerators" / "ga100.yaml"
OBJECTIVE = "output_tokens_per_s_per_chip_usd"
SPACE = {
    "model": "llama-3.1-8b", "device": str(GA100), "max_batch": 64,
    "chip.cores": {"type": "int", "low": 16, "high": 208, "step": 32},
    "chip.array_rows": {"type": "int", "low": 8, "high": 64, "step": 8},
    "chip.array_cols": {"type": "int", "low": 8, "high": 64, "step": 8},
    "chip.global_buffer_mib": {"type": "int", "low": 8, "high": 96, "step": 22},
    "chip.memory_stacks": {"type": "int", "low": 1, "high": 8},
    "chip.max_area_mm2": 600, "chip.max_tdp_w": 500,
}


def run(kind: str, budget: int | None, seed: int, db: str) -> tuple[float, float, float]:
    name = f"{kind}-{seed}"
    optimizer = {"kind": kind, "batch_size": 8} if kind != "grid" else "grid"
    study = study_from_dict({"name": name, "workload": "chat", "space": SPACE, "objectives": [{"max": OBJECTIVE}],
                             "optimizer": optimizer, "seed": seed, **({"budget": budget} if budget else {})})
    t0 = time.perf_counter()
    with open_store(db, write=True) as store:
        run_study(study, store, InlineBackend())
        points = load_results(store, name).points
    best = max((p.metrics[OBJECTIVE] for p in points if p.feasible and p.metrics and OBJECTIVE in p.metrics),
               default=0.0)
    infeasible = sum(p.status == "rejected" for p in points) / max(len(points), 1)
    return best, infeasible, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--budget", type=int, default=80)
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = str(Path(tmp) / "chips.duckdb")
        optimum, infeasible, seconds = run("grid", None, 0, db)
        n_grid = 7 * 8 * 8 * 5 * 8
        print(f"grid: {n_grid} designs in {seconds:.1f} s, optimum {optimum:.3f} {OBJECTIVE}, "
              f"{infeasible:.0%} infeasible")
        print(f"{'optimizer':<8} {'budget':>6} {'best / optimum (median over seeds)':>36} {'infeasible trials':>18}")
        for kind in ("random", "tpe", "cmaes", "nsga2"):
            bests, wasted = [], []
            for seed in range(args.seeds):
                best, infeasible, _ = run(kind, args.budget, seed, db)
                bests.append(best / optimum)
                wasted.append(infeasible)
            print(f"{kind:<8} {args.budget:>6} {statistics.median(bests):>36.1%} {statistics.median(wasted):>18.0%}")


if __name__ == "__main__":
    main()
