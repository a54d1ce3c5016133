"""End-to-end accuracy against published system throughputs (figures printed, never asserted).

Runs ``infersim validate`` over the whole bundled table
(``src/infersim/validation/data/system_throughputs.csv``: MLPerf Inference v4.1 and v5.1
Offline and Server results, see ``docs/validation.md``) and prints per row measured vs
predicted output tokens/s, then MdAPE, p90 |error| and median signed bias overall and
by device, model, precision, shape, scenario and engine, with the runtime layer and the
device basis used, and the wall time.

Targets (issue 17, after the calibrated profiles and runtime models land): MdAPE <= 10%,
p90 <= 25% with the shipped profiles and the default runtime.

Usage::

    python benchmarks/bench_validate.py                  # the whole table (about a minute on 2 cores)
    python benchmarks/bench_validate.py --batches 8      # longer simulated runs (convergence check)
    python benchmarks/bench_validate.py --runtime none   # every row with the kernels-only runtime
    python benchmarks/bench_validate.py --markdown       # the overall and by-device lines as Markdown
"""

from __future__ import annotations

import argparse
import time


def _pct(x: float, signed: bool = False) -> str:
    return f"{100 * x:+.1f}%" if signed else f"{100 * x:.1f}%"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=float, default=4.0, help="requests per replica in batch caps")
    ap.add_argument("--markdown", action="store_true", help="print the summary as a Markdown table")
    ap.add_argument("--runtime", default=None, help="replace every row's runtime (none, trtllm, vllm, vllm-v0, sglang)")
    args = ap.parse_args()

    from infersim.validation import RunSize, load_datasets, load_table
    from infersim.validation.score import run_validation

    t0 = time.perf_counter()
    datasets = load_datasets()
    rows = load_table(datasets=datasets)
    done = []

    def on_row(row) -> None:
        done.append(time.perf_counter())

    report = run_validation(rows, datasets, RunSize(batches=args.batches), on_row, runtime=args.runtime)
    wall = time.perf_counter() - t0
    print(f"{'row':44s} {'measured':>10s} {'predicted':>10s} {'error':>8s}  runtime / device basis")
    for p in report.predictions:
        print(f"{p.row.id:44s} {p.measured:10,.0f} {p.predicted_output_tokens_per_s:10,.0f} "
              f"{_pct(p.signed_error, True):>8s}  {p.runtime} / {p.device_basis.split(';')[0]}")
    lines = []
    o = report.overall
    lines.append(("all", "all", o))
    for name, groups in report.groups.items():
        lines.extend((name, str(g[name]), g) for g in groups)
    if args.markdown:
        print("\n| group | value | rows | MdAPE | p90 | bias |\n|---|---|---:|---:|---:|---:|")
        for name, value, g in lines:
            print(f"| {name} | {value} | {g['rows']} | {_pct(g['mdape'])} | {_pct(g['p90_ape'])} | "
                  f"{_pct(g['median_signed_bias'], True)} |")
    else:
        print(f"\n{'group':10s} {'value':22s} {'rows':>4s} {'MdAPE':>7s} {'p90':>7s} {'bias':>8s}")
        for name, value, g in lines:
            print(f"{name:10s} {value:22s} {g['rows']:4d} {_pct(g['mdape']):>7s} {_pct(g['p90_ape']):>7s} "
                  f"{_pct(g['median_signed_bias'], True):>8s}")
    print(f"\n{len(rows)} rows in {wall:.1f} s wall (batches={args.batches}, runtime={args.runtime or 'per row'})")


if __name__ == "__main__":
    main()
