"""Rendering of fidelity reports (rich tables or Markdown) and calibration summaries."""

from __future__ import annotations

import math

from rich.console import Console
from rich.table import Table

from ..fidelity.calibrate import Calibration
from ..fidelity.evaluate import ALL, SPLITS, TARGETS, FidelityReport, Score
from ..fidelity.kernels import FAMILIES


def _pct(x: float | None, signed: bool = False) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{100 * x:+.1f}%" if signed else f"{100 * x:.1f}%"


def _cells(s: Score | None) -> list[str]:
    return ["-", "-", "-"] if s is None else [_pct(s.mdape), _pct(s.p90_ape), _pct(s.median_signed_bias, True)]


def _target_mark(report: FidelityReport, split: str, mode: str, device: str, family: str) -> str:
    for c in report.checks():
        if c.target.split == split and c.target.mode == mode and c.device == device and c.family == family:
            return f"{'ok' if c.passed else 'MISS'} (<= {100 * c.target.max_mdape:.0f}%)"
    return ""


def _rows(report: FidelityReport, split: str):
    devices = sorted({s.device for s in report.scores if s.split == split},
                     key=lambda d: (d != report.header.get("source_device"), d))
    for d in devices:
        fams = [f for f in FAMILIES + (ALL,)
                if any(s.device == d and s.family == f and s.split == split for s in report.scores)]
        for f in fams:
            yield d, f


def shapes_columns(report: FidelityReport, split: str = "shapes") -> tuple[list[str], list[list[str]]]:
    """Analytical / calibrated / residual columns of the test split (or another split of the
    measured devices' own rows: ``validation``, ``framework``)."""
    modes = [m for m in ("analytical", "calibrated", "residual")
             if any(s.mode == m and s.split == split for s in report.scores)]
    label = {"analytical": report.given_label, "calibrated": "calibrated", "residual": "calibrated+residual"}
    header = ["device", "family", "test rows" if split == "shapes" else "rows"]
    for m in modes:
        header += [f"{label[m]} MdAPE", "p90", "bias"]
    target_mode = "calibrated" if "calibrated" in modes and split == "shapes" else None
    if target_mode:
        header.append("target (calibrated)")
    body = []
    for d, f in _rows(report, split):
        base = report.score(split, d, f, modes[0])
        row = [d, f, str(base.rows if base else 0)]
        for m in modes:
            row += _cells(report.score(split, d, f, m))
        if target_mode:
            row.append(_target_mark(report, split, "calibrated", d, f))
        body.append(row)
    return header, body


def device_columns(report: FidelityReport) -> tuple[list[str], list[list[str]]]:
    header = ["device", "family", "test rows", f"{report.given_label} MdAPE", "transfer MdAPE", "p90", "bias",
              "target (transfer)"]
    body = []
    for d, f in _rows(report, "device"):
        t = report.score("device", d, f, "transfer")
        a = report.score("shapes", d, f, "analytical")
        body.append([d, f, str(t.rows if t else 0), _pct(a.mdape if a else None), *_cells(t),
                     _target_mark(report, "device", "transfer", d, f)])
    return header, body


def _header_lines(report: FidelityReport) -> list[str]:
    return [f"{k}: {v}" for k, v in report.header.items()]


def target_summary(report: FidelityReport) -> list[str]:
    lines = []
    checks = report.checks()
    for t in TARGETS:
        mine = [c for c in checks if c.target == t]
        if not mine:
            continue
        missed = [f"{c.device}/{c.family} {_pct(c.mdape)}" for c in mine if not c.passed]
        lines.append(f"{t.label}: {len(mine) - len(missed)}/{len(mine)} met"
                     + (f"; missed: {', '.join(missed)}" if missed else ""))
    return lines


def _sections(report: FidelityReport):
    """(title, header, rows) of each split that has rows: held-out shapes, then held-out device."""
    for split, columns in (("shapes", shapes_columns), ("device", device_columns),
                           ("framework", lambda r: shapes_columns(r, "framework"))):
        header, body = columns(report)
        if not body:
            continue
        title = SPLITS[split]
        if split == "device" and report.header.get("source_device"):
            title += f"; calibrated on {report.header['source_device']}"
        if split == "framework" and report.header.get("second source"):
            title += f": {report.header['second source']}"
        yield title, header, body


def render_fidelity(report: FidelityReport, console: Console) -> None:
    console.print("[bold]infersim fidelity[/bold]: predicted vs measured kernel latency "
                  "(MdAPE = median |pred - meas| / meas; bias > 0: predicted too slow)")
    for line in _header_lines(report):
        console.print(f"  {line}", highlight=False)
    for title, header, body in _sections(report):
        t = Table(title=title, title_justify="left")
        for i, h in enumerate(header):
            t.add_column(h, justify="left" if i < 2 or h.startswith("target") else "right")
        for row in body:
            t.add_row(*row)
        console.print(t)
    for line in target_summary(report):
        console.print(f"target {line}", highlight=False)
    for d, reason in sorted(report.skipped.items()):
        console.print(f"[dim]skipped {d}: {reason}[/dim]")
    for d, n in sorted(report.unpredicted.items()):
        if n:
            console.print(f"[dim]{d}: {n} rows not predictable (dtype unknown to the device) left out[/dim]")


def fidelity_markdown(report: FidelityReport) -> str:
    """The report as Markdown tables (what the README quotes)."""
    out = [f"- {line}" for line in _header_lines(report)]
    for title, header, body in _sections(report):
        out += ["", f"**{title}**", "", "| " + " | ".join(header) + " |",
                "|" + "|".join("---" if i < 2 else "---:" for i in range(len(header))) + "|"]
        out += ["| " + " | ".join(row) + " |" for row in body]
    summary = target_summary(report)
    if summary:
        out += [""] + [f"- {line}" for line in summary]
    return "\n".join(out) + "\n"


def render_calibration(cal: Calibration, console: Console) -> None:
    """The fitted stages: rows, tile set, fit MdAPE and the fitted parameters."""
    t = Table(title=f"Calibrated efficiency of {cal.device.name}", title_justify="left")
    for col in ("stage", "fit rows", "fit MdAPE", "parameters"):
        t.add_column(col, justify="right" if col in ("fit rows", "fit MdAPE") else "left", overflow="fold")
    for s in cal.stages:
        params = ", ".join(f"{k}={v:.4g}" for k, v in s.params.items())
        if s.tile_set:
            params += f", tiles={s.tile_set}"
        t.add_row(s.stage, str(s.rows), _pct(s.train_mdape), params)
    console.print(t)
