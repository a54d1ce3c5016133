"""Rich rendering of multi-stage pipeline simulations and of their comparison studies."""

from __future__ import annotations

import math

from rich.console import Console
from rich.table import Table

from ..serving.pipeline.metrics import PipelineSummary
from ..serving.pipeline.studies import StudyResult, best_afd_ratio, best_by_group, decode_tokens_per_gpu_s
from .serving_view import _pct, render_latency, render_slos
from .units import fmt_rate, fmt_time, print_basis


def _num(x: float | None, fmt: str = "{:.3g}") -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else fmt.format(x)


def render_pipeline(s: PipelineSummary, console: Console) -> None:
    console.print(f"[bold]{s.scenario}: {s.requests:,} requests at {s.offered_rate:.3g} req/s offered, "
                  f"{s.accelerators} accelerator(s) + {s.cpus} CPU socket(s)[/bold]")
    render_latency(s, console, "End-to-end latency", "queueing (first stage)")

    st = Table(title="Stages (time from a stage's start to its end)", title_justify="left")
    for col, just in (("stage", "left"), ("kind", "left"), ("engine", "left"), ("mean", "right"), ("p90", "right"),
                      ("p99", "right"), ("KV transfer", "right"), ("KV hit rate", "right")):
        st.add_column(col, justify=just)
    for x in s.stages:
        st.add_row(x.name, x.kind, x.engines, fmt_time(x.time_s["mean"]), fmt_time(x.time_s["p90"]),
                   fmt_time(x.time_s["p99"]), fmt_time(x.transfer_s) if not math.isnan(x.transfer_s) else "-",
                   _pct(x.kv_hit_rate))
    console.print(st)

    et = Table(title="Engines", title_justify="left")
    for col in ("engine", "kind", "hardware", "devices", "busy", "MFU", "MBU", "KV used", "preempt", "served",
                "power", "cost"):
        et.add_column(col, justify="left" if col in ("engine", "kind", "hardware") else "right")
    for e in s.engines:
        et.add_row(e.name, e.kind, e.hardware, str(e.devices), _pct(e.busy_fraction), _pct(e.mfu), _pct(e.mbu),
                   _pct(e.kv_utilization_mean), f"{e.preemptions:,}", f"{e.served:,}", f"{e.power_w / 1e3:.2f} kW",
                   f"${e.cost_usd:.3f}")
    console.print(et)
    print_basis([part for e in s.engines for part in e.hardware_basis.split("; ") if part != "-"], console)

    t = Table(title="Throughput, cost and energy", title_justify="left")
    t.add_column("metric")
    t.add_column("value", justify="right")
    for row in (("completed / requests", f"{s.completed:,} / {s.requests:,}"),
                ("throughput", fmt_rate(s.throughput_rps, "req/s")),
                ("output tokens/s", fmt_rate(s.output_tokens_per_s, "tok/s")),
                ("output tokens/s per accelerator", fmt_rate(s.output_tokens_per_s_per_accelerator, "tok/s")),
                ("makespan", fmt_time(s.makespan_s)),
                ("$ per hour (all devices)", _num(s.usd_per_hour, "${:.2f}")),
                ("$ per million output tokens", _num(s.usd_per_million_output_tokens, "${:.3f}")),
                ("joules per output token", _num(s.joules_per_output_token, "{:.3g} J"))):
        t.add_row(*row)
    console.print(t)
    render_slos(s, console)
    console.print(f"[dim]simulated in {s.wall_s:.2f} s wall[/dim]")


def _ms(x: float) -> str:
    return "-" if x is None or math.isnan(x) else f"{x * 1e3:.0f}" if x >= 0.1 else f"{x * 1e3:.1f}"


def _at_capacity_cells(s: PipelineSummary | None) -> list[str]:
    if s is None:
        return ["-"] * 4
    return [_ms(s.ttft_s["p90"]), _ms(s.tpot_s["p90"]), _num(s.usd_per_million_output_tokens, "{:.2f}"),
            _num(s.joules_per_output_token, "{:.3g}")]


def render_study(result: StudyResult, console: Console) -> None:
    best = best_by_group(result)
    if result.kind == "rag":
        _render_rag(result, best, console)
    else:
        _render_pd_afd(result, best, console)
    for note in result.notes:
        console.print(f"[yellow]note:[/yellow] {note}")
    print_basis([part for row in result.rows if row.summary is not None for e in getattr(row.summary, "engines", [])
                 for part in e.hardware_basis.split("; ") if part != "-"], console)


def _render_pd_afd(result: StudyResult, best: dict, console: Console) -> None:
    afd = result.kind == "afd"
    ratio = best_afd_ratio(result) if afd else {}
    t = Table(title=f"{result.scenario}: capacity (highest rate meeting the SLOs) per configuration",
              title_justify="left")
    cols = ["workload", "configuration", "GPUs"] + (["prefill", "target"] if afd else []) + [
        "req/s", "req/s/GPU", "dec tok/s/GPU" if afd else "tok/s/GPU", "TTFT p90", "TPOT p90", "$/M tok", "J/tok"]
    for c in cols:
        left = c in ("workload", "configuration", "target")
        t.add_column(c, justify="left" if left else "right", no_wrap=left)
    for row in result.rows:
        s = row.summary
        mark = (" [bold]*[/bold]" if best.get(row.study) is row else "") + \
            (" [bold]^[/bold]" if ratio.get(row.study) is row else "")
        cells = [row.study, row.label + mark, str(row.gpus)]
        if afd:
            at = row.details.get("at_target")
            cells.append(str(row.details.get("prefill_gpus", "-")))
            cells.append("error" if at is None else ("[green]met[/green]" if at.slo_met else "[red]missed[/red]"))
        if "error" in row.details:
            t.add_row(*(cells + ["-"] * (len(cols) - len(cells))))
            continue
        if afd:
            per_gpu_tok = decode_tokens_per_gpu_s(row)
        else:
            per_gpu_tok = s.output_tokens_per_s / row.gpus if s is not None and row.capacity_rps else _NAN
        cells += [_num(row.capacity_rps, "{:.3g}") if row.capacity_rps else "none",
                  _num(row.goodput_per_gpu, "{:.3g}"), _num(per_gpu_tok, "{:.0f}")] + _at_capacity_cells(s)
        t.add_row(*cells)
    console.print(t)
    for row in result.rows:
        for key in ("error", "note"):
            if key in row.details:
                console.print(f"[dim]{row.study} / {row.label}: {row.details[key]}[/dim]")
    pools = {r.study: r.details["prefill_replica_rps"] for r in result.rows if "prefill_replica_rps" in r.details}
    for wname, rps in pools.items():
        console.print(f"[dim]{wname}: one prefill replica meets the TTFT SLOs up to {rps:.3g} req/s; the prefill "
                      f"pool has ceil(rate / {rps:.3g}) replicas[/dim]")
    console.print("[dim]req/s: capacity, the highest Poisson rate whose run meets every SLO; GPUs: all of the "
                  "configuration's at the capacity" + ("; prefill: those of its prefill pool" if afd else "")
                  + "; req/s/GPU: goodput per GPU"
                  + ("; dec tok/s/GPU: steady-state output tokens per second at the capacity (req/s x output tokens "
                     "per request) per GPU that decodes (all GPUs when colocated); target: the SLOs at the study's "
                     "target rate" if afd else "; tok/s/GPU: output tokens per second at the capacity per GPU")
                  + "; TTFT / TPOT (ms), $ per million output tokens and joules per output token: the run at the "
                  "capacity; * = best goodput per GPU of its workload"
                  + ("; ^ = best AFD attention:FFN ratio (most decode tok/s per decode GPU)" if afd else "")
                  + "[/dim]")


def _render_rag(result: StudyResult, best: dict, console: Console) -> None:
    t = Table(title=f"{result.scenario}: chips split between retrieval and inference, per database size",
              title_justify="left")
    for c in ("database", "CPU servers", "GPUs", "req/s", "retr. busy", "bound by", "retrieve p90", "TTFT p90",
              "TPOT p90", "$/M tok"):
        left = c in ("database", "bound by")
        t.add_column(c, justify="left" if left else "right", no_wrap=left)
    for row in result.rows:
        s = row.summary
        busy = next((e.busy_fraction for e in s.engines if e.kind == "retrieval"), _NAN) if s else _NAN
        retrieve = next((x.time_s["p90"] for x in s.stages if x.kind == "retrieval"), _NAN) if s else _NAN
        cells = _at_capacity_cells(s)
        mark = " [bold]*[/bold]" if best.get(row.study) is row else ""
        t.add_row(row.study, f"{row.details['servers']}{mark}", str(row.gpus),
                  _num(row.capacity_rps, "{:.3g}") if row.capacity_rps else "none", _pct(busy),
                  row.details["bottleneck"], _ms(retrieve), cells[0], cells[1], cells[2])
    console.print(t)
    console.print("[dim]req/s: capacity, the highest Poisson rate meeting every SLO; bound by: retrieval when its "
                  "servers are >70% busy at the capacity; times in ms, at the capacity; * = the best split for that "
                  "database size[/dim]")


_NAN = float("nan")
