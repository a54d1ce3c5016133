"""``infersim simulate`` and ``infersim sweep-rate``: the discrete-event serving simulator."""

from __future__ import annotations

import json

import click

from .app import console, err_console
from .options import (COUNT, RATE, SEED, Real, check_runtime_flag, efficiency_option, html_option,
                      parse_transform_flags, runtime_option, transform_option, write_html_report)


def _load(scenario: str | None, requests: int | None, rate: float | None, seed: int | None, transforms=(),
          runtime: str | None = None, efficiency: str | None = None):
    from ..serving.scenario import default_scenario, load_scenario

    sc = load_scenario(scenario) if scenario else default_scenario()
    return apply_run_options(with_transforms(sc, transforms), requests, rate, seed, runtime, efficiency)


def with_transforms(sc, flags):
    """The scenario with ``--transform`` flags appended to its ``transforms`` block (a key given
    in both is an error naming the flag)."""
    if not flags:
        return sc
    chosen = parse_transform_flags(flags)
    existing = {t.key for t in sc.parsed_transforms()}
    for t in chosen:
        if t.key in existing:
            from ..errors import InfersimError

            raise InfersimError(f"{t.origin}: the scenario's transforms block already sets '{t.key}'")
    return sc.with_changes(transforms=list(sc.transforms) + [t.spec() for t in chosen])


def apply_run_options(sc, requests: int | None, rate: float | None, seed: int | None, runtime: str | None = None,
                      efficiency: str | None = None):
    """A scenario (serving or pipeline) with --requests, --seed, --runtime, --rate and --efficiency applied."""
    from ..errors import ConfigError
    from ..serving.sweep import with_rate

    changes = {}
    if check_runtime_flag(runtime) is not None:
        changes["runtime"] = runtime
    if requests is not None:
        if requests < 1:
            raise ConfigError(sc.origin, "--requests", f"must be >= 1, got {requests}")
        changes["workload.requests"] = requests
    if seed is not None:
        if seed < 0:
            raise ConfigError(sc.origin, "--seed", f"must be >= 0, got {seed}")
        changes["seed"] = seed
    if efficiency is not None:
        changes["efficiency"] = efficiency
    if changes:
        sc = sc.with_changes(**changes)
    if rate is not None:
        sc = with_rate(sc, rate)
    return sc


@click.command("simulate")
@click.argument("scenario", required=False)
@click.option("--requests", "-n", type=COUNT, help="number of requests (overrides workload.requests)")
@click.option("--rate", "-r", type=RATE, help="mean arrival rate in requests/s (a trace is time-scaled)")
@click.option("--seed", type=SEED, help="random seed (overrides the scenario's)")
@click.option("--json", "as_json", is_flag=True, help="print the summary as JSON")
@click.option("--out", "out_dir", type=click.Path(file_okay=False),
              help="write requests.csv, iterations.csv, trace.json (Chrome/Perfetto) and summary.json here")
@click.option("--trace-limit", default=200_000, show_default=True, type=click.IntRange(min=0),
              help="iterations written to trace.json")
@click.option("--stream/--in-memory", "stream", default=None,
              help="stream per-request records to disk in chunks (bounded memory; no iterations.csv, trace.json "
                   "or --html); default: stream above 1,000,000 requests")
@transform_option
@runtime_option
@html_option
@efficiency_option
def simulate_cmd(scenario: str | None = None, requests: int | None = None, rate: float | None = None,
                 seed: int | None = None, as_json: bool = False, out_dir: str | None = None,
                 trace_limit: int = 200_000, transforms: tuple = (), runtime: str | None = None,
                 html_path: str | None = None, efficiency: str | None = None, stream: bool | None = None) -> None:
    """Simulate serving a workload: tail latency, throughput, goodput.

    SCENARIO is a scenario YAML (see examples/scenarios/). Without it, runs the built-in
    default: Llama-3.1-8B on one H100 SXM, vLLM-style continuous batching, 2,000 chat
    requests arriving as a Poisson process at ~70% of the replica's capacity.
    """
    from ..report.serving_view import render_summary
    from ..serving.engine import simulate
    from ..serving.metrics import iterations, itl_samples, request_metrics, summarize
    from ..serving.outputs import json_safe, summary_json, write_outputs

    sc = _load(scenario, requests, rate, seed, transforms, runtime, efficiency)
    if stream is None:
        from ..serving.streaming import STREAM_ABOVE

        stream = (sc.workload.requests or 0) > STREAM_ABOVE
    if stream:
        _simulate_streamed(sc, as_json, out_dir, html_path)
        return
    result = simulate(sc)
    it = iterations(result, detail=bool(out_dir))
    summary = summarize(result, it)
    if out_dir:
        write_outputs(result, summary, it, out_dir, trace_limit)
    if html_path:
        from ..report.html.serving_html import simulate_plot_data

        per_request = {**result.requests, **request_metrics(result.requests)}
        data = json_safe(summary.to_dict())
        data["plots"] = simulate_plot_data(per_request, it, itl_samples(result, it))
        write_html_report("simulate", data, html_path)
    if as_json:
        click.echo(summary_json(summary))
    else:
        render_summary(summary, console)
        if out_dir:
            console.print(f"[dim]wrote requests.csv, iterations.csv, trace.json, summary.json to {out_dir}[/dim]")


def _simulate_streamed(sc, as_json: bool, out_dir: str | None, html_path: str | None) -> None:
    from ..errors import InfersimError
    from ..report.serving_view import render_summary
    from ..serving.outputs import summary_json
    from ..serving.streaming import simulate_streaming

    if html_path:
        raise InfersimError("--html needs the per-request arrays in memory: run with --in-memory (at most a few "
                            "million requests) or without --html")
    run = simulate_streaming(sc, out_dir)
    if as_json:
        click.echo(summary_json(run.summary))
    else:
        render_summary(run.summary, console)
        if out_dir:
            console.print(f"[dim]streamed: wrote requests.csv, summary.json to {out_dir}[/dim]")


def _parse_rates(text: str) -> list[float]:
    from ..errors import InfersimError

    try:
        rates = [float(x) for x in text.replace(" ", "").split(",") if x]
    except ValueError:
        raise InfersimError(f"--rates: expected comma-separated numbers like 1,2,4,8; got '{text}'") from None
    if not rates or any(r <= 0 for r in rates):
        raise InfersimError(f"--rates: expected positive rates (requests/s); got '{text}'")
    return rates


@click.command("sweep-rate")
@click.argument("scenario", required=False)
@click.option("--rates", help="comma-separated request rates (req/s), e.g. 1,2,4,8")
@click.option("--auto", is_flag=True, help="search the capacity by doubling then bisection (default without --rates)")
@click.option("--start", type=RATE, help="first rate of the automatic search (default: the scenario's rate)")
@click.option("--tolerance", default=0.05, show_default=True, type=Real(min=0.0, max=1.0, min_open=True),
              help="relative width at which the automatic search stops")
@click.option("--requests", "-n", type=COUNT, help="requests per run (overrides workload.requests)")
@click.option("--seed", type=SEED, help="random seed (overrides the scenario's)")
@click.option("--json", "as_json", is_flag=True, help="print the sweep as JSON")
@transform_option
@runtime_option
@html_option
@efficiency_option
def sweep_rate_cmd(scenario: str | None = None, rates: str | None = None, auto: bool = False,
                   start: float | None = None, tolerance: float = 0.05, requests: int | None = None,
                   seed: int | None = None, as_json: bool = False, transforms: tuple = (),
                   runtime: str | None = None, html_path: str | None = None, efficiency: str | None = None) -> None:
    """Highest request rate that meets the scenario's SLOs, with a latency-vs-load table."""
    from ..errors import InfersimError
    from ..report.serving_view import render_sweep
    from ..serving.outputs import json_safe
    from ..serving.sweep import find_capacity, sweep_rates

    if rates and auto:
        raise InfersimError("give either --rates or --auto, not both")
    from .progress import progress_reporter

    sc = _load(scenario, requests, None, seed, transforms, runtime, efficiency)
    if start is not None and start <= 0:
        raise InfersimError(f"--start must be > 0, got {start}")
    with progress_reporter("sweep-rate", quiet=as_json or not err_console.is_terminal) as progress:
        if rates:
            result = sweep_rates(sc, _parse_rates(rates), progress)
        else:
            result = find_capacity(sc, start_rate=start, tolerance=tolerance, progress=progress)
    out = json_safe({"scenario": result.scenario, "capacity_rps": result.capacity_rps,
                     "points": [{"rate": p.rate, **p.summary.to_dict()} for p in result.sorted_points()]})
    if html_path:
        write_html_report("sweep-rate", out, html_path)
    if as_json:
        click.echo(json.dumps(out, indent=2))
    else:
        render_sweep(result, console)
