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
    python benchmarks/bench_validate.py --markdown       # the summary as a Markdown table
    python benchmarks/bench_validate.py --compare-runtimes   # every registered runtime over the table
    python benchmarks/bench_validate.py --moe-routing power_law_1.2   # skewed MoE routing on every row
    python benchmarks/bench_validate.py --engine-kernels # each row with its engine's (release's) kernels where shipped
    python benchmarks/bench_validate.py --kernels vllm   # every row with vLLM's kernels (what-if)
    python benchmarks/bench_validate.py --prompt-scale 1.5   # every dataset's prompts 1.5x longer (sensitivity)

Every figure is printed for all rows and for each half of the table: rows are split by a
hash of their id (``infersim.validation.score.split_of``) into a dev half, which modelling
choices may look at, and a test half, reported and never tuned on.
"""

from __future__ import annotations

import argparse
import time

from infersim.hardware.choices import ENGINE_KERNELS
from infersim.validation.predict import ROW_ENGINE
from infersim.validation.score import SPLITS, split_of


def _pct(x: float, signed: bool = False) -> str:
    return f"{100 * x:+.1f}%" if signed else f"{100 * x:.1f}%"


def _stats(g: dict | None) -> str:
    if g is None:
        return f"{'':>4s} {'':>7s} {'':>7s} {'':>8s}"
    return f"{g['rows']:4d} {_pct(g['mdape']):>7s} {_pct(g['p90_ape']):>7s} {_pct(g['median_signed_bias'], True):>8s}"


def _summary_lines(report) -> list[tuple[str, str, dict, dict | None, dict | None]]:
    """(grouping, value, all rows, dev half, test half) for the overall line and every group."""
    halves = {h: {g["split"]: g for g in report.groups.get("split", [])}.get(h) for h in SPLITS}
    lines = [("all", "all", report.overall, halves["dev"], halves["test"])]
    for name, groups in report.groups.items():
        if name == "split":
            continue
        by_half = {h: {str(g[name]): g for g in report.halves.get(h, {}).get(name, [])} for h in SPLITS}
        lines.extend((name, str(g[name]), g, by_half["dev"].get(str(g[name])), by_half["test"].get(str(g[name])))
                     for g in groups)
    return lines


def _print_summary(report, markdown: bool) -> None:
    lines = _summary_lines(report)
    if markdown:
        print("\n| group | value | rows | MdAPE | p90 | bias | dev rows | dev MdAPE | dev p90 | dev bias "
              "| test rows | test MdAPE | test p90 | test bias |\n|---|---|" + "---:|" * 12)
        for name, value, *gs in lines:
            cells = []
            for g in gs:
                cells += (["", "", "", ""] if g is None else
                          [str(g["rows"]), _pct(g["mdape"]), _pct(g["p90_ape"]), _pct(g["median_signed_bias"], True)])
            print(f"| {name} | {value} | " + " | ".join(cells) + " |")
        return
    print(f"\n{'':33s} {'all rows':^29s}   {'dev half':^29s}   {'test half':^29s}")
    head = f"{'rows':>4s} {'MdAPE':>7s} {'p90':>7s} {'bias':>8s}"
    print(f"{'group':10s} {'value':22s} {head}   {head}   {head}")
    for name, value, a, d, t in lines:
        print(f"{name:10s} {value:22s} {_stats(a)}   {_stats(d)}   {_stats(t)}")


def scaled_prompts(datasets: dict, factor: float) -> dict:
    """Every dataset with its prompt lengths scaled by ``factor`` (a lognormal's median, a fixed
    value, a uniform's bounds), the clip at the dataset's maximum kept: how much the assumed
    prompt lengths weigh in a prediction."""
    out = {}
    for name, spec in datasets.items():
        d = spec.input_tokens
        if d.dist == "lognormal":
            d = d.model_copy(update={"median": d.median * factor})
        elif d.dist == "fixed":
            d = d.model_copy(update={"value": max(1, round(d.value * factor))})
        elif d.dist == "uniform":
            d = d.model_copy(update={"min": max(1, round(d.min * factor)), "max": max(1, round(d.max * factor))})
        else:
            raise SystemExit(f"--prompt-scale: dataset '{name}' draws its prompt lengths from a file ({d.dist})")
        out[name] = spec.model_copy(update={"input_tokens": d})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=float, default=4.0, help="requests per replica in batch caps")
    ap.add_argument("--markdown", action="store_true", help="print the summary as a Markdown table")
    ap.add_argument("--runtime", default=None, help="replace every row's runtime (a registered runtime name)")
    ap.add_argument("--moe-routing", default=None,
                    help="MoE routing of every row: uniform (the default), balanced, power_law_<alpha>")
    ap.add_argument("--engine-kernels", action="store_true",
                    help="each row's device with the profile fitted on its engine's kernels where shipped")
    ap.add_argument("--kernels", choices=ENGINE_KERNELS, default=None,
                    help="every row's device with the profile fitted on this engine's kernels where shipped "
                         "(TensorRT-LLM rows included: what-if)")
    ap.add_argument("--compare-runtimes", action="store_true",
                    help="run the table once per registered runtime and print each one's overall figures "
                         "per half (the default runtime is the best on the dev half)")
    ap.add_argument("--prompt-scale", type=float, default=1.0,
                    help="scale every dataset's prompt lengths by this factor (sensitivity to the assumed lengths)")
    args = ap.parse_args()
    if args.prompt_scale <= 0:
        ap.error("--prompt-scale must be > 0")

    from infersim.runtime import RUNTIMES
    from infersim.validation import RunSize, load_datasets, load_table
    from infersim.validation.score import run_validation

    datasets = load_datasets()
    rows = load_table(datasets=datasets)
    if args.prompt_scale != 1.0:
        datasets = scaled_prompts(datasets, args.prompt_scale)
    if args.compare_runtimes:
        print(f"{'':10s} {'all rows':^29s}   {'dev half':^29s}   {'test half':^29s}")
        head = f"{'rows':>4s} {'MdAPE':>7s} {'p90':>7s} {'bias':>8s}"
        print(f"{'runtime':10s} {head}   {head}   {head}")
        for name in sorted(RUNTIMES):
            t0 = time.perf_counter()
            report = run_validation(rows, datasets, RunSize(batches=args.batches), runtime=name)
            _, _, a, d, t = _summary_lines(report)[0]
            print(f"{name:10s} {_stats(a)}   {_stats(d)}   {_stats(t)}   ({time.perf_counter() - t0:.0f} s)")
        return

    if args.engine_kernels and args.kernels:
        ap.error("--engine-kernels and --kernels exclude each other")
    kernels = ROW_ENGINE if args.engine_kernels else args.kernels
    t0 = time.perf_counter()
    report = run_validation(rows, datasets, RunSize(batches=args.batches), runtime=args.runtime,
                            moe_routing=args.moe_routing, kernels=kernels)
    wall = time.perf_counter() - t0
    print(f"{'row':44s} {'half':4s} {'measured':>10s} {'predicted':>10s} {'error':>8s}  runtime / device basis")
    for p in report.predictions:
        print(f"{p.row.id:44s} {split_of(p.row.id):4s} {p.measured:10,.0f} {p.predicted_output_tokens_per_s:10,.0f} "
              f"{_pct(p.signed_error, True):>8s}  {p.runtime} / {p.device_basis.split(';')[0]}")
    _print_summary(report, args.markdown)
    print(f"\n{len(rows)} rows in {wall:.1f} s wall (batches={args.batches}, runtime={args.runtime or 'per row'}"
          f"{f', kernels={kernels}' if kernels else ''}"
          f"{f', prompts x{args.prompt_scale:g}' if args.prompt_scale != 1.0 else ''})")


if __name__ == "__main__":
    main()
