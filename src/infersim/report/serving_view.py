"""Rich rendering of serving simulations (:mod:`infersim.serving`) and rate sweeps."""

from __future__ import annotations

import math

from rich.console import Console
from rich.table import Table

from ..serving.metrics import Summary
from ..serving.sweep import SweepResult
from .units import fmt_rate, fmt_time, print_basis


def _pct(x: float) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}%"


def _title(s: Summary) -> str:
    # arrivals without a span (offline: every request at t = 0) have no offered rate
    load = (f"at {s.offered_rate:.2f} req/s offered" if math.isfinite(s.offered_rate)
            else "all queued at t = 0" if s.requests > 1 else "")
    return (f"{s.scenario}: {s.model} on {s.replicas} x {s.hardware} replica(s) (tp={s.tp} pp={s.pp}), "
            f"runtime {s.runtime}, {s.scheduler} scheduler, {s.requests:,} requests {load}").rstrip()


def render_summary(s: Summary, console: Console) -> None:
    console.print(f"[bold]{_title(s)}[/bold]")
    print_basis([f"{s.hardware}: {s.hardware_basis}"], console)
    render_latency(s, console)

    t = Table(title="Throughput and resources", title_justify="left")
    t.add_column("metric")
    t.add_column("value", justify="right")
    rows = [
        ("completed / requests", f"{s.completed:,} / {s.requests:,}"),
        ("throughput", fmt_rate(s.throughput_rps, "req/s")),
        ("input tokens/s", fmt_rate(s.input_tokens_per_s, "tok/s")),
        ("output tokens/s", fmt_rate(s.output_tokens_per_s, "tok/s")),
        ("makespan (first arrival to last completion)", fmt_time(s.makespan_s)),
        ("preemptions (requests preempted)", f"{s.preemptions:,} ({s.preempted_requests:,})"),
        ("KV cache blocks per engine", f"{s.kv_blocks:,}"),
        ("KV-cache utilization mean / peak", f"{_pct(s.kv_utilization_mean)} / {_pct(s.kv_utilization_peak)}"),
        ("prefix-cache hit rate", _pct(s.prefix_hit_rate)),
        ("MFU / memory-bandwidth utilization", f"{_pct(s.mfu_mean)} / {_pct(s.mbu_mean)}"),
        ("busy fraction", _pct(s.busy_fraction)),
        ("requests in system (time avg) / rate x mean E2E", f"{s.mean_in_system:.2f} / {s.littles_law_rhs:.2f}"),
        ("iterations", f"{s.iterations:,}"),
    ]
    for r in rows:
        t.add_row(*r)
    console.print(t)

    render_slos(s, console)
    console.print(f"[dim]simulated in {s.wall_s:.2f} s wall[/dim]")


def render_latency(s, console: Console, title: str = "Latency", queue_label: str = "queueing delay") -> None:
    """Mean and percentiles of TTFT, TPOT, inter-token latency, E2E and queueing of a summary."""
    lat = Table(title=title, title_justify="left")
    lat.add_column("metric")
    for col in ("mean", "p50", "p90", "p99"):
        lat.add_column(col, justify="right")
    for label, d in (("TTFT", s.ttft_s), ("TPOT", s.tpot_s), ("inter-token latency", s.itl_s),
                     ("end-to-end", s.e2e_s), (queue_label, s.queue_s)):
        lat.add_row(label, *(fmt_time(d[k]) for k in ("mean", "p50", "p90", "p99")))
    console.print(lat)


def render_slos(s, console: Console) -> None:
    """The SLO table of a summary with ``slo``, ``slo_attainment`` and ``goodput_rps`` (none without SLOs)."""
    if not s.slo:
        return
    st = Table(title="SLOs", title_justify="left")
    for col, just in (("SLO", "left"), ("limit", "right"), ("value", "right"), ("met", "left")):
        st.add_column(col, justify=just)
    for r in s.slo:
        st.add_row(f"{r.metric.upper()} p{r.percentile:g}", fmt_time(r.max_s), fmt_time(r.value_s),
                   "[green]yes[/green]" if r.met else "[red]no[/red]")
    st.add_row("attainment (requests meeting all)", "", _pct(s.slo_attainment), "")
    st.add_row("goodput", "", fmt_rate(s.goodput_rps, "req/s"), "")
    console.print(st)


def render_sweep(result: SweepResult, console: Console) -> None:
    t = Table(title=f"{result.scenario}: latency vs load", title_justify="left")
    for col in ("rate", "throughput", "TTFT p50", "TTFT p99", "TPOT p50", "TPOT p90", "E2E p50", "E2E p99",
                "preempt", "goodput", "SLOs"):
        t.add_column(col, justify="left" if col == "SLOs" else "right")
    for p in result.sorted_points():
        s = p.summary
        t.add_row(f"{p.rate:.3g}", f"{s.throughput_rps:.3g}", fmt_time(s.ttft_s["p50"]), fmt_time(s.ttft_s["p99"]),
                  fmt_time(s.tpot_s["p50"]), fmt_time(s.tpot_s["p90"]), fmt_time(s.e2e_s["p50"]),
                  fmt_time(s.e2e_s["p99"]), f"{s.preemptions:,}", f"{s.goodput_rps:.3g}",
                  "[green]met[/green]" if s.slo_met else "[red]missed[/red]")
    console.print(t)
    print_basis([f"{p.summary.hardware}: {p.summary.hardware_basis}" for p in result.sorted_points()], console)
    if result.points:
        slos = ", ".join(f"{r.metric.upper()} p{r.percentile:g} <= {fmt_time(r.max_s)}"
                         for r in result.points[0].summary.slo)
        if result.capacity_rps is None:
            console.print(f"[bold red]No tested rate meets the SLOs[/bold red] ({slos}).")
        else:
            console.print(f"[bold]Capacity: {result.capacity_rps:.3g} req/s[/bold] (highest tested rate meeting "
                          f"{slos}).")
