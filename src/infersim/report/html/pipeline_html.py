"""``pipeline`` and ``pipeline-study`` reports: per-stage time, per-engine utilization, study charts."""

from __future__ import annotations

from .page import LEGEND, MARGIN, Report, plotly_modules
from .registry import report_kind
from .serving_html import PCT_COLORS, SECONDS, _slo_figure

UTILIZATION = (("busy_fraction", "busy fraction"), ("mfu", "MFU"), ("mbu", "bandwidth utilization"),
               ("kv_utilization_mean", "KV utilization (mean)"))


def _stage_figure(stages: list[dict]):
    go, _ = plotly_modules()
    names = [s["name"] for s in stages]
    fig = go.Figure()
    for q, color in PCT_COLORS.items():
        fig.add_trace(go.Bar(x=names, y=[(s["time_s"] or {}).get(q) for s in stages], name=f"stage time {q}",
                             marker_color=color, hovertemplate="%{x}: %{y:.4s}s<extra>" + q + "</extra>"))
    transfers = [s for s in stages if s.get("transfer_s")]
    if transfers:
        fig.add_trace(go.Bar(x=[s["name"] for s in transfers], y=[s["transfer_s"] for s in transfers],
                             name="KV transfer (mean)", marker_color="#9467bd",
                             hovertemplate="%{x}: %{y:.4s}s<extra>KV transfer, mean</extra>"))
    fig.update_layout(barmode="group", height=380, yaxis={"title": "time", "type": "log", **SECONDS},
                      legend=LEGEND, margin=MARGIN)
    return fig


def _engine_figure(engines: list[dict]):
    go, _ = plotly_modules()
    names = [f"{e['name']} ({e['devices']} x {e['hardware']})" for e in engines]
    fig = go.Figure()
    for key, label in UTILIZATION:
        if any(e.get(key) is not None for e in engines):
            fig.add_trace(go.Bar(x=names, y=[e.get(key) for e in engines], name=label,
                                 hovertemplate="%{x}: %{y:.3f}<extra>" + label + "</extra>"))
    fig.update_layout(barmode="group", height=380, yaxis={"title": "fraction", "range": [0, 1.05]},
                      legend=LEGEND, margin=MARGIN)
    return fig


@report_kind("pipeline", detect=lambda d: "stages" in d and "engines" in d and "ttft_s" in d)
def pipeline_report(data: dict) -> Report:
    sub = (f"{data['completed']}/{data['requests']} requests, {data['throughput_rps']:.3g} req/s, "
           f"{data['accelerators']} accelerators, ${data['usd_per_million_output_tokens'] or float('nan'):.3g} "
           f"per M output tokens, {data['joules_per_output_token'] or float('nan'):.3g} J per output token")
    rep = Report("pipeline", f"Pipeline: {data['scenario']}", sub, data=data)
    rep.add("Time per stage", _stage_figure(data["stages"]))
    rep.add("Engine utilization", _engine_figure(data["engines"]))
    if data.get("slo"):
        rep.add("SLO attainment", _slo_figure(data["slo"], data.get("slo_attainment"), data.get("goodput_rps")))
    return rep


def _study_figure(rows: list[dict], key: str, label: str):
    go, _ = plotly_modules()
    fig = go.Figure()
    for group in dict.fromkeys(r["group"] for r in rows):
        mine = [r for r in rows if r["group"] == group]
        fig.add_trace(go.Bar(x=[r["configuration"] for r in mine], y=[r[key] for r in mine], name=str(group),
                             customdata=[r["gpus"] for r in mine],
                             hovertemplate="%{x}: %{y:.4g} (%{customdata} accelerators)<extra>" + str(group)
                                           + "</extra>"))
    fig.update_layout(barmode="group", height=400, yaxis={"title": label}, legend=LEGEND, margin=MARGIN)
    return fig


@report_kind("pipeline-study", detect=lambda d: "study" in d and "rows" in d and "scenario" in d)
def pipeline_study_report(data: dict) -> Report:
    rows = data["rows"]
    rep = Report("pipeline-study", f"Pipeline study ({data['study']}): {data['scenario']}",
                 f"{len(rows)} configurations in {len({r['group'] for r in rows})} groups", data=data)
    rep.add("Goodput per accelerator", _study_figure(rows, "goodput_per_gpu", "goodput per accelerator"),
            note="at each configuration's capacity: the highest rate meeting every SLO")
    rep.add("Capacity", _study_figure(rows, "capacity_rps", "capacity (req/s)"))
    if data.get("notes"):
        rep.add("Notes", note=" ".join(str(n) for n in data["notes"]))
    return rep
