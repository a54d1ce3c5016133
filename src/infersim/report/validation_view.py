"""Rendering of ``infersim validate``: measured vs predicted system throughput, per row and by group."""

from __future__ import annotations

import csv
import io
import math

from rich.console import Console
from rich.table import Table

from ..validation.score import ValidationReport


def _pct(x: float | None, signed: bool = False) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{100 * x:+.1f}%" if signed else f"{100 * x:.1f}%"


def short_basis(text: str, width: int = 16) -> str:
    """A device basis in a few words: its first clause's key phrase, cut to ``width`` characters."""
    first = text.split(";")[0].strip()
    low = first.lower()
    for phrase, tag in (("uncalibrated", "uncalibrated"), ("transferred", "transferred"),
                        ("calibrat", "calibrated"), ("spec sheet", "spec sheet")):
        if phrase in low:
            return tag
    return first if len(first) <= width else first[: width - 1] + "…"


def summary_line(report: ValidationReport) -> str:
    o = report.overall
    return (f"{o['rows']} rows: MdAPE {_pct(o['mdape'])}, p90 |error| {_pct(o['p90_ape'])}, "
            f"median bias {_pct(o['median_signed_bias'], True)}")


def render_validation(report: ValidationReport, console: Console) -> None:
    console.print("[bold]infersim validate[/bold]: predicted vs published output tokens/s "
                  "(error = (predicted - measured) / measured; > 0: the model is optimistic)")
    tags = [f"{p.runtime}, {short_basis(p.device_basis)}" for p in report.predictions]
    per_row = len(set(tags)) > 1
    title = "Per row (output tokens/s)" + ("" if per_row else f"; runtime, device basis: {tags[0] if tags else '-'}")
    t = Table(title=title, title_justify="left")
    heads = ("row", "layout", "precision", "measured", "predicted", "error") + (("runtime, basis",) if per_row else ())
    for h in heads:
        t.add_column(h, justify="right" if h in ("measured", "predicted", "error") else "left",
                     no_wrap=h != "runtime, basis")
    for p, tag in zip(report.predictions, tags):
        r = p.row
        cells = [r.id, f"{r.device_count}x {r.device} TP{r.tp} PP{r.pp}", r.precision,
                 f"{r.measured_output_tokens_per_s:,.0f}", f"{p.predicted_output_tokens_per_s:,.0f}",
                 _pct(p.signed_error, True)]
        t.add_row(*cells, *((tag,) if per_row else ()))
    console.print(t)
    g = Table(title="By group (MdAPE = median |error|; bias = median signed error)", title_justify="left")
    for h in ("group", "value", "rows", "MdAPE", "p90 |error|", "bias"):
        g.add_column(h, justify="left" if h in ("group", "value") else "right")
    for name, groups in report.groups.items():
        for i, row in enumerate(groups):
            g.add_row(name if i == 0 else "", str(row[name]), str(row["rows"]), _pct(row["mdape"]),
                      _pct(row["p90_ape"]), _pct(row["median_signed_bias"], True),
                      end_section=i == len(groups) - 1)
    console.print(g)
    runtimes = sorted({p.runtime for p in report.predictions})
    console.print(f"[dim]runtime layer: {', '.join(runtimes)}[/dim]", highlight=False)
    bases = {p.row.device: p.device_basis for p in report.predictions}
    for device, basis in sorted(bases.items()):
        console.print(f"[dim]device basis {device}: {basis}[/dim]", highlight=False)
    console.print(f"[bold]overall[/bold] {summary_line(report)}", highlight=False)


def validation_csv(report: ValidationReport) -> str:
    """One line per row (the fields of :meth:`ValidationReport.rows_dict`)."""
    rows = report.rows_dict()
    buf = io.StringIO()
    if rows:
        w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    return buf.getvalue()
