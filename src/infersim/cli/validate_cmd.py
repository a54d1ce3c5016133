"""``infersim validate``: predicted vs published whole-system throughputs.

    infersim validate                          # the bundled table (MLPerf Inference results)
    infersim validate --device h100-sxm --model llama-2-70b --scenario Offline
    infersim validate --json                   # per row and grouped statistics as JSON
    infersim validate --runtime none           # every row with the kernels-only runtime
    infersim validate --split test             # only the test half (never tuned on)
    infersim validate --csv my_table.csv --out results.csv
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from .app import console, err_console
from .options import (check_moe_routing_flag, check_runtime_flag, html_option, moe_routing_option, runtime_option,
                      write_html_report)


@click.command("validate")
@click.option("--csv", "table_path", type=click.Path(dir_okay=False),
              help="a validation table of your own (default: the bundled MLPerf table)")
@click.option("--datasets", "datasets_path", type=click.Path(dir_okay=False),
              help="dataset length distributions for --csv (default: the bundled datasets.yaml)")
@click.option("--device", "devices", multiple=True, help="only rows on this catalog device (repeatable)")
@click.option("--model", "models", multiple=True, help="only rows of this catalog model (repeatable)")
@click.option("--scenario", "scenarios", multiple=True, type=click.Choice(["Offline", "Server"], case_sensitive=False),
              help="only Offline or Server rows")
@click.option("--id", "ids", multiple=True, help="only the row with this id (repeatable)")
@click.option("--split", "half", type=click.Choice(["dev", "test"]),
              help="only one half of the table (rows split by a hash of their id; docs/validation.md)")
@click.option("--batches", default=4.0, show_default=True, type=click.FloatRange(min=0.5),
              help="requests per simulated replica, in multiples of the row's batch cap")
@runtime_option(default="each row's own, the table's runtime column")
@moe_routing_option
@click.option("--engine-kernels", is_flag=True,
              help="load each row's device with the profile fitted on its own engine's kernels where one is "
                   "shipped (vLLM, SGLang; TensorRT-LLM 1.0 for the MLPerf v5.1 rows whose harness pinned it) "
                   "(default: the default profiles, fitted on TensorRT-LLM's newest kernels)")
@click.option("--json", "as_json", is_flag=True, help="print per-row and grouped results as JSON")
@click.option("--out", "out_path", type=click.Path(dir_okay=False), help="also write per-row results to this CSV")
@html_option
def validate_cmd(table_path: str | None = None, datasets_path: str | None = None, devices: tuple = (),
                 models: tuple = (), scenarios: tuple = (), ids: tuple = (), half: str | None = None,
                 batches: float = 4.0,
                 runtime: str | None = None, as_json: bool = False, out_path: str | None = None,
                 html_path: str | None = None, moe_routing: str | None = None, engine_kernels: bool = False) -> None:
    """Predict published system throughputs and compare: MdAPE, p90 and bias by group.

    Each row of the table is one published measurement (model, device, count, TP/PP/EP,
    precision, dataset, engine, scenario) with its source. Offline rows are predicted with
    every request queued at t = 0 (output tokens / makespan); Server rows with the highest
    Poisson rate that meets the row's p99 TTFT and TPOT limits. The output names the
    runtime and the device basis (calibrated or not) used for every row; --runtime replaces
    every row's own runtime (its `runtime` column) to compare runtime profiles;
    --engine-kernels models each row with its own engine's measured kernels where shipped.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ..errors import InfersimError
    from ..report.validation_view import render_validation, validation_csv
    from ..validation import RunSize, load_datasets, load_table, select
    from ..validation.predict import ROW_ENGINE
    from ..validation.score import run_validation, split_of

    runtime = check_runtime_flag(runtime)
    moe_routing = moe_routing and check_moe_routing_flag(moe_routing)
    datasets = load_datasets(datasets_path)
    rows = select(load_table(table_path, datasets), device=devices, model=models,
                  scenario=[s.capitalize() for s in scenarios], ids=ids)
    if half is not None:
        rows = [r for r in rows if split_of(r.id) == half]
    if not rows:
        raise InfersimError("no validation row matches the filters (--device, --model, --scenario, --id, --split)")
    size = RunSize(batches=batches)
    with Progress(TextColumn("[dim]validate[/dim] {task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err_console, transient=True) as progress:
        task = progress.add_task(rows[0].id, total=len(rows))
        order = {r.id: i for i, r in enumerate(rows)}

        def on_row(row) -> None:
            nxt = order[row.id] + 1
            progress.update(task, advance=1, description=rows[nxt].id if nxt < len(rows) else "done")

        report = run_validation(rows, datasets, size, on_row, runtime=runtime, moe_routing=moe_routing,
                                kernels=ROW_ENGINE if engine_kernels else None)
    if out_path:
        Path(out_path).write_text(validation_csv(report))
    if html_path:
        write_html_report("validate", json.loads(json.dumps(report.to_dict(), default=float)), html_path)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2, default=float))
    else:
        render_validation(report, console)
        if out_path:
            console.print(f"[dim]wrote {len(report.predictions)} rows to {out_path}[/dim]")
