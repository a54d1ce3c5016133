"""Speed of the multi-stage pipeline simulator and of its three studies (figures printed, never asserted).

For each example of ``examples/disagg/``: a single pipeline run at growing request counts (simulated
requests per second of wall time, the event loop against a single-engine run of the same LLM
pool), then optionally the whole study (``infersim pipeline-study``), whose target is 1-2 minutes
on 2 cores.

Usage::

    python benchmarks/bench_disagg.py                    # single runs of the three examples
    python benchmarks/bench_disagg.py --studies          # and the three studies, timed
    python benchmarks/bench_disagg.py --sizes 500,5000
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "disagg"
FILES = ("pd_vs_colocated.yaml", "afd_deepseek.yaml", "rag_pipeline.yaml")


def single_runs(sizes: list[int]) -> None:
    from infersim.serving.pipeline import load_pipeline, prepare_pipeline, simulate_pipeline, summarize_pipeline

    print(f"{'scenario':<22} {'requests':>9} {'prepare s':>10} {'simulate s':>11} {'summarize s':>12} "
          f"{'sim req/s':>10} {'completed':>10}")
    for name in FILES:
        base = load_pipeline(EXAMPLES / name)
        t0 = time.perf_counter()
        dep = prepare_pipeline(base)
        prep = time.perf_counter() - t0
        for n in sizes:
            sc = base.with_changes(**{"workload.requests": n})
            t1 = time.perf_counter()
            result = simulate_pipeline(sc, deployment=dep)
            t2 = time.perf_counter()
            s = summarize_pipeline(result)
            t3 = time.perf_counter()
            print(f"{name:<22} {n:>9,} {prep:>10.2f} {t2 - t1:>11.3f} {t3 - t2:>12.3f} {n / (t2 - t1):>10,.0f} "
                  f"{s.completed:>10,}")
            prep = 0.0


def single_engine_reference(n: int) -> None:
    """The same colocated pool through `infersim simulate` and through the pipeline loop."""
    from infersim.serving.engine import simulate
    from infersim.serving.pipeline import simulate_pipeline, validate_pipeline
    from infersim.serving.scenario import validate_scenario

    wl = {"requests": n, "arrival": {"process": "poisson", "rate": 30.0},
          "input_tokens": {"dist": "lognormal", "median": 1000, "sigma": 0.8, "min": 16, "max": 8000},
          "output_tokens": {"dist": "lognormal", "median": 200, "sigma": 0.8, "min": 2, "max": 1500}}
    engine = {"model": "llama-3.1-8b", "parallelism": {"replicas": 4}, "scheduler": {"policy": "chunked"},
              "router": {"policy": "least_outstanding"}}
    t0 = time.perf_counter()
    simulate(validate_scenario({"seed": 0, **engine, "workload": wl}))
    t1 = time.perf_counter()
    simulate_pipeline(validate_pipeline({"seed": 0, "engines": {"e": {"kind": "llm", **engine}},
                                         "graph": [{"name": "g", "kind": "llm", "engine": "e"}], "workload": wl}))
    t2 = time.perf_counter()
    print(f"\n4 colocated Llama-3.1-8B replicas, {n:,} requests: infersim simulate {t1 - t0:.2f} s, "
          f"pipeline loop {t2 - t1:.2f} s (both including cost-model construction)")


def studies() -> None:
    from infersim.serving.pipeline import load_pipeline, run_study

    print()
    for name in FILES:
        sc = load_pipeline(EXAMPLES / name)
        t0 = time.perf_counter()
        result = run_study(sc)
        wall = time.perf_counter() - t0
        print(f"study {name:<22} {len(result.rows):>3} configurations in {wall:6.1f} s wall")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="500,2000,8000", help="requests per single run, comma-separated")
    ap.add_argument("--studies", action="store_true", help="also time the three studies")
    args = ap.parse_args()
    single_runs([int(x) for x in args.sizes.split(",") if x])
    single_engine_reference(10_000)
    if args.studies:
        studies()


if __name__ == "__main__":
    main()
