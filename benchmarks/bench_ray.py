"""Speed-up of a simulation study from 1 to 2 workers, on the local process pool and on a Ray cluster.

Usage: python benchmarks/bench_ray.py [--requests-factor N]

The study is ``examples/studies/sim-llama8b.yaml`` (48 points, every point a serving simulation of
400 requests; ``--requests-factor`` multiplies the requests). Local: ``LocalBackend(1)`` vs
``LocalBackend(2)`` (pool start included). Ray: a one-node cluster started with
``ray start --head --num-cpus=1`` and then ``--num-cpus=2``, the study sent to it by address
(cluster start not included; connection included). Prints wall times, the speed-ups, whether every
run stored identical rows, and the machine's own 2-process ceiling on pure-Python work (a shared
machine gives less than 2x).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from bench_search import load, machine_parallelism, simulation_study, timed

from infersim.search import LocalBackend
from infersim.search.backends import RayBackend
from infersim.search.ray_head import local_ray_head

SRC = str(Path(__file__).resolve().parents[1] / "src")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests-factor", type=int, default=1)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    study, requests = simulation_study(args.requests_factor)
    print(f"machine: {os.cpu_count()} cores; study {study.name}: {requests} simulated requests per point")
    os.environ["RAY_AUTH_MODE"] = "token"  # Ray >= 2.52 clusters require the token by default
    walls, rows = {}, {}
    for workers in (1, 2):
        print(f"  [{load()}]")
        with LocalBackend(workers) as backend:
            _, walls["local", workers], rows["local", workers] = timed(study, backend, tmp / f"local-{workers}.duckdb")
        print(f"  local pool, {workers} worker(s): {walls['local', workers]:6.2f} s")
    for workers in (1, 2):
        pythonpath = os.pathsep.join(p for p in (SRC, os.environ.get("PYTHONPATH")) if p)
        with local_ray_head(num_cpus=workers, env={"PYTHONPATH": pythonpath}) as address:
            print(f"  [{load()}]")
            with RayBackend(address=address) as backend:
                _, walls["ray", workers], rows["ray", workers] = timed(study, backend, tmp / f"ray-{workers}.duckdb")
        print(f"  Ray cluster ({address}), {workers} CPU(s): {walls['ray', workers]:6.2f} s")
    for where in ("local", "ray"):
        print(f"speed-up 1 -> 2 workers, {where}: {walls[where, 1] / walls[where, 2]:.2f}x")
    print(f"Ray 2 CPUs vs local pool 2 workers: {walls['local', 2] / walls['ray', 2]:.2f}x")
    print(f"identical stored results across all four runs: {len({repr(r) for r in rows.values()}) == 1}")
    print(f"machine's own 2-process ceiling now: {machine_parallelism():.2f}x")


if __name__ == "__main__":
    main()
