"""``estimate`` report: operator roofline (prefill and decode), time by operator, memory breakdown."""

from __future__ import annotations

import numpy as np

from ...perf.estimate import plan_prefill, step_costs
from ...perf.graph import GraphOptions
from ...perf.parallel import Parallelism, Precision
from ...perf.roofline import BOUND_NAMES, Bound
from ...perf.shape import StepShape
from .page import LEGEND, MARGIN, Report, plotly_modules
from .registry import report_kind
from .serving_html import SECONDS

PHASE_COLORS = {"prefill": "#1f77b4", "decode": "#ff7f0e"}


def _points(table, costs, column: int) -> list[dict]:
    """Per operator name, one step's FLOPs, bytes and time (all occurrences) in scenario ``column``."""
    flops = table.flops[:, column] * table.count
    nbytes = table.total_bytes[:, column] * table.count
    time_s = costs.time_s[:, column] * costs.count
    by_name: dict[str, list[int]] = {}
    for i, name in enumerate(table.names):
        by_name.setdefault(name, []).append(i)
    out = []
    for name, rows in by_name.items():
        f, b, t = float(flops[rows].sum()), float(nbytes[rows].sum()), float(time_s[rows].sum())
        if f <= 0 or b <= 0 or t <= 0:
            continue  # collectives and pure data movement have no place on a FLOP roofline
        main = max(rows, key=lambda r: time_s[r])
        out.append({"name": name, "flops": f, "bytes": b, "time_s": t,
                    "bound": BOUND_NAMES[Bound(int(costs.bound[main, column]))]})
    return out


def roofline_data(model, device, par: Parallelism, prec: Precision, *, batch: int, input_tokens: int,
                  output_tokens: int, options: GraphOptions = GraphOptions(), max_prefill_tokens: int = 8192) -> dict:
    """The operators of the estimate's largest prefill step and of its middle decode step, placed on
    the device's roofline: attained FLOP/s = FLOPs / time, arithmetic intensity = FLOPs / bytes
    (Williams, Waterman & Patterson, "Roofline", CACM 2009). The roof is
    min(peak FLOP/s of the GEMM dtype, intensity x memory bandwidth)."""
    plan = plan_prefill(batch, input_tokens, max_prefill_tokens)
    first = int(np.argmax(plan.seqs * plan.chunk))
    mid_context = float(input_tokens + max(output_tokens // 2, 1))
    shape = StepShape.uniform(model, prefill_seqs=np.array([plan.seqs[first], 0.0]),
                              chunk=np.array([plan.chunk[first], 0.0]), past=np.array([plan.past[first], 0.0]),
                              decode_seqs=np.array([0.0, float(batch)]), decode_context=np.array([0.0, mid_context]))
    table, costs = step_costs(model, device, par, prec, shape, options)
    return {"peak_flops_per_s": device.peak_flops(prec.gemm_compute),
            "memory_bandwidth_bytes_per_s": device.memory_bandwidth_bytes_per_s,
            "compute_dtype": prec.gemm_compute,
            "prefill_step": {"sequences": float(plan.seqs[first]), "tokens_per_sequence": float(plan.chunk[first])},
            "decode_step": {"sequences": float(batch), "context_tokens": mid_context},
            "prefill": _points(table, costs, 0), "decode": _points(table, costs, 1)}


def roofline_figure(roof: dict, title: str):
    go, _ = plotly_modules()
    peak, bw = roof["peak_flops_per_s"], roof["memory_bandwidth_bytes_per_s"]
    pts = roof["prefill"] + roof["decode"]
    lo = min([p["flops"] / p["bytes"] for p in pts] + [peak / bw]) / 4
    hi = max([p["flops"] / p["bytes"] for p in pts] + [peak / bw]) * 4
    xs = list(np.geomspace(lo, hi, 64))
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=xs, y=[min(peak, x * bw) for x in xs], mode="lines", name="device roof",
                             line={"color": "#444", "width": 2},
                             hovertemplate="intensity %{x:.3g} FLOP/B<br>roof %{y:.3g} FLOP/s<extra></extra>"))
    for phase in ("prefill", "decode"):
        p = roof[phase]
        fig.add_trace(go.Scatter(
            x=[q["flops"] / q["bytes"] for q in p], y=[q["flops"] / q["time_s"] for q in p], mode="markers",
            name=phase, marker={"size": 10, "color": PHASE_COLORS[phase], "symbol": "circle" if phase == "prefill"
                                else "diamond"},
            text=[f"{q['name']} ({q['bound']}-bound)" for q in p],
            hovertemplate="%{text}<br>intensity %{x:.3g} FLOP/B<br>attained %{y:.3g} FLOP/s<extra>" + phase
                          + "</extra>"))
    fig.update_layout(title=title, xaxis={"type": "log", "title": "arithmetic intensity (FLOP / byte)"},
                      yaxis={"type": "log", "title": "attained FLOP/s"}, legend=LEGEND, margin=MARGIN)
    return fig


def _bars_by_operator(ops: list[dict]):
    go, _ = plotly_modules()
    names = [o["name"] for o in ops]
    fig = go.Figure()
    fig.add_trace(go.Bar(x=names, y=[o["prefill_s"] for o in ops], name="prefill (all steps)",
                         marker_color=PHASE_COLORS["prefill"], customdata=[o["prefill_bound"] for o in ops],
                         hovertemplate="%{x}: %{y:.4s}s, %{customdata}-bound<extra>prefill</extra>"))
    fig.add_trace(go.Bar(x=names, y=[o["decode_step_s"] for o in ops], name="decode (mean step)",
                         marker_color=PHASE_COLORS["decode"], customdata=[o["decode_bound"] for o in ops],
                         hovertemplate="%{x}: %{y:.4s}s, %{customdata}-bound<extra>decode</extra>"))
    fig.update_layout(barmode="group", yaxis={"title": "time", "type": "log", **SECONDS}, legend=LEGEND, margin=MARGIN)
    return fig


MEMORY_PARTS = (("weights", "weights"), ("kv_cache", "KV cache"), ("activations", "activations (peak)"),
                ("headroom", "headroom"))


def _memory_figure(mem: dict):
    go, _ = plotly_modules()
    fig = go.Figure()
    for key, label in MEMORY_PARTS:
        value = mem[key]
        fig.add_trace(go.Bar(y=["per device"], x=[value / 1e9], name=label, orientation="h",
                             hovertemplate=f"{label}: %{{x:.3f}} GB<extra></extra>"))
    fig.add_vline(x=mem["usable"] / 1e9, line_dash="dash", annotation_text="usable")
    fig.add_vline(x=mem["capacity"] / 1e9, line_color="#444", annotation_text="capacity")
    fig.update_layout(barmode="stack", height=260, xaxis={"title": "GB (1e9 bytes)"}, legend=LEGEND, margin=MARGIN)
    return fig


@report_kind("estimate", detect=lambda d: "memory_per_device_bytes" in d and "precision" in d)
def estimate_report(data: dict) -> Report:
    par, prec = data["parallel"], data["precision"]
    title = f"{data['model']} on {par['devices']} x {data['hardware']}"
    sub = (f"tp={par['tp']} pp={par['pp']} ep={par['ep']}, batch {data['batch']}, {data['input_tokens']} in / "
           f"{data['output_tokens']} out, weights {prec['weight']} / act {prec['activation']} / KV {prec['kv_cache']}")
    rep = Report("estimate", title, sub, data=data)
    if data.get("fits"):
        rep.add("Summary", table=(["metric", "value"], [
            ["TTFT (mean)", f"{data['ttft_s'] * 1e3:.2f} ms"], ["TPOT", f"{data['tpot_s'] * 1e3:.2f} ms"],
            ["output tokens/s per device", f"{data['output_tokens_per_s_per_device']:.1f}"],
            ["prefill MFU", f"{data['prefill_mfu']:.1%}"],
            ["decode bandwidth utilization", f"{data['decode_mbu']:.1%}"],
            ["J / output token", f"{data['joules_per_output_token']:.4g}"]]))
    else:
        rep.add("Does not fit", note="the configuration does not fit in the device's usable memory; "
                                     "only the memory breakdown is shown")
    if data.get("roofline"):
        roof = data["roofline"]
        pre, dec = roof["prefill_step"], roof["decode_step"]
        rep.add("Operator roofline", roofline_figure(roof, f"roof: {roof['peak_flops_per_s'] / 1e12:.0f} TFLOP/s "
                                                           f"({roof['compute_dtype']}), "
                                                           f"{roof['memory_bandwidth_bytes_per_s'] / 1e12:.2f} TB/s"),
                note=f"prefill: the largest step ({pre['sequences']:.0f} sequences x {pre['tokens_per_sequence']:.0f} "
                     f"tokens); decode: a step of {dec['sequences']:.0f} sequences at {dec['context_tokens']:.0f} "
                     "tokens of context. Each point is one operator over all its layers.")
    if data.get("operators"):
        rep.add("Time by operator", _bars_by_operator(data["operators"]),
                note="the operators with the largest share of the request's time (estimate --top)")
    rep.add("Memory per device", _memory_figure(data["memory_per_device_bytes"]))
    return rep
