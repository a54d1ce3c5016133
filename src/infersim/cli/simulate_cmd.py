"""``infersim simulate`` and ``infersim sweep-rate``: the discrete-event serving simulator."""

from __future__ import annotations

import json

import click

from .app import console
from .options import efficiency_option


def _load(scenario: str | None, requests: int | None, rate: float | None, seed: int | None,
          efficiency: str | None = None):
    from ..serving.scenario import default_scenario, load_scenario

    return apply_run_options(load_scenario(scenario) if scenario else default_scenario(), requests, rate, seed,
                             efficiency)


def apply_run_options(sc, requests: int | None, rate: float | None, seed: int | None,
                      efficiency: str | None = None):
    """A scenario (serving or pipeline) with --requests, --seed, --rate and --efficiency applied."""
    from ..errors import ConfigError
    from ..serving.sweep import with_rate

    changes = {}
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
@click.option("--requests", "-n", type=int, help="number of requests (overrides workload.requests)")
@click.option("--rate", "-r", type=float, help="mean arrival rate in requests/s (a trace is time-scaled)")
@click.option("--seed", type=int, help="random seed (overrides the scenario's)")
@click.option("--json", "as_json", is_flag=True, help="print the summary as JSON")
@click.option("--out", "out_dir", type=click.Path(file_okay=False),
              help="write requests.csv, iterations.csv, trace.json (Chrome/Perfetto) and summary.json here")
@click.option("--trace-limit", default=200_000, show_default=True, type=click.IntRange(min=0),
              help="iterations written to trace.json")
@efficiency_option
def simulate_cmd(scenario: str | None = None, requests: int | None = None, rate: float | None = None,
                 seed: int | None = None, as_json: bool = False, out_dir: str | None = None,
                 trace_limit: int = 200_000, efficiency: str | None = None) -> None:
    """Simulate serving a workload: tail latency, throughput, goodput.

    SCENARIO is a scenario YAML (see examples/scenarios/). Without it, runs the built-in
    default: Llama-3.1-8B on one H100 SXM, vLLM-style continuous batching, 2,000 chat
    requests arriving as a Poisson process at ~70% of the replica's capacity.
    """
    from ..report.serving_view import render_summary
    from ..serving.engine import simulate
    from ..serving.metrics import iterations, summarize
    from ..serving.outputs import summary_json, write_outputs

    sc = _load(scenario, requests, rate, seed, efficiency)
    result = simulate(sc)
    it = iterations(result, detail=bool(out_dir))
    summary = summarize(result, it)
    if out_dir:
        write_outputs(result, summary, it, out_dir, trace_limit)
    if as_json:
        click.echo(summary_json(summary))
    else:
        render_summary(summary, console)
        if out_dir:
            console.print(f"[dim]wrote requests.csv, iterations.csv, trace.json, summary.json to {out_dir}[/dim]")


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
@click.option("--start", type=float, help="first rate of the automatic search (default: the scenario's rate)")
@click.option("--tolerance", default=0.05, show_default=True, type=float,
              help="relative width at which the automatic search stops")
@click.option("--requests", "-n", type=int, help="requests per run (overrides workload.requests)")
@click.option("--seed", type=int, help="random seed (overrides the scenario's)")
@click.option("--json", "as_json", is_flag=True, help="print the sweep as JSON")
@efficiency_option
def sweep_rate_cmd(scenario: str | None = None, rates: str | None = None, auto: bool = False,
                   start: float | None = None, tolerance: float = 0.05, requests: int | None = None,
                   seed: int | None = None, as_json: bool = False, efficiency: str | None = None) -> None:
    """Highest request rate that meets the scenario's SLOs, with a latency-vs-load table."""
    from ..errors import InfersimError
    from ..report.serving_view import render_sweep
    from ..serving.outputs import json_safe
    from ..serving.sweep import find_capacity, sweep_rates

    if rates and auto:
        raise InfersimError("give either --rates or --auto, not both")
    sc = _load(scenario, requests, None, seed, efficiency)
    if rates:
        result = sweep_rates(sc, _parse_rates(rates))
    else:
        if start is not None and start <= 0:
            raise InfersimError(f"--start must be > 0, got {start}")
        result = find_capacity(sc, start_rate=start, tolerance=tolerance)
    if as_json:
        out = {"scenario": result.scenario, "capacity_rps": result.capacity_rps,
               "points": [{"rate": p.rate, **p.summary.to_dict()} for p in result.sorted_points()]}
        click.echo(json.dumps(json_safe(out), indent=2))
    else:
        render_sweep(result, console)
