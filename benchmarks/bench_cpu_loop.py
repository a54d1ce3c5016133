"""The profile -> calibrate -> fidelity loop on this machine's CPU, live. Prints figures; asserts nothing.

Usage: python benchmarks/bench_cpu_loop.py [--grid tiny] [--repeats 3] [--warmup 1] [--threads 1]

Times the CPU kernels of the grid (`infersim profile`), fits the device file to them
(`infersim calibrate`) and prints the held-out MdAPE of the spec-only and calibrated models
(`infersim fidelity`), with each step's wall time. The figures depend on the machine and on its
load; the test suite runs the same loop on a recorded measurement file
(tests/data/fidelity/cpu-tiny.parquet) instead.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def infersim(*args: str) -> tuple[str, float]:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "infersim.cli.main", *args], env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"infersim {' '.join(args)} failed:\n{out.stderr}")
    return out.stdout, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--grid", default="tiny")
    parser.add_argument("--repeats", default="3")
    parser.add_argument("--warmup", default="1")
    parser.add_argument("--threads", default="1")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-cpu-loop-"))
    data, spec, cal = tmp / "local.parquet", tmp / "local-device.yaml", tmp / "local-calibrated.yaml"
    _, t = infersim("profile", "-o", str(data), "--grid", args.grid, "--repeats", args.repeats, "--warmup",
                    args.warmup, "--threads", args.threads, "--quiet")
    print(f"profile --grid {args.grid}: {t:.1f} s")
    _, t = infersim("calibrate", "--measurements", str(data), "--hardware", str(spec), "-o", str(cal), "--quiet")
    print(f"calibrate: {t:.1f} s")
    out, t = infersim("fidelity", "--measurements", str(data), "--hardware", str(spec), "--json")
    print(f"fidelity: {t:.1f} s")
    for s in json.loads(out)["scores"]:
        if s["family"] == "all":
            print(f"  {s['mode']:<10} {s.get('split', ''):<10} rows {s['rows']:>4}  MdAPE {s['mdape']:.1%}")


if __name__ == "__main__":
    main()
