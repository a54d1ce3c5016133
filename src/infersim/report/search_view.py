"""Rich rendering of search results: Pareto fronts, point listings, study summaries."""

from __future__ import annotations

import json
import math

from rich.console import Console
from rich.table import Table

from .units import fmt_bytes, fmt_rate, fmt_time, print_basis


def fmt_metric(name: str, value) -> str:
    """A metric value with the unit its name implies (``_s``, ``_bytes``, ``usd_``, ``_per_s``, ``_w``)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return str(value)
    v = float(value)
    if name.startswith("usd_per_million"):
        return f"${v:.3f}"
    if name.startswith("usd"):
        return f"${v:,.2f}"
    if name.endswith("_s") and "_per_" not in name:
        return fmt_time(v)
    if "bytes" in name:
        return fmt_bytes(v)
    if "tokens_per_s" in name:
        return fmt_rate(v, "tok/s")
    if name.endswith("requests_per_s"):
        return f"{v:.2f} req/s"
    if name.endswith("_w") or name.startswith("power_w"):
        return f"{v:,.0f} W"
    if name == "utilization":
        return f"{100 * v:.0f}%"
    if name.startswith("joules"):
        return f"{v:.3f} J"
    if v.is_integer() and abs(v) < 1e15:
        return f"{int(v)}"
    return f"{v:.4g}"


#: short column headers (units in the header, so values stay compact)
LABELS = {
    "usd_per_million_output_tokens": "$/M out tok", "goodput_tokens_per_s_per_device": "goodput/dev tok/s",
    "output_tokens_per_s": "out tok/s", "output_tokens_per_s_per_device": "out tok/s/dev",
    "served_output_tokens_per_s": "served tok/s", "ttft_s": "TTFT mean", "ttft_p50_s": "TTFT p50",
    "ttft_p90_s": "TTFT p90", "ttft_p99_s": "TTFT p99", "tpot_s": "TPOT", "tpot_p50_s": "TPOT p50",
    "tpot_p90_s": "TPOT p90", "tpot_p99_s": "TPOT p99", "utilization": "util", "devices": "devices",
    "power_w": "power", "power_w_per_device": "W/dev", "joules_per_output_token": "J/tok",
    "capacity_requests_per_s": "capacity req/s", "usd_per_hour": "$/h",
    "max_batch": "max batch", "max_prefill_tokens": "prefill budget", "weight_dtype": "weights",
    "kv_dtype": "KV", "activation_dtype": "act", "replicas": "repl",
}


def label(name: str) -> str:
    return LABELS.get(name, name)


def fmt_cell(name: str, value) -> str:
    """Compact table cell: rates without their unit (it is in the header)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        if "tokens_per_s" in name or name.endswith("requests_per_s"):
            return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"
    return fmt_metric(name, value)


def fmt_value(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def best_text(best: dict[str, float], objectives) -> str:
    if not best:
        return "-"
    return ", ".join(f"{label(o.metric)} {fmt_cell(o.metric, best[o.metric])}" for o in objectives if o.metric in best)


def _metric_columns(results, objectives) -> list[str]:
    cols = [o.metric for o in objectives]
    for c in results.scoring.constraints:
        if c.metric not in cols:
            cols.append(c.metric)
    return cols


def render_front(results, front: list, objectives, console: Console, limit: int = 20,
                 collapse: bool = True) -> None:
    """The Pareto front (feasible, non-dominated points) as a table, best first objective first.

    With ``collapse``, points whose objective values are all equal are shown once, with the count.
    """
    varying = results.varying
    metrics = _metric_columns(results, objectives)
    rows: list[tuple] = []
    seen: dict[tuple, int] = {}
    for p in front:
        sig = tuple(round(float(p.metrics[o.metric]), 12) for o in objectives)
        if collapse and sig in seen:
            rows[seen[sig]] = (rows[seen[sig]][0], rows[seen[sig]][1] + 1)
            continue
        seen[sig] = len(rows)
        rows.append((p, 1))
    title = (f"Pareto front of '{results.name}': {len(front)} of {sum(p.feasible for p in results.points)} feasible "
             f"points ({len(results.points)} evaluated); " + ", ".join(o.label() for o in objectives))
    table = Table(title=title, title_justify="left")
    for name in varying:
        table.add_column(label(name))
    for name in metrics:
        table.add_column(label(name), justify="right")
    if collapse:
        table.add_column("same", justify="right")
    for p, count in rows[:limit]:
        cells = [fmt_value(p.config.get(n)) for n in varying] + [fmt_cell(m, p.metrics.get(m)) for m in metrics]
        if collapse:
            cells.append("" if count == 1 else f"+{count - 1}")
        table.add_row(*cells)
    console.print(table)
    if len(rows) > limit:
        console.print(f"[dim]{len(rows) - limit} more front rows not shown (--limit)[/dim]")
    if not front:
        console.print("[yellow]No feasible point: every evaluated configuration misses a constraint or failed."
                      " `infersim results show` lists them with their metrics and errors.[/yellow]")


def render_points(results, points: list, console: Console, limit: int = 50) -> None:
    varying = results.varying
    metrics = _metric_columns(results, results.scoring.objectives)
    table = Table(title=f"Study '{results.name}': {len(points)} points", title_justify="left")
    shown = points[:limit]
    errors = any(p.error for p in shown)
    for name in ("trial", "status", "ok?", "front"):
        table.add_column(name, justify="right" if name in ("trial", "front") else "left")
    for name in varying:
        table.add_column(label(name))
    for name in metrics:
        table.add_column(label(name), justify="right")
    if errors:
        table.add_column("error", overflow="fold", min_width=36)
    for p in shown:
        m = p.metrics or {}
        cells = [str(p.trial), p.status, "yes" if p.feasible else "no", "" if p.rank is None else str(p.rank),
                 *(fmt_value(p.config.get(n)) for n in varying), *(fmt_cell(k, m.get(k)) for k in metrics)]
        if errors:
            cells.append(p.error or "")
        table.add_row(*cells)
    console.print(table)
    if len(points) > limit:
        console.print(f"[dim]{len(points) - limit} more points not shown (--limit; `results export` writes all)[/dim]")
    print_basis([f"{d}: {b}" for d, b in results.spec.get("device_basis", {}).items()], console)


def render_studies(summaries: list[dict], console: Console, db: str) -> None:
    table = Table(title=f"Studies in {db}", title_justify="left")
    for name, just in (("study", "left"), ("evaluated", "right"), ("ok", "right"), ("feasible", "right"),
                       ("rejected", "right"), ("failed", "right"), ("updated", "left")):
        table.add_column(name, justify=just)
    for s in summaries:
        table.add_row(s["study"], str(s["evaluated"]), str(s["ok"]), str(s["feasible"]), str(s["rejected"]),
                      str(s["failed"]), str(s["updated_at"])[:19])
    console.print(table)


def render_run(study, progress, console: Console, db: str) -> None:
    rate = progress.evaluations_per_s
    console.print(
        f"[bold]{study.name}[/bold]: {progress.asked} trials, {progress.evaluated} evaluated now"
        f" ({rate:,.0f}/s), {progress.cached} already in {db}; {progress.feasible} feasible,"
        f" {progress.rejected} rejected before evaluation (static screen or simulator checks), {progress.failed} failed"
        f" in {progress.elapsed_s:.1f} s")
    print_basis([f"{d}: {b}" for d, b in study.spec.get("device_basis", {}).items()], console)
