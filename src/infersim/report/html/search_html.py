"""``search`` / ``results`` report: Pareto scatter (dominated points faded) and parallel coordinates."""

from __future__ import annotations

import json

from .page import Report, plotly_modules
from .plots import decimate_indices
from .registry import report_kind

#: dominated points drawn at most (the front is always drawn whole); a 5,000-point study stays quick
MAX_DOMINATED = 1500
#: lines of the parallel-coordinates plot at most
MAX_LINES = 1000


def study_data(results, objectives=None) -> dict:
    """A study's points as plain data: configuration (all keys), metrics, status, Pareto rank."""
    from ...search.results import rank_points

    objectives = tuple(objectives or results.scoring.objectives)
    rank_points(results, objectives)
    return {"study": results.name,
            "objectives": [{"metric": o.metric, "direction": o.direction} for o in objectives],
            "varying": results.varying,
            "points": [{"trial": p.trial, "status": p.status, "feasible": p.feasible, "rank": p.rank,
                        "config": p.config, "metrics": p.metrics, "error": p.error} for p in results.points]}


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
                      yaxis={"title": f"{y} ({objs[1]['direction']})" if y else ""}, legend={"orientation": "h"})
    return fig


def _axis(values: list, label: str) -> dict:
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return {"label": label, "values": values}
    levels = sorted({json.dumps(v) for v in values})
    index = {v: i for i, v in enumerate(levels)}
    return {"label": label, "values": [index[json.dumps(v)] for v in values], "tickvals": list(range(len(levels))),
            "ticktext": [v.strip('"') for v in levels]}


def parallel_figure(data: dict):
    """Parallel coordinates over the searched parameters and the objectives (feasible points)."""
    go, _ = plotly_modules()
    objs = data["objectives"]
    pts = [p for p in data["points"] if p["rank"] is not None]
    pts = [pts[i] for i in decimate_indices(len(pts), MAX_LINES)]
    if not pts:
        return None
    dims = [_axis([p["config"].get(k) for p in pts], k) for k in data["varying"]]
    dims += [_axis([p["metrics"][o["metric"]] for p in pts], o["metric"]) for o in objs]
    color = [p["metrics"][objs[0]["metric"]] for p in pts]
    fig = go.Figure(go.Parcoords(dimensions=dims, line={"color": color, "colorscale": "Viridis", "showscale": True,
                                                        "colorbar": {"title": objs[0]["metric"]}}))
    fig.update_layout(height=460, margin={"l": 80, "r": 80})
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
            rep.add("Parallel coordinates", par, note=f"feasible points (at most {MAX_LINES}, evenly thinned), "
                                                      "coloured by the first objective; drag along an axis to filter")
    else:
        rep.add("No feasible point", note="no point met every constraint; see `infersim results show`")
    return rep
