"""``validate`` report: predicted vs published system throughput (log-log, by device) and the error CDF."""

from __future__ import annotations

import numpy as np

from .page import LEGEND, MARGIN, Report, plotly_modules
from .plots import cdf
from .registry import report_kind


def _scatter(rows: list[dict]):
    go, _ = plotly_modules()
    fig = go.Figure()
    lo, hi = np.inf, 0.0
    for dev in sorted({r["device"] for r in rows}):
        mine = [r for r in rows if r["device"] == dev]
        x = [r["measured_output_tokens_per_s"] for r in mine]
        y = [r["predicted_output_tokens_per_s"] for r in mine]
        lo, hi = min([lo, *x, *y]), max([hi, *x, *y])
        fig.add_trace(go.Scatter(x=x, y=y, mode="markers", name=dev, marker={"size": 8},
                                 text=[f"{r['id']} ({r['model']}, {r['scenario']}, {r['engine']})" for r in mine],
                                 hovertemplate="%{text}<br>measured %{x:.4s} tok/s<br>predicted %{y:.4s} tok/s"
                                               "<extra></extra>"))
    if hi > 0:
        fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="predicted = measured",
                                 line={"color": "#444", "dash": "dash"}))
    fig.update_layout(height=480, xaxis={"type": "log", "title": "published output tokens/s"},
                      yaxis={"type": "log", "title": "predicted output tokens/s"}, legend=LEGEND, margin=MARGIN)
    return fig


def _error_cdf(rows: list[dict], overall: dict):
    go, _ = plotly_modules()
    c = cdf([r["ape"] * 100 for r in rows])
    fig = go.Figure(go.Scatter(x=c["x"], y=c["y"], mode="lines", line_shape="hv", name=f"{c['n']} rows"))
    for name, key in (("MdAPE", "mdape"), ("p90", "p90_ape")):
        value = overall.get(key)
        if value is not None and np.isfinite(value):
            fig.add_vline(x=value * 100, line_dash="dot", annotation_text=f"{name} {value:.1%}")
    fig.update_layout(height=380, xaxis={"title": "absolute percentage error (%)"},
                      yaxis={"title": "fraction of rows", "range": [0, 1.02]}, legend=LEGEND, margin=MARGIN)
    return fig


def _group_table(groups: dict):
    rows = []
    for grouping, cells in groups.items():
        for cell in cells:
            label = ", ".join(str(v) for k, v in cell.items() if k not in
                              ("rows", "mdape", "p90_ape", "median_signed_bias", "mean_ape"))
            rows.append([grouping, label, str(cell.get("rows", "")), f"{cell.get('mdape', float('nan')):.1%}",
                         f"{cell.get('p90_ape', float('nan')):.1%}", f"{cell.get('median_signed_bias', float('nan')):+.1%}"])
    return ["grouping", "group", "rows", "MdAPE", "p90", "bias"], rows


@report_kind("validate", detect=lambda d: "overall" in d and "groups" in d and "rows" in d)
def validate_report(data: dict) -> Report:
    rows = [r for r in data["rows"] if r.get("predicted_output_tokens_per_s") and r.get("measured_output_tokens_per_s")]
    overall = data["overall"]
    rep = Report("validate", "Validation: predicted vs published system throughput",
                 f"{overall.get('rows', len(rows))} rows; MdAPE {overall.get('mdape', float('nan')):.1%}, "
                 f"p90 {overall.get('p90_ape', float('nan')):.1%}, bias {overall.get('median_signed_bias', float('nan')):+.1%}",
                 data=data)
    rep.add("Predicted vs published output tokens/s", _scatter(rows), note="one marker per published result")
    rep.add("Error CDF", _error_cdf(rows, overall), note="|predicted / published - 1| over every row")
    rep.add("By group", table=_group_table(data.get("groups", {})))
    return rep
