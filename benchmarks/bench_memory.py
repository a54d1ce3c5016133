"""Peak memory per simulated request of `simulate` and `pipeline`. Prints figures; asserts nothing.

Usage: python benchmarks/bench_memory.py [--sizes 50000,200000] [--big 10000000]

Each run is its own `infersim` process (the default scenario for `simulate`, the example
examples/disagg/pd_vs_colocated.yaml for `pipeline`, with -n requests and a rate scaled so the
deployment is not overloaded); its peak resident set (ru_maxrss) is read after it exits. The
per-request figure is the slope between the two sizes (the interpreter and the imports cancel).
With --big N, `simulate -n N` is also run once (streamed: above 1,000,000 requests `simulate`
spools per-request records and step logs to disk in chunks, see infersim.serving.streaming) and
its peak, wall time and simulated requests per second are printed against the 2 GB target;
--big-out also writes its requests.csv (N rows) to a temporary directory.
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

ROOT = Path(__file__).resolve().parents[1]
PIPELINE = ROOT / "examples" / "disagg" / "pd_vs_colocated.yaml"


def peak_rss_bytes(args: list[str]) -> tuple[float, float]:
    """(peak RSS of the child in bytes, wall s) of ``infersim args`` in a fresh process."""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    code = ("import resource, subprocess, sys; "
            "p = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL); "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, p.returncode)")
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code, sys.executable, "-m", "infersim.cli.main", *args],
                         env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    kib, rc = out.stdout.split()
    if rc != "0":
        raise SystemExit(f"infersim {' '.join(args)} exited {rc}: {out.stderr[-2000:]}")
    return int(kib) * 1024.0, wall


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="50000,200000")
    parser.add_argument("--big", type=int, default=0, help="also run simulate -n BIG once (e.g. 10000000)")
    parser.add_argument("--big-out", action="store_true", help="the big run also writes requests.csv")
    parser.add_argument("--only-big", action="store_true", help="skip the per-request slopes")
    args = parser.parse_args()
    small, large = (int(x) for x in args.sizes.split(","))
    tmp = Path(tempfile.mkdtemp(prefix="bench-mem-"))
    per_request = {}
    for name, base in [] if args.only_big else (("simulate", ["simulate"]), ("pipeline", ["pipeline", str(PIPELINE)])):
        rss = {}
        for n in (small, large):
            rss[n], wall = peak_rss_bytes([*base, "-n", str(n), "--out", str(tmp / f"{name}-{n}")]
                                          if name == "simulate" else [*base, "-n", str(n)])
            print(f"{name:<9} -n {n:>9,}: peak RSS {rss[n] / 1e6:8.1f} MB, {wall:6.1f} s", flush=True)
        per_request[name] = (rss[large] - rss[small]) / (large - small)
        print(f"{name:<9} memory per request: {per_request[name]:,.0f} bytes")
    if per_request:
        print(f"pipeline / simulate per request: {per_request['pipeline'] / per_request['simulate']:.1f}x "
              "(target <= 2x)")
    if args.big:
        out = ["--out", str(tmp / "big")] if args.big_out else []
        rss, wall = peak_rss_bytes(["simulate", "-n", str(args.big), *out])
        print(f"simulate -n {args.big:,}{' --out' if out else ''}: peak RSS {rss / 1e9:.2f} GB (target <= 2 GB), "
              f"{wall:.0f} s, {args.big / wall:,.0f} requests/s")


if __name__ == "__main__":
    main()
