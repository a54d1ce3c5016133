"""Rich rendering of ``infersim plan``: the best deployment per serving mode and the simulated check."""

from __future__ import annotations

import math

from rich.console import Console
from rich.table import Table



def _ms(v) -> str:
    return "-" if v is None or not math.isfinite(v) else f"{v * 1e3:.3g}" if v < 0.1 else f"{v * 1e3:.0f}"


def _num(v, fmt: str = "{:.1f}") -> str:
    return "-" if v is None or not math.isfinite(v) else fmt.format(v)


def pools_text(c: dict) -> tuple[str, str, str]:
    """(layout per pool, pool sizes / P:D, batch and token caps) of a plan configuration."""
    mode = c.get("mode", "aggregated")
    def ep(k: str) -> str:
        dpa = c.get(k.replace("ep", "dp_attention"))
        return (f" EP{c[k]}" if c.get(k, 1) > 1 else "") + (" DP-attention" if dpa else "")

    if mode == "aggregated":
        return (f"TP{c['tp']} PP{c.get('pp', 1)}{ep('ep')}", f"{c['replicas']} replicas",
                f"batch {c['max_batch']}, {c['max_prefill_tokens']} tok/step")
    pre = f"prefill TP{c['prefill_tp']}{ep('prefill_ep')}"
    if mode == "afd":
        dec = f"decode AFD {c['afd_attention_gpus']} attn (TP{c['tp']}) + {c['afd_ffn_gpus']} FFN GPUs"
    else:
        dec = f"decode TP{c['tp']}{ep('ep')}"
    return (f"{pre}, {dec}", f"{c['prefill_workers']}P:{c['decode_workers']}D",
            f"decode batch {c['max_batch']}, prefill {c['prefill_max_tokens']} tok/step")


def render_plan(console: Console, result) -> None:
    from ..search.plan import describe

    q = result.question
    pct = f"p{q.percentile:g}"
    t = Table(title=f"{q.model} on {q.gpus}x {q.device}, ISL {q.input_tokens} / OSL {q.output_tokens}, "
                    f"TTFT {pct} <= {q.ttft_s * 1e3:g} ms, TPOT {pct} <= {q.tpot_s * 1e3:g} ms\n"
                    f"static pass: {result.evaluated} candidates, {result.feasible} meet the SLOs, "
                    f"{result.static_wall_s:.2f} s", title_justify="left")
    t.add_column("best")
    for mode in result.best:
        t.add_column(mode)
    rows = {"layout": [], "pools (P:D)": [], "caps": [], "precision": [], "GPUs": [], "tok/s/GPU": [],
            "tok/s/user": [], "requests/s": [], "TTFT p50 (ms)": [], f"TTFT {pct} (ms)": [], "TPOT (ms)": [],
            "stationary batch / server": [], "KV transfer (ms)": []}
    for p in result.best.values():
        m = p.metrics
        layout, pools, caps = pools_text(p.config)
        values = [layout, pools, caps, p.config["weight_dtype"], _num(m.get("devices"), "{:.0f}"),
                  _num(m.get("goodput_tokens_per_s_per_device")), _num(m.get("tokens_per_s_per_user")),
                  _num(m.get("slo_capacity_requests_per_s"), "{:.2f}"), _ms(m.get("ttft_p50_s")),
                  _ms(m.get(f"ttft_{pct}_s")), _ms(m.get("tpot_s")), _num(m.get("decode_batch")),
                  _ms(m.get("kv_transfer_s")) if p.mode != "aggregated" else "-"]
        for key, v in zip(rows, values):
            rows[key].append(v)
    for key, values in rows.items():
        t.add_row(key, *values)
    console.print(t)
    if not result.checks:
        return
    s = Table(title=f"Simulated check of the static top {len(result.top)} (discrete-event simulation with capacity "
                    f"search, {result.simulated_wall_s:.1f} s): at the highest rate meeting the SLOs",
              title_justify="left")
    for col in ("deployment", "tok/s/GPU static", "sim", "diff", "TTFT p50/p90/p99 (ms)", "TPOT p50/p90/p99 (ms)"):
        s.add_column(col, justify="left" if col == "deployment" else "right")
    for p, ch in zip(result.top, result.checks):
        static = _num(p.metrics.get("goodput_tokens_per_s_per_device"))
        if ch.error:
            s.add_row(describe(p.config), static, "-", "-", ch.error, "")
            continue
        dis = ch.disagreement
        s.add_row(describe(p.config), static, _num(ch.goodput_tokens_per_s_per_device),
                  "-" if not math.isfinite(dis) else f"{100 * dis:+.0f}%",
                  "/".join(_ms(v) for v in (ch.ttft_p50_s, ch.ttft_p90_s, ch.ttft_p99_s)),
                  "/".join(_ms(v) for v in (ch.tpot_p50_s, ch.tpot_p90_s, ch.tpot_p99_s)))
    console.print(s)
    for p, ch in zip(result.top, result.checks):
        if ch.error or abs(ch.disagreement) <= 0.15:
            continue
        dis = ch.disagreement
        console.print(f"[yellow]disagreement:[/yellow] {describe(p.config)}: static SLO capacity "
                      + ("not met by the simulation at any rate tried" if not math.isfinite(dis)
                         else f"{100 * dis:+.0f}% vs the simulated one"))
    if result.stored:
        console.print(f"[dim]stored in the results database: {', '.join(result.stored)}[/dim]")
