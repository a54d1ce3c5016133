"""The long fuzz run: many more mutated files and flag values than the test suite's 1,020.
Prints counts; exits 1 if the property failed anywhere.

Usage: python benchmarks/fuzz_inputs.py [--examples 1000] [--kinds device,model,scenario,pipeline,study,flags]
       [--seed 0]

Each case is one in-process CLI call (see tests/fuzz_inputs.py for the mutations and the
property): exit 0 with finite output, or exit != 0 with one error line and no traceback, within
60 s. Printed per kind: cases, clean errors, exit-0 answers, tracebacks, hangs, bad exit-0
outputs (non-finite numbers), and the first failures in full.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

from hypothesis import HealthCheck, given, seed, settings  # noqa: E402

from tests.fuzz_inputs import command_for, copy_examples, flag_case, mutated_file, run_case, write_case  # noqa: E402

KINDS = ["device", "model", "scenario", "pipeline", "study", "flags"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--examples", type=int, default=1000, help="cases per kind")
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="infersim-fuzz-"))
    copy_examples(work)
    failures = []
    total: dict[str, int] = {}
    print(f"{'kind':<10}{'cases':>7}{'errors':>8}{'exit 0':>8}{'tracebacks':>12}{'hangs':>7}{'bad exit-0':>12}"
          f"{'time':>9}")
    for kind in args.kinds.split(","):
        counts: dict[str, int] = {}
        start = time.perf_counter()

        @seed(args.seed)
        @settings(max_examples=args.examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(case=flag_case() if kind == "flags" else mutated_file(kind))
        def run(case):
            if kind == "flags":
                cli_args, is_json = case
                note = ""
            else:
                original, raw, note = case
                cli_args, is_json = command_for(kind, write_case(work, original, raw), work)
            outcome = run_case(cli_args, is_json)
            counts[outcome.kind] = counts.get(outcome.kind, 0) + 1
            if outcome.problem:
                failures.append((kind, note, outcome))

        run()
        n = sum(counts.values())
        for k, v in counts.items():
            total[k] = total.get(k, 0) + v
        print(f"{kind:<10}{n:>7}{counts.get('error', 0):>8}{counts.get('ok', 0):>8}{counts.get('traceback', 0):>12}"
              f"{counts.get('hang', 0):>7}{counts.get('bad-output', 0) + counts.get('bad-error', 0):>12}"
              f"{time.perf_counter() - start:>8.1f}s", flush=True)
    n = sum(total.values())
    print(f"{'all':<10}{n:>7}{total.get('error', 0):>8}{total.get('ok', 0):>8}{total.get('traceback', 0):>12}"
          f"{total.get('hang', 0):>7}{total.get('bad-output', 0) + total.get('bad-error', 0):>12}")
    for kind, note, outcome in failures[:10]:
        print(f"\n--- {kind} ({note}): {outcome.kind}: infersim {' '.join(outcome.args)}\n{outcome.problem}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
