"""``search`` / ``results`` report: Pareto scatter (dominated points faded) and parallel coordinates."""

from __future__ import annotations

import json

from .page import LEGEND, MARGIN, Report, plotly_modules
from .plots import decimate_indices
from .registry import report_kind

#: dominated points drawn at most (the front is always drawn whole); a 5,000-point study stays quick
MAX_DOMINATED = 1500
#: lines of the parallel-coordinates plot at most
MAX_LINES = 1000


def study_data(results, objectives=None) -> dict:
    """A study's points as plain data: status, feasibility, Pareto rank, the searched parameters and
    the objectives' metrics (``infersim results show`` / ``export`` have every metric and error)."""
    from ...search.results import rank_points

    objectives = tuple(objectives or results.scoring.objectives)
    rank_points(results, objectives)
    varying = results.varying
    return {"study": results.name,
            "objectives": [{"metric": o.metric, "direction": o.direction} for o in objectives],
            "varying": varying,
            "points": [{"trial": p.trial, "status": p.status, "feasible": p.feasible, "rank": p.rank,
                        "config": {k: p.config.get(k) for k in varying},
                        "metrics": {o.metric: (p.metrics or {}).get(o.metric) for o in objectives}}
                       for p in results.points]}


def _hover(p: dict, varying: list[str], objectives: list[dict]) -> str:
    cfg = "<br>".join(f"{k}={json.dumps(p['config'].get(k))}" for k in varying)
    obj = "<br>".join(f"{o['metric']}={p['metrics'][o['metric']]:.4g}" for o in objectives)
    return f"trial {p['trial']}<br>{cfg}<br>{obj}"


def pareto_figure(data: dict):
    go, _ = plotly_modules()
    objs = data["objectives"]
    ranked = [p for p in data["points"] if p["rank"] is not None]
    front = sorted((p for p in ranked if p["rank"] == 0), key=lambda p: p["metrics"][objs[0]["metric"]])
    dominated = [p for p in ranked if p["rank"] > 0]
    keep = [dominated[i] for i in decimate_indices(len(dominated), MAX_DOMINATED)]
    x, y = objs[0]["metric"], objs[1]["metric"] if len(objs) > 1 else None
    fig = go.Figure()
    for name, pts, style in (
            (f"dominated ({len(keep)} of {len(dominated)} drawn)", keep, {"opacity": 0.25, "color": "#888"}),
            (f"Pareto front ({len(front)})", front, {"opacity": 1.0, "color": "#d62728"})):
        marker = {"size": 7 if pts is keep else 10, "color": style["color"], "opacity": style["opacity"]}
        if len(objs) > 2:  # a third objective is the colour
            marker.update(color=[p["metrics"][objs[2]["metric"]] for p in pts], colorscale="Viridis",
                          showscale=pts is front, colorbar={"title": objs[2]["metric"]})
        fig.add_trace(go.Scatter(
            x=[p["metrics"][x] for p in pts], y=[p["metrics"][y] for p in pts] if y else [0] * len(pts),
            mode="markers+lines" if pts is front and len(objs) == 2 else "markers", name=name, marker=marker,
            line={"color": "#d62728", "width": 1, "shape": "hv"},
            text=[_hover(p, data["varying"], objs) for p in pts], hovertemplate="%{text}<extra></extra>"))
    fig.update_layout(height=480, xaxis={"title": f"{x} ({objs[0]['direction']})"},
                      yaxis={"title": f"{y} ({objs[1]['direction']})" if y else ""}, legend=LEGEND, margin=MARGIN)
    return fig


def _axis(values: list, label: str) -> dict:
    """One axis of the parallel coordinates: positions in [0, 1] and the labels of its ticks."""
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        lo, hi = min(values), max(values)
        span = (hi - lo) or 1.0
        return {"label": label, "pos": [(v - lo) / span for v in values],
                "ticks": [(0.0, f"{lo:.4g}"), (1.0, f"{hi:.4g}")] if hi > lo else [(0.0, f"{lo:.4g}")]}
    levels = sorted({json.dumps(v) for v in values})
    step = 1.0 / max(len(levels) - 1, 1)
    index = {v: i * step for i, v in enumerate(levels)}
    return {"label": label, "pos": [index[json.dumps(v)] for v in values],
            "ticks": [(index[v], v.strip('"')) for v in levels]}


def parallel_figure(data: dict):
    """Parallel coordinates over the searched parameters and the objectives (feasible points), drawn
    as SVG polylines (one trace for the front, one for the others): quick to open for thousands of
    points, where plotly's WebGL parcoords costs seconds on a machine without a GPU."""
    go, _ = plotly_modules()
    objs = data["objectives"]
    pts = [p for p in data["points"] if p["rank"] is not None]
    if not pts:
        return None
    front = {i for i, p in enumerate(pts) if p["rank"] == 0}
    keep = sorted(set(decimate_indices(len(pts), MAX_LINES).tolist()) | front)
    pts = [pts[i] for i in keep]
    axes = [_axis([p["config"].get(k) for p in pts], k) for k in data["varying"]]
    axes += [_axis([p["metrics"][o["metric"]] for p in pts], f"{o['metric']} ({o['direction']})") for o in objs]
    fig = go.Figure()
    for name, rank0, style in (("other feasible points", False, {"color": "rgba(120,120,120,0.25)", "width": 1}),
                               ("Pareto front", True, {"color": "#d62728", "width": 2})):
        rows = [i for i, p in enumerate(pts) if (p["rank"] == 0) == rank0]
        xs, ys = [], []
        for i in rows:
            xs += [*range(len(axes)), None]
            ys += [a["pos"][i] for a in axes] + [None]
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name=f"{name} ({len(rows)})", line=style,
                                 hoverinfo="skip"))
    for j, a in enumerate(axes):
        fig.add_shape(type="line", x0=j, x1=j, y0=0, y1=1, line={"color": "#333", "width": 1})
        for pos, text in a["ticks"]:
            fig.add_annotation(x=j, y=pos, text=text, showarrow=False, xanchor="left", xshift=4,
                               font={"size": 10}, bgcolor="rgba(255,255,255,0.7)")
    fig.update_layout(height=460, legend=LEGEND, margin=MARGIN, plot_bgcolor="white",
                      xaxis={"tickvals": list(range(len(axes))), "ticktext": [a["label"] for a in axes],
                             "range": [-0.2, len(axes) - 0.5], "showgrid": False, "zeroline": False},
                      yaxis={"visible": False, "range": [-0.05, 1.05]})
    return fig


@report_kind("search", detect=lambda d: "study" in d and "objectives" in d and "points" in d)
def search_report(data: dict) -> Report:
    pts = data["points"]
    counts = {s: sum(p["status"] == s for p in pts) for s in ("ok", "rejected", "failed")}
    feasible = sum(bool(p["feasible"]) for p in pts)
    front = sum(p["rank"] == 0 for p in pts)
    sub = (f"{len(pts)} points: {counts['ok']} evaluated, {counts['rejected']} rejected, {counts['failed']} failed; "
           f"{feasible} feasible, {front} on the front of "
           + " / ".join(f"{o['metric']} ({o['direction']})" for o in data["objectives"]))
    rep = Report("search", f"Design-space search: {data['study']}", sub, data=data)
    if front:
        rep.add("Pareto front", pareto_figure(data),
                note="feasible points; dominated ones are faded (and evenly thinned above "
                     f"{MAX_DOMINATED}); hover shows the configuration")
        par = parallel_figure(data)
        if par is not None:
            rep.add("Parallel coordinates", par, note=f"feasible points (the front whole, the others evenly "
                                                      f"thinned to at most {MAX_LINES}); each axis from its lowest "
                                                      "to its highest value")
    else:
        rep.add("No feasible point", note="no point met every constraint; see `infersim results show`")
    return rep
