"""``infersim pipeline`` and ``infersim pipeline-study``: multi-stage / disaggregated serving."""

from __future__ import annotations

import json

import click

from .app import console
from .options import COUNT, RATE, SEED, efficiency_option, html_option, runtime_option, write_html_report


def _load(path: str, requests: int | None, rate: float | None, seed: int | None, runtime: str | None = None,
          efficiency: str | None = None):
    from ..serving.pipeline.spec import load_pipeline
    from .simulate_cmd import apply_run_options

    return apply_run_options(load_pipeline(path), requests, rate, seed, runtime, efficiency)


@click.command("pipeline")
@click.argument("scenario", type=click.Path(dir_okay=False))
@click.option("--requests", "-n", type=COUNT, help="number of requests (overrides workload.requests)")
@click.option("--rate", "-r", type=RATE, help="mean arrival rate in requests/s (a trace is time-scaled)")
@click.option("--seed", type=SEED, help="random seed (overrides the scenario's)")
@click.option("--json", "as_json", is_flag=True, help="print the summary as JSON")
@runtime_option
@html_option
@efficiency_option
def pipeline_cmd(scenario: str, requests: int | None = None, rate: float | None = None, seed: int | None = None,
                 as_json: bool = False, runtime: str | None = None, html_path: str | None = None,
                 efficiency: str | None = None) -> None:
    """Simulate a multi-stage serving pipeline: P/D disaggregation, AFD, RAG stages.

    SCENARIO is a pipeline YAML (engines, a request graph, a workload and SLOs; see
    examples/disagg/). Prints end-to-end latency, per-stage times, per-engine load, throughput,
    $ per million output tokens and joules per output token.
    """
    from ..report.pipeline_view import render_pipeline
    from ..serving.outputs import json_safe
    from ..serving.pipeline.metrics import summarize_pipeline
    from ..serving.pipeline.simulator import simulate_pipeline

    sc = _load(scenario, requests, rate, seed, runtime, efficiency)
    summary = summarize_pipeline(simulate_pipeline(sc))
    if html_path:
        write_html_report("pipeline", json_safe(summary.to_dict()), html_path)
    if as_json:
        click.echo(json.dumps(json_safe(summary.to_dict()), indent=2))
    else:
        render_pipeline(summary, console)


@click.command("pipeline-study")
@click.argument("scenario", type=click.Path(dir_okay=False))
@click.option("--seed", type=SEED, help="random seed (overrides the scenario's)")
@click.option("--json", "as_json", is_flag=True, help="print the study's rows as JSON")
@click.option("--quiet", "-q", is_flag=True, help="no progress lines")
@runtime_option
@html_option
@efficiency_option
def pipeline_study_cmd(scenario: str, seed: int | None = None, as_json: bool = False, quiet: bool = False,
                       runtime: str | None = None, html_path: str | None = None,
                       efficiency: str | None = None) -> None:
    """Run the comparison study of a pipeline scenario's `study:` section and print its table.

    Studies: pd_vs_colocated (prefill/decode split vs colocated chunked prefill per workload),
    afd (colocated vs P/D vs attention-FFN disaggregation of a MoE model over attention:FFN ratios),
    rag (chips split between retrieval servers and inference replicas per database size).
    """
    from ..report.pipeline_view import render_study
    from ..serving.outputs import json_safe
    from ..serving.pipeline.studies import run_study

    from .progress import progress_reporter

    sc = _load(scenario, None, None, seed, runtime, efficiency)
    with progress_reporter("pipeline-study", quiet=quiet or as_json) as progress:
        result = run_study(sc, progress)
    if as_json or html_path:
        rows = [{"group": r.study, "configuration": r.label, "gpus": r.gpus, "capacity_rps": r.capacity_rps,
                 "goodput_per_gpu": r.goodput_per_gpu,
                 "details": {k: v for k, v in r.details.items() if k != "at_target"},
                 "slos_met_at_target": r.details["at_target"].slo_met if "at_target" in r.details else None,
                 "summary_at_capacity": r.summary.to_dict() if r.summary is not None else None}
                for r in result.rows]
        data = json_safe({"study": result.kind, "scenario": result.scenario, "rows": rows, "notes": result.notes})
        if html_path:
            write_html_report("pipeline-study", data, html_path)
    if as_json:
        click.echo(json.dumps(data, indent=2))
    else:
        render_study(result, console)
