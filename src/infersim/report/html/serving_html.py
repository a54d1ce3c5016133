"""``simulate`` and ``sweep-rate`` reports: latency CDFs, load over time, SLOs, latency vs load."""

from __future__ import annotations

import numpy as np

from .page import LEGEND, MARGIN, Report, plotly_modules
from .plots import binned_rate, binned_time_mean, cdf, level_at, rounded, time_bins, weighted_cdf
from .registry import report_kind

LATENCIES = (("ttft", "TTFT"), ("tpot", "TPOT"), ("itl", "inter-token latency"), ("e2e", "end-to-end"))
PCT_COLORS = {"p50": "#2ca02c", "p90": "#ff7f0e", "p99": "#d62728"}
#: a time axis in seconds with SI prefixes ("200ms", "1.5s"): the plotted numbers are the --json seconds
SECONDS = {"ticksuffix": "s", "exponentformat": "SI"}


def simulate_plot_data(per_request: dict, it: dict | None, itl: tuple | None = None) -> dict:
    """CDFs and time series of one run, decimated / binned (see :mod:`.plots`).

    ``per_request``: arrays ``arrival_s``, ``first_scheduled_s``, ``completion_s`` and the
    latencies ``ttft_s``, ``tpot_s``, ``e2e_s``; ``it``: the per-iteration table (``start_s``,
    ``duration_s``, ``prefill_seqs``, ``decode_seqs``, ``kv_utilization``); ``itl``: (gap values,
    weights) of the inter-token latency sample, when known."""
    cdfs = {k: cdf(per_request[f"{k}_s"]) for k in ("ttft", "tpot", "e2e")}
    if itl is not None:
        cdfs["itl"] = weighted_cdf(*itl)
    arrival, done = per_request["arrival_s"], per_request["completion_s"]
    t0 = float(np.nanmin(arrival)) if len(arrival) else 0.0
    finite = np.asarray(done)[np.isfinite(done)]
    edges = time_bins(t0, float(finite.max()) if finite.size else t0)
    series = {"t_s": rounded((edges[:-1] + edges[1:]) / 2), "bin_s": float(edges[1] - edges[0]),
              "completed_rps": binned_rate(done, edges),
              "queued_requests": level_at(edges, arrival, per_request["first_scheduled_s"])}
    if it is not None and len(it["start_s"]):
        series["decode_tokens_per_s"] = binned_rate(it["start_s"], edges, weights=it["decode_seqs"])
        running = np.asarray(it["decode_seqs"], float) + np.asarray(it["prefill_seqs"], float)
        series["batch_size"] = binned_time_mean(it["start_s"], it["duration_s"], running, edges)
        series["kv_utilization"] = binned_time_mean(it["start_s"], it["duration_s"], it["kv_utilization"], edges)
    return {"cdf": cdfs, "series": series}


def _slo_figure(slos: list[dict], attainment, goodput):
    go, _ = plotly_modules()
    labels = [f"{s['metric']} p{s['percentile']:g}" for s in slos]
    fig = go.Figure()
    fig.add_trace(go.Bar(x=labels, y=[s["value_s"] for s in slos],
                         name="achieved", marker_color=["#2ca02c" if s["met"] else "#d62728" for s in slos],
                         hovertemplate="%{x}: %{y:.4s}s<extra>achieved</extra>"))
    fig.add_trace(go.Scatter(x=labels, y=[s["max_s"] for s in slos], mode="markers", name="SLO limit",
                             marker={"symbol": "line-ew-open", "size": 40, "line": {"width": 3, "color": "#333"}},
                             hovertemplate="%{x}: limit %{y:.4s}s<extra></extra>"))
    att = "-" if attainment is None else f"{attainment:.1%}"
    gp = "-" if goodput is None else f"{goodput:.3g} req/s"
    fig.update_layout(title=f"SLO attainment {att} of requests, goodput {gp}",
                      yaxis={"title": "latency", "type": "log", **SECONDS},
                      height=360, legend=LEGEND, margin=MARGIN)
    return fig


def _cdf_figure(cdfs: dict, summary: dict):
    go, _ = plotly_modules()
    from plotly.subplots import make_subplots

    keys = [(k, label) for k, label in LATENCIES if k in cdfs and cdfs[k]["n"]]
    fig = make_subplots(rows=1, cols=len(keys), subplot_titles=[label for _, label in keys])
    for col, (k, label) in enumerate(keys, start=1):
        c = cdfs[k]
        fig.add_trace(go.Scatter(x=c["x"], y=c["y"], mode="lines", line_shape="hv",
                                 name=f"{label} CDF", showlegend=False, line={"color": "#1f77b4"},
                                 hovertemplate="%{x:.4s}s: %{y:.3f}<extra>" + label + "</extra>"),
                      row=1, col=col)
        pct = summary.get(f"{k}_s") or {}
        qs = [q for q in ("p50", "p90", "p99") if pct.get(q) is not None]
        fig.add_trace(go.Scatter(x=[pct[q] for q in qs], y=[int(q[1:]) / 100 for q in qs], mode="markers+text",
                                 text=qs, textposition="middle left", showlegend=False,
                                 marker={"size": 9, "color": [PCT_COLORS[q] for q in qs]},
                                 name=f"{label} percentiles",
                                 hovertemplate="%{text}: %{x:.4s}s<extra>" + label + "</extra>"),
                      row=1, col=col)
        fig.update_xaxes(type="log", row=1, col=col, **SECONDS)
    fig.update_yaxes(title_text="fraction of requests (tokens for ITL)", range=[0, 1.02], row=1, col=1)
    fig.update_layout(height=380)
    return fig


SERIES = (("decode_tokens_per_s", "decode tokens/s"), ("completed_rps", "completed requests/s"),
          ("queued_requests", "requests queued"), ("batch_size", "running sequences (time mean)"),
          ("kv_utilization", "KV-cache utilization (time mean)"))


def _series_figure(series: dict):
    go, _ = plotly_modules()
    from plotly.subplots import make_subplots

    keys = [(k, label) for k, label in SERIES if k in series]
    fig = make_subplots(rows=len(keys), cols=1, shared_xaxes=True, subplot_titles=[label for _, label in keys],
                        vertical_spacing=0.06)
    for row, (k, label) in enumerate(keys, start=1):
        fig.add_trace(go.Scatter(x=series["t_s"], y=series[k], mode="lines", name=label, showlegend=False,
                                 hovertemplate="t=%{x:.3g} s: %{y:.4g}<extra>" + label + "</extra>"), row=row, col=1)
    fig.update_xaxes(title_text="simulated time (s)", row=len(keys), col=1)
    fig.update_layout(height=170 * len(keys) + 60)
    return fig


def _ms(seconds) -> str:
    return "-" if seconds is None else f"{seconds * 1e3:.4g}"


def _is_simulate(d: dict) -> bool:
    return "ttft_s" in d and "slo_attainment" in d and "scheduler" in d and "points" not in d


@report_kind("simulate", detect=_is_simulate)
def simulate_report(data: dict) -> Report:
    s = data
    title = f"Serving simulation: {s['scenario']}"
    sub = (f"{s['model']} on {s['replicas']} x {s['tp'] * s['pp']} {s['hardware']}, {s['scheduler']} scheduler, "
           f"{s['completed']}/{s['requests']} requests completed, {s['throughput_rps']:.3g} req/s, "
           f"{s['output_tokens_per_s']:.4g} output tokens/s")
    rep = Report("simulate", title, sub, data=data)
    if s.get("slo"):
        rep.add("SLO attainment", _slo_figure(s["slo"], s.get("slo_attainment"), s.get("goodput_rps")))
    plots = data.get("plots")
    if plots:
        rep.add("Latency distributions", _cdf_figure(plots["cdf"], s),
                note="empirical CDFs (at most 400 sample points each, 6 significant digits); "
                     "markers: the summary's percentiles")
        rep.add("Over time", _series_figure(plots["series"]),
                note=f"{len(plots['series']['t_s'])} bins of {plots['series']['bin_s']:.3g} s")
    else:
        rows = [[label] + [_ms((s.get(k + "_s") or {}).get(q)) for q in ("p50", "p90", "p99")]
                for k, label in LATENCIES if s.get(k + "_s")]
        rep.add("Latency percentiles (ms)", table=(["metric", "p50", "p90", "p99"], rows),
                note="a --json summary has no per-request data; `infersim simulate --out DIR` then "
                     "`infersim report DIR` (or simulate --html) adds CDFs and time series")
    return rep


def _sweep_figure(points: list[dict], capacity):
    go, _ = plotly_modules()
    from plotly.subplots import make_subplots

    keys = [("ttft", "TTFT"), ("tpot", "TPOT"), ("e2e", "end-to-end")]
    fig = make_subplots(rows=1, cols=3, subplot_titles=[label for _, label in keys])
    rates = [p["rate"] for p in points]
    slos = points[0].get("slo") or [] if points else []
    for col, (k, label) in enumerate(keys, start=1):
        for q, color in PCT_COLORS.items():
            fig.add_trace(go.Scatter(x=rates, y=[p[f"{k}_s"][q] for p in points],
                                     mode="lines+markers", name=q, legendgroup=q, showlegend=col == 1,
                                     line={"color": color},
                                     hovertemplate="%{x:.4g} req/s: %{y:.4s}s<extra>" + f"{label} {q}</extra>"),
                          row=1, col=col)
        for slo in slos:
            if slo["metric"] == k:
                fig.add_hline(y=slo["max_s"], line_dash="dash", line_color=PCT_COLORS.get(
                    f"p{slo['percentile']:g}", "#333"), row=1, col=col)
        if capacity:
            fig.add_vline(x=capacity, line_color="#444", annotation_text="capacity", row=1, col=col)
        fig.update_xaxes(title_text="offered load (req/s)", row=1, col=col)
        fig.update_yaxes(type="log", row=1, col=col, **SECONDS)
    fig.update_yaxes(title_text="latency", row=1, col=1)
    fig.update_layout(height=420, legend=LEGEND, margin=MARGIN)
    return fig


def _throughput_figure(points: list[dict], capacity):
    go, _ = plotly_modules()
    rates = [p["rate"] for p in points]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=rates, y=[p["throughput_rps"] for p in points], mode="lines+markers",
                             name="throughput (req/s)"))
    fig.add_trace(go.Scatter(x=rates, y=[p.get("goodput_rps") for p in points], mode="lines+markers",
                             name="goodput (req/s meeting every SLO)"))
    fig.add_trace(go.Scatter(x=rates, y=[p.get("slo_attainment") for p in points], mode="lines+markers",
                             name="SLO attainment", yaxis="y2"))
    if capacity:
        fig.add_vline(x=capacity, line_color="#444", annotation_text="capacity")
    fig.update_layout(height=380, xaxis={"title": "offered load (req/s)"}, yaxis={"title": "req/s"},
                      yaxis2={"title": "attainment", "overlaying": "y", "side": "right", "range": [0, 1.05]},
                      legend=LEGEND, margin=MARGIN)
    return fig


@report_kind("sweep-rate", detect=lambda d: "points" in d and "capacity_rps" in d and "scenario" in d)
def sweep_report(data: dict) -> Report:
    pts = sorted(data["points"], key=lambda p: p["rate"])
    cap = data.get("capacity_rps")
    sub = f"{len(pts)} rates; capacity under the SLOs: " + (f"{cap:.4g} req/s" if cap else "not found in the range")
    rep = Report("sweep-rate", f"Latency vs load: {data['scenario']}", sub, data=data)
    rep.add("Latency percentiles vs offered load", _sweep_figure(pts, cap),
            note="dashed: the scenario's SLO limits; vertical line: the highest rate meeting every SLO")
    rep.add("Throughput, goodput and SLO attainment", _throughput_figure(pts, cap))
    return rep
