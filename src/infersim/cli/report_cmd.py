"""``infersim report PATH``: an HTML report of a --json output, a simulate --out folder or a results database."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..errors import InfersimError
from .options import write_html_report

_DUCKDB_MAGIC = b"DUCK"  # bytes 8..12 of a DuckDB database file


def _is_duckdb(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(12)[8:12] == _DUCKDB_MAGIC


def _study_reports(db: Path, study: str | None, output: str | None) -> list[tuple[str, dict, str]]:
    from ..report.html.search_html import study_data
    from ..search.results import load_results
    from ..search.store import open_store

    with open_store(db) as store:
        names = [study] if study else store.study_names()
        if not names:
            raise InfersimError(f"{db}: the results database holds no study")
        if output and len(names) > 1:
            raise InfersimError(f"{db}: holds {len(names)} studies ({', '.join(names)}); pick one with --study "
                                "or leave out --output to write one file per study")
        return [("search", study_data(load_results(store, name)), output or f"{name}.html") for name in names]


def _folder_report(folder: Path, output: str | None) -> tuple[str, dict, str]:
    from ..report.html.serving_html import simulate_plot_data

    summary = folder / "summary.json"
    if not summary.is_file():
        raise InfersimError(f"{folder}: not an infersim output folder (no summary.json; expected the folder "
                            "`infersim simulate --out` writes)")
    data = _read_json(summary)
    requests = _read_columns(folder / "requests.csv")
    iterations = _read_columns(folder / "iterations.csv") if (folder / "iterations.csv").is_file() else None
    data["plots"] = simulate_plot_data(requests, iterations)
    return "simulate", data, output or str(folder / "report.html")


def _read_columns(path: Path) -> dict:
    import csv

    import numpy as np

    if not path.is_file():
        raise InfersimError(f"{path}: missing (the folder `infersim simulate --out` writes has it)")
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    if not rows:
        raise InfersimError(f"{path}: empty file")
    header, body = rows[0], rows[1:]
    out = {}
    for i, name in enumerate(header):
        try:
            out[name] = np.array([float(r[i]) if r[i] != "" else np.nan for r in body], dtype=np.float64)
        except (ValueError, IndexError):
            raise InfersimError(f"{path}: column '{name}' holds a value that is not a number") from None
    return out


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise InfersimError(f"{path}: not an infersim output (a binary file that is not a results database)") from None
    except json.JSONDecodeError as exc:
        raise InfersimError(f"{path}: not an infersim output (not JSON: {exc.msg} at line {exc.lineno})") from None


@click.command("report")
@click.argument("path", type=click.Path())
@click.option("--output", "-o", default=None, type=click.Path(dir_okay=False),
              help="HTML file to write (default: PATH with .html; a folder's report.html; STUDY.html)")
@click.option("--study", default=None, help="results database: the study to report (default: every study)")
def report_cmd(path: str, output: str | None = None, study: str | None = None) -> None:
    """Write a self-contained HTML report (plots) of an infersim output.

    PATH is the --json output of estimate, simulate, sweep-rate, pipeline, pipeline-study or
    fidelity; a folder written by `simulate --out`; or a results database (DuckDB) of `search`.
    """
    from ..report.html import detect_kind

    p = Path(path)
    if not p.exists():
        raise InfersimError(f"{p}: no such file, folder or results database")
    if study and not (p.is_file() and _is_duckdb(p)):
        raise InfersimError(f"--study: {p} is not a results database")
    if p.is_dir():
        jobs = [_folder_report(p, output)]
    elif _is_duckdb(p):
        jobs = _study_reports(p, study, output)
    else:
        data = _read_json(p)
        jobs = [(detect_kind(data, str(p)), data, output or str(p.with_suffix(".html")))]
    for kind, data, out in jobs:
        write_html_report(kind, data, out)
