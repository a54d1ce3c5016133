"""``infersim search`` (run a study) and ``infersim results`` (query the results database)."""

from __future__ import annotations

import click

from ..errors import InfersimError
from ..search.store import DEFAULT_DB
from .app import console, err_console
from .options import (COUNT, NONNEG, check_runtime_flag, efficiency_option, html_option, runtime_option,
                      write_html_report)

_DB_OPTION = click.option("--db", default=DEFAULT_DB, show_default=True, type=click.Path(dir_okay=False),
                          help="results database (DuckDB file)")


def _default_workers(study, workers: int | None) -> int | None:
    """Vectorized evaluators run in-process by default (the database writer is their bottleneck);
    per-point evaluators use every core."""
    if workers is not None:
        if workers < 1:
            raise InfersimError(f"--workers must be >= 1, got {workers}")
        return workers
    from ..search.evaluators.base import evaluator_class

    return 1 if evaluator_class(study.context).chunk_size >= 1024 else None


@click.command("search")
@click.argument("study_file", metavar="[STUDY]", required=False, type=click.Path(dir_okay=False))
@click.option("--backend", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="local: process pool on this machine; ray: tasks on a Ray cluster")
@click.option("--address", default=None, help="Ray cluster address (--backend ray); default: a new local Ray instance")
@click.option("--workers", type=COUNT, default=None,
              help="worker processes (local backend); default: in-process for the vectorized static evaluator, "
                   "all cores for per-point evaluators")
@_DB_OPTION
@click.option("--budget", type=NONNEG, default=None, help="trials to run (default: the study's budget, or the whole grid)")
@click.option("--wait", is_flag=True, help="if another search is writing the database, wait for it instead of refusing")
@click.option("--limit", default=20, show_default=True, type=NONNEG, help="Pareto front rows to show")
@click.option("--no-progress", is_flag=True, help="no live progress bar")
@runtime_option
@html_option
@efficiency_option
def search_cmd(study_file: str | None = None, backend: str = "local", address: str | None = None,
               workers: int | None = None, db: str = DEFAULT_DB, budget: int | None = None, wait: bool = False,
               limit: int = 20, no_progress: bool = False, runtime: str | None = None,
               html_path: str | None = None, efficiency: str | None = None) -> None:
    """Search deployments for the best cost / goodput under SLOs.

    With no STUDY, runs the built-in study: Llama-3.1-70B chat on H100 SXM, H200,
    B200 and MI300X over TP, replicas, max batch, chunked-prefill budget and weight
    dtype, under TTFT p99 <= 1 s and TPOT p90 <= 60 ms, minimizing $ per million
    output tokens and maximizing goodput per device. Results go to --db; running
    the same study again skips the points already stored.
    """
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)

    from ..report.search_view import best_text, render_front, render_run
    from ..search.backends import make_backend
    from ..search.defaults import default_study
    from ..search.results import fill_points, load_results, pareto_front
    from ..search.runner import run_study
    from ..search.store import open_store
    from ..search.study import load_study

    study = load_study(study_file, efficiency) if study_file else default_study(efficiency)
    if check_runtime_flag(runtime) is not None:
        study = study.with_runtime(runtime)
    if budget is not None and budget < 1:
        raise InfersimError(f"--budget must be >= 1, got {budget}")
    if address and backend != "ray":
        raise InfersimError("--address needs --backend ray")
    n_workers = _default_workers(study, workers) if backend == "local" else workers
    total = budget if budget is not None else study.trial_budget()
    with open_store(db, write=True, wait=wait) as store, \
            make_backend(backend, workers=n_workers, address=address) as pool:
        bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(bar_width=24), MofNCompleteColumn(),
                       TextColumn("feasible {task.fields[feasible]}"), TextColumn("best: {task.fields[best]}"),
                       TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=err_console,
                       disable=no_progress or not err_console.is_terminal, transient=False,
                       redirect_stdout=False, redirect_stderr=False)
        with bar:
            task = bar.add_task(study.name, total=total, feasible=0, best="-")

            def update(p) -> None:
                bar.update(task, completed=p.done, feasible=p.feasible,
                           best=best_text(p.best, study.scoring.objectives))

            progress = run_study(study, store, pool, budget=budget, on_progress=update)
            update(progress)
        results = load_results(store, study.name, _shown_metrics(study.scoring))
        front = fill_points(store, study.name, pareto_front(results))
        full = load_results(store, study.name) if html_path else None  # every point's configuration
    render_run(study, progress, console, db)
    render_front(results, front, results.scoring.objectives, console, limit=limit)
    if html_path:
        from ..report.html.search_html import study_data

        write_html_report("search", study_data(full), html_path)


@click.group("results")
def results_group() -> None:
    """Query the results database: every evaluated point, its configuration, metrics and feasibility."""


@results_group.command("list")
@_DB_OPTION
def results_list(db: str = DEFAULT_DB) -> None:
    """Studies in the database with their counts."""
    from ..report.search_view import render_studies
    from ..search.store import open_store

    with open_store(db) as store:
        render_studies(store.summaries(), console, db)


@results_group.command("show")
@click.argument("study")
@_DB_OPTION
@click.option("--status", type=click.Choice(["all", "ok", "rejected", "failed"]), default="all", show_default=True)
@click.option("--feasible", "only_feasible", is_flag=True, help="only feasible points")
@click.option("--sort", "sort_by", default=None, help="METRIC[:min|max] to sort by (default: trial order)")
@click.option("--limit", default=50, show_default=True, type=NONNEG)
def results_show(study: str, db: str = DEFAULT_DB, status: str = "all", only_feasible: bool = False,
                 sort_by: str | None = None, limit: int = 50) -> None:
    """Every evaluated point of STUDY: configuration, metrics, feasibility, front rank, error."""
    from ..report.search_view import render_points
    from ..search.results import load_results, parse_objectives, rank_points
    from ..search.store import open_store

    with open_store(db) as store:
        results = load_results(store, study)
    rank_points(results)
    points = [p for p in results.points if (status == "all" or p.status == status)
              and (p.feasible or not only_feasible)]
    if sort_by:
        (objective,) = parse_objectives([sort_by], _metric_names(results))
        points.sort(key=lambda p: (p.metrics is None or objective.metric not in p.metrics,
                                   objective.sign * (p.metrics or {}).get(objective.metric, 0.0)))
    render_points(results, points, console, limit=limit)


@results_group.command("pareto")
@click.argument("study")
@_DB_OPTION
@click.option("--objective", "objectives", multiple=True, metavar="METRIC:min|max",
              help="objectives for the front (repeatable); default: the study's")
@click.option("--limit", default=50, show_default=True, type=NONNEG)
@click.option("--all-rows", is_flag=True, help="list points with equal objective values separately")
@html_option
def results_pareto(study: str, db: str = DEFAULT_DB, objectives: tuple[str, ...] = (), limit: int = 50,
                   all_rows: bool = False, html_path: str | None = None) -> None:
    """The Pareto front of STUDY's feasible points, for its objectives or any others."""
    from ..report.search_view import render_front
    from ..search.results import fill_points, load_results, parse_objectives, pareto_front
    from ..search.scoring import Scoring
    from ..search.store import open_store

    with open_store(db) as store:
        record = store.study_record(study)
        known = set(store.metric_names(study)) if objectives else None
        chosen = parse_objectives(list(objectives), known) if objectives else None
        scoring = Scoring.from_dict(record["scoring"]) if record else None
        wanted = _shown_metrics(scoring, chosen) if scoring else []
        results = load_results(store, study, wanted)
        chosen = chosen or results.scoring.objectives
        front = fill_points(store, study, pareto_front(results, chosen))
        full = load_results(store, study) if html_path else None  # every point's configuration
    render_front(results, front, chosen, console, limit=limit, collapse=not all_rows)
    if html_path:
        from ..report.html.search_html import study_data

        write_html_report("search", study_data(full, chosen), html_path)


@results_group.command("export")
@click.argument("study")
@_DB_OPTION
@click.option("--csv", "csv_path", required=True, type=click.Path(dir_okay=False), help="file to write")
def results_export(study: str, db: str = DEFAULT_DB, csv_path: str = "") -> None:
    """Write every point of STUDY to a CSV file (config.* and metrics.* columns, Pareto rank)."""
    from ..search.results import export_csv
    from ..search.store import open_store

    with open_store(db) as store:
        n = export_csv(store, study, csv_path)
    console.print(f"wrote {n} points of '{study}' to {csv_path}")


def _shown_metrics(scoring, objectives=None) -> list[str]:
    """The metric columns a front needs: its objectives and the study's constraints."""
    return [o.metric for o in (objectives or scoring.objectives)] + [c.metric for c in scoring.constraints]


def _metric_names(results) -> set[str]:
    return {k for p in results.points for k in (p.metrics or {})}
