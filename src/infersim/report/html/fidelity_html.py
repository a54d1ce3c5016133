"""``fidelity`` report: predicted vs measured kernel latency (log-log) and error CDFs per mode."""

from __future__ import annotations

import numpy as np

from .page import LEGEND, MARGIN, Report, plotly_modules
from .plots import cdf, decimate_indices, rounded
from .registry import report_kind
from .serving_html import SECONDS

#: held-out rows drawn per device x family in the scatter (the CDFs use every held-out row)
MAX_SCATTER = 1500
MODE_ORDER = ("analytical", "calibrated", "residual", "transfer")


def fidelity_plot_data(predictions) -> dict:
    """From the per-row prediction table (``fidelity --csv``'s columns): per device, the held-out
    rows' measured and predicted latency by family (thinned), and the CDF of the absolute
    percentage error |predicted / measured - 1| per mode over every held-out row."""
    test = np.asarray(predictions.column("split").to_pylist()) == "test"
    device = np.asarray(predictions.column("device").to_pylist())[test]
    family = np.asarray(predictions.column("family").to_pylist())[test]
    measured = np.asarray(predictions.column("latency_s").to_numpy(zero_copy_only=False), float)[test]
    preds = {}
    for mode in MODE_ORDER:
        col = f"pred_{mode}_s"
        if col in predictions.column_names:
            p = np.asarray(predictions.column(col).to_numpy(zero_copy_only=False), float)[test]
            if np.isfinite(p).any():
                preds[mode] = p
    out: dict = {}
    for dev in sorted(set(device.tolist())):
        d = device == dev
        scatter = {}
        for fam in sorted(set(family[d].tolist())):
            rows = np.flatnonzero(d & (family == fam))
            rows = rows[decimate_indices(rows.size, MAX_SCATTER)]
            scatter[fam] = {"measured_s": rounded(measured[rows]),
                            "predicted_s": {m: rounded(p[rows]) for m, p in preds.items()}}
        errors = {m: cdf(np.abs(p[d] / measured[d] - 1.0)) for m, p in preds.items()}
        out[dev] = {"scatter": scatter, "error_cdf": errors}
    return out


def _scatter_figure(dev_data: dict, mode: str):
    go, _ = plotly_modules()
    fig = go.Figure()
    lo, hi = np.inf, 0.0
    for fam, s in dev_data["scatter"].items():
        m = np.asarray(s["measured_s"], float)
        p = np.asarray([np.nan if v is None else v for v in s["predicted_s"].get(mode, [])], float)
        if p.size == 0:
            continue
        ok = np.isfinite(p) & (p > 0) & (m > 0)
        if ok.any():
            lo, hi = min(lo, m[ok].min(), p[ok].min()), max(hi, m[ok].max(), p[ok].max())
        fig.add_trace(go.Scatter(x=m[ok].tolist(), y=p[ok].tolist(), mode="markers", name=fam,
                                 marker={"size": 5, "opacity": 0.6},
                                 hovertemplate="measured %{x:.4s}s<br>predicted %{y:.4s}s<extra>" + fam
                                               + "</extra>"))
    if hi > 0:
        fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="predicted = measured",
                                 line={"color": "#444", "dash": "dash"}))
    fig.update_layout(height=460, xaxis={"type": "log", "title": "measured", **SECONDS},
                      yaxis={"type": "log", "title": f"predicted, {mode}", **SECONDS}, legend=LEGEND, margin=MARGIN)
    return fig


def _error_figure(dev: str, dev_data: dict, scores: list[dict]):
    go, _ = plotly_modules()
    fig = go.Figure()
    for mode, c in dev_data["error_cdf"].items():
        fig.add_trace(go.Scatter(x=[v * 100 for v in c["x"]], y=c["y"], mode="lines", line_shape="hv",
                                 name=f"{mode} ({c['n']} rows)",
                                 hovertemplate="error %{x:.3g}%: %{y:.3f}<extra>" + mode + "</extra>"))
    pooled = [s for s in scores if s["device"] == dev and s["family"] == "all" and s["mdape"] is not None]
    if pooled:
        fig.add_trace(go.Scatter(x=[s["mdape"] * 100 for s in pooled], y=[0.5] * len(pooled), mode="markers+text",
                                 text=[f"MdAPE {s['mode']}" for s in pooled],
                                 textposition=["top left" if i % 2 else "bottom right" for i in range(len(pooled))],
                                 name="MdAPE (summary)", marker={"size": 10, "color": "#333", "symbol": "x"}))
    top = max([max(c["x"]) for c in dev_data["error_cdf"].values() if c["x"]] + [1.0]) * 100
    fig.update_layout(height=400, xaxis={"type": "log", "title": "absolute percentage error (%)",
                                         "exponentformat": "none", "range": [-1, float(np.log10(top)) + 0.05]},
                      yaxis={"title": "fraction of held-out rows", "range": [0, 1.02]}, legend=LEGEND, margin=MARGIN)
    return fig


def _score_table(scores: list[dict]):
    modes = [m for m in MODE_ORDER if any(s["mode"] == m for s in scores)]
    cells: dict = {}
    for s in scores:
        cells[(s["device"], s["family"])] = {**cells.get((s["device"], s["family"]), {}), s["mode"]: s}
    rows = []
    for (dev, fam), by_mode in cells.items():
        rows.append([dev, fam, str(max(s["rows"] for s in by_mode.values()))]
                    + [f"{by_mode[m]['mdape']:.1%}" if m in by_mode and by_mode[m]["mdape"] is not None else "-"
                       for m in modes])
    return ["device", "family", "held-out rows", *modes], rows


#: the splits whose scores are the headline ones (the test split of shapes, and held-out devices); the
#: validation split's and the second source's scores stay in the embedded data
HEADLINE_SPLITS = (None, "shapes", "device")


@report_kind("fidelity", detect=lambda d: "scores" in d and "header" in d and "calibrations" in d)
def fidelity_report(data: dict) -> Report:
    header = data["header"]
    scores = [s for s in data["scores"] if s.get("split") in HEADLINE_SPLITS]
    rep = Report("fidelity", "Fidelity: predicted vs measured kernel latency",
                 f"measurements: {header.get('measurements', '?')}; split: {header.get('split', '?')}", data=data)
    rep.add("Median absolute percentage error (held-out rows)", table=_score_table(scores))
    for dev, dev_data in (data.get("plots") or {}).items():
        modes = [m for m in MODE_ORDER if m in dev_data["error_cdf"]]
        best = "calibrated" if "calibrated" in modes else modes[0]
        for mode in dict.fromkeys(["analytical", best]):
            if mode in modes:
                rep.add(f"{dev}: predicted ({mode}) vs measured", _scatter_figure(dev_data, mode),
                        note=f"held-out rows, at most {MAX_SCATTER} per family (evenly thinned)")
        rep.add(f"{dev}: error CDF", _error_figure(dev, dev_data, scores),
                note="every held-out row; x: the summary's MdAPE of all families")
    if not data.get("plots"):
        rep.add("No per-row data", note="a --json summary holds scores only; run `infersim fidelity ... --html FILE` "
                                        "for the scatter and the error CDFs")
    return rep
