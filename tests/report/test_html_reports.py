"""HTML reports hold the command's own numbers: read the data and the plotted traces back out of
the page and compare them with the command's --json output (and with independent checks)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from infersim.hardware import get_device
from infersim.report.html import REPORT_KINDS, read_embedded
from infersim.report.html.registry import _load_kinds

from .conftest import ROOT, run


def page(outputs, kind):
    path, data = outputs[kind]
    got_kind, embedded, figures = read_embedded(path)
    assert got_kind == kind
    return data, embedded, figures


def trace(figures, name_part: str, figure: int | None = None) -> dict:
    figs = figures if figure is None else [figures[figure]]
    hits = [t for f in figs for t in f["data"] if name_part in (t.get("name") or "")]
    assert hits, [t.get("name") for f in figs for t in f["data"]]
    return hits[0]


def test_every_kind_is_registered_once_and_detects_only_its_own_output(outputs):
    _load_kinds()
    assert set(outputs) <= set(REPORT_KINDS)
    for kind, (path, _) in outputs.items():
        _, embedded, _ = read_embedded(path)
        # the embedded data is recognized as this kind and as no other (one detector per kind)
        assert [k for k, rk in REPORT_KINDS.items() if rk.detect(embedded)] == [kind]


def test_estimate_report_plots_the_json_numbers(outputs):
    data, embedded, figures = page(outputs, "estimate")
    assert embedded == data
    roof_fig, ops_fig, mem_fig = figures
    pre = trace([ops_fig], "prefill")
    dec = trace([ops_fig], "decode")
    assert pre["x"] == [o["name"] for o in data["operators"]]
    assert pre["y"] == [o["prefill_s"] for o in data["operators"]]
    assert dec["y"] == [o["decode_step_s"] for o in data["operators"]]
    mem = data["memory_per_device_bytes"]
    bars = {t["name"]: t["x"][0] for t in mem_fig["data"]}
    assert bars["weights"] == pytest.approx(mem["weights"] / 1e9, rel=1e-12)
    assert bars["KV cache"] == pytest.approx(mem["kv_cache"] / 1e9, rel=1e-12)
    # the roof is the device's spec sheet: H100 SXM bf16 dense 989 TFLOP/s and 3.35 TB/s (NVIDIA datasheet)
    roof = data["roofline"]
    dev = get_device("h100-sxm")
    assert roof["peak_flops_per_s"] == dev.peak_flops("bf16") == pytest.approx(989e12, rel=0.01)
    assert roof["memory_bandwidth_bytes_per_s"] == pytest.approx(3.35e12)
    for phase in ("prefill", "decode"):
        t = trace([roof_fig], phase)
        pts = roof[phase]
        assert t["x"] == [p["flops"] / p["bytes"] for p in pts]
        assert t["y"] == [p["flops"] / p["time_s"] for p in pts]
        # no operator beats the roof: attained <= min(peak, intensity x bandwidth)
        for x, y in zip(t["x"], t["y"]):
            assert y <= min(roof["peak_flops_per_s"], x * roof["memory_bandwidth_bytes_per_s"]) * (1 + 1e-9)
    # prefill GEMMs are compute-bound and near the roof; decode GEMMs (batch 16) are memory-bound
    gate = {p["name"]: p for p in roof["prefill"]}["mlp.gate_up"]
    assert gate["bound"] == "compute"
    assert {p["name"]: p for p in roof["decode"]}["mlp.gate_up"]["bound"] == "memory"


def test_simulate_report_plots_the_json_numbers(outputs):
    data, embedded, figures = page(outputs, "simulate")
    assert {k: v for k, v in embedded.items() if k != "plots"} == data
    slo_fig, cdf_fig, series_fig = figures
    achieved = trace([slo_fig], "achieved")
    assert achieved["y"] == [s["value_s"] for s in data["slo"]]
    assert trace([slo_fig], "SLO limit")["y"] == [s["max_s"] for s in data["slo"]]
    for key, label in (("ttft", "TTFT"), ("tpot", "TPOT"), ("e2e", "end-to-end")):
        marks = trace([cdf_fig], f"{label} percentiles")
        assert marks["x"] == [data[f"{key}_s"][q] for q in ("p50", "p90", "p99")]
        curve = trace([cdf_fig], f"{label} CDF")
        # independent of the summary: the plotted CDF reaches 0.9 at the summary's p90 (within a step)
        x, y = np.array(curve["x"]), np.array(curve["y"])
        at_p90 = y[np.searchsorted(x, data[f"{key}_s"]["p90"] * (1 + 1e-5), side="right") - 1]
        assert at_p90 == pytest.approx(0.9, abs=0.02)
        assert y[-1] == 1.0 and np.all(np.diff(x) >= 0)
    assert embedded["plots"]["cdf"]["ttft"]["n"] == data["completed"]
    # completions over time add up to the completed requests (bins x rate x width)
    series = embedded["plots"]["series"]
    assert sum(series["completed_rps"]) * series["bin_s"] == pytest.approx(data["completed"], rel=1e-4)
    assert len(series_fig["data"]) == 5


def test_report_of_a_simulate_out_folder_matches_the_live_report(outputs, tmp_path):
    path, data = outputs["simulate"]
    folder = path.parent / "sim-out"
    out = tmp_path / "from-folder.html"
    run("report", folder, "-o", out)
    _, live, _ = read_embedded(path)
    _, again, _ = read_embedded(out)
    for key in ("ttft", "tpot", "e2e"):  # the CSVs round-trip floats exactly
        assert again["plots"]["cdf"][key] == live["plots"]["cdf"][key]
    assert again["plots"]["series"]["queued_requests"] == live["plots"]["series"]["queued_requests"]
    assert again["ttft_s"] == data["ttft_s"]


def test_sweep_report_plots_the_json_numbers(outputs):
    data, embedded, figures = page(outputs, "sweep-rate")
    assert embedded == data
    lat = figures[0]
    pts = sorted(data["points"], key=lambda p: p["rate"])
    p90 = [t for t in lat["data"] if t["name"] == "p90"]
    assert [t["y"] for t in p90] == [[p[f"{k}_s"]["p90"] for p in pts] for k in ("ttft", "tpot", "e2e")]
    assert p90[0]["x"] == [p["rate"] for p in pts]
    slo_lines = [s for s in lat["layout"]["shapes"] if s.get("line", {}).get("dash") == "dash"]
    assert sorted(s["y0"] for s in slo_lines) == sorted(s["max_s"] for s in pts[0]["slo"])


def test_pipeline_reports_plot_the_json_numbers(outputs):
    data, embedded, figures = page(outputs, "pipeline")
    assert embedded == data
    assert trace([figures[0]], "stage time p90")["y"] == [s["time_s"]["p90"] for s in data["stages"]]
    assert trace([figures[1]], "busy fraction")["y"] == [e["busy_fraction"] for e in data["engines"]]
    data, embedded, figures = page(outputs, "pipeline-study")
    assert embedded == data
    plotted = {(t["name"], x): y for t in figures[0]["data"] for x, y in zip(t["x"], t["y"])}
    assert plotted == {(r["group"], r["configuration"]): r["goodput_per_gpu"] for r in data["rows"]}


def test_fidelity_report_plots_the_json_numbers(outputs):
    data, embedded, figures = page(outputs, "fidelity")
    assert {k: v for k, v in embedded.items() if k != "plots"} == data
    err = figures[-1]
    headline = [s for s in data["scores"] if s.get("split") in (None, "shapes", "device")]
    pooled = {s["mode"]: s["mdape"] for s in headline if s["family"] == "all"}
    marks = trace([err], "MdAPE")
    assert marks["x"] == [pooled[m] * 100 for m in pooled]
    # independent of the score: the plotted error CDF crosses one half at the MdAPE
    curve = trace([err], "analytical")
    x, y = np.array(curve["x"]), np.array(curve["y"])
    assert np.interp(0.5, y, x) == pytest.approx(pooled["analytical"] * 100, rel=0.25)
    scatter_rows = sum(len(t["x"]) for t in figures[0]["data"] if t["name"] != "predicted = measured")
    assert scatter_rows == sum(s["rows"] for s in headline if s["family"] != "all")


def test_validate_report_plots_the_json_numbers(outputs):
    data, embedded, figures = page(outputs, "validate")
    assert embedded == data
    plotted = {(x, y) for t in figures[0]["data"] if t["name"] != "predicted = measured"
               for x, y in zip(t["x"], t["y"])}
    assert plotted == {(r["measured_output_tokens_per_s"], r["predicted_output_tokens_per_s"]) for r in data["rows"]}
    # the error CDF's last point is the largest |error| of the rows (independent of the summary)
    curve = figures[1]["data"][0]
    assert curve["x"][-1] == pytest.approx(max(r["ape"] for r in data["rows"]) * 100, rel=1e-5)


def _front(points, objectives):
    """Non-dominated feasible points, by brute force (independent of search.pareto)."""
    signs = [1 if o["direction"] == "min" else -1 for o in objectives]
    vals = [[s * p["metrics"][o["metric"]] for s, o in zip(signs, objectives)] for p in points]
    return {p["trial"] for p, v in zip(points, vals)
            if not any(all(a <= b for a, b in zip(w, v)) and w != v for w in vals)}


def test_search_report_front_is_the_non_dominated_set(outputs):
    from infersim.search.results import load_results
    from infersim.search.store import open_store

    path, info = outputs["search"]
    _, embedded, figures = read_embedded(path)
    with open_store(info["db"]) as store:
        results = load_results(store, info["study"])
    feasible = [{"trial": p.trial, "metrics": p.metrics} for p in results.points if p.feasible]
    objectives = embedded["objectives"]
    front = trace([figures[0]], "Pareto front")
    dominated = trace([figures[0]], "dominated")
    assert len(front["x"]) == len(_front(feasible, objectives))
    assert len(front["x"]) + len(dominated["x"]) == len(feasible)
    by_trial = {p["trial"]: p for p in feasible}
    expect = sorted((by_trial[t]["metrics"][objectives[0]["metric"]], by_trial[t]["metrics"][objectives[1]["metric"]])
                    for t in _front(feasible, objectives))
    assert sorted(zip(front["x"], front["y"])) == expect
    par = figures[1]
    labels = [f"{o['metric']} ({o['direction']})" for o in objectives]
    assert par["layout"]["xaxis"]["ticktext"] == embedded["varying"] + labels
    # one polyline (axes + a break) per feasible point, the front's in their own trace
    lines = {t["name"].split(" (")[0]: t for t in par["data"]}
    per_line = len(embedded["varying"]) + len(objectives) + 1
    assert len(lines["Pareto front"]["x"]) == per_line * len(expect)
    assert len(lines["other feasible points"]["x"]) == per_line * (len(feasible) - len(expect))
    # `infersim report DB` writes the same report as `search --html`
    again = path.parent / "again.html"
    run("report", info["db"], "-o", again)
    assert read_embedded(again)[1] == embedded


def test_large_studies_are_thinned_but_keep_the_whole_front():
    from infersim.report.html import build_report
    from infersim.report.html.search_html import MAX_DOMINATED, MAX_LINES

    rng = np.random.default_rng(0)
    pts = [{"trial": i, "status": "ok", "feasible": True, "rank": int(i % 7 != 0) * (1 + i % 3),
            "config": {"tp": int(rng.integers(1, 9)), "device": ["a", "b"][i % 2]},
            "metrics": {"cost": float(rng.random()), "speed": float(rng.random())}, "error": None}
           for i in range(5000)]
    data = {"study": "big", "objectives": [{"metric": "cost", "direction": "min"},
                                           {"metric": "speed", "direction": "max"}],
            "varying": ["tp", "device"], "points": pts}
    rep = build_report("search", data)
    scatter, par = rep.figures
    front = next(t for t in scatter.data if t.name.startswith("Pareto"))
    dominated = next(t for t in scatter.data if t.name.startswith("dominated"))
    assert len(front.x) == sum(p["rank"] == 0 for p in pts)
    assert len(dominated.x) == MAX_DOMINATED
    others = next(t for t in par.data if t.name.startswith("other"))
    drawn = sum(x is None for x in others.x) + len(front.x)
    assert MAX_LINES <= drawn <= MAX_LINES + len(front.x)


@pytest.mark.parametrize("content, phrase", [
    ("this is not json", "not an infersim output (not JSON"),
    (json.dumps({"hello": 1}), "not an infersim output (expected the --json output of one of"),
    (json.dumps([1, 2, 3]), "not an infersim output"),
])
def test_report_on_a_file_that_is_not_an_infersim_output(tmp_path, content, phrase):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    res = run("report", bad, ok=False)
    assert res.exit_code == 2
    assert phrase in res.output and str(bad) in res.output
    assert "Traceback" not in res.output and len(res.output.strip().splitlines()) == 1


def test_report_on_missing_paths_and_bad_folders(tmp_path):
    for args, phrase in (([tmp_path / "missing.duckdb"], "no such file, folder or results database"),
                         ([tmp_path], "not an infersim output folder (no summary.json"),
                         ([ROOT / "pyproject.toml", "--study", "x"], "--study: "),
                         ([ROOT / "tests" / "data" / "fidelity" / "sample.parquet"], "not an infersim output")):
        res = run("report", *args, ok=False)
        assert res.exit_code == 2, res.output
        assert phrase in res.output and "Traceback" not in res.output
        assert len(res.output.strip().splitlines()) == 1, res.output


def test_html_option_needs_an_html_file_name(tmp_path):
    res = run("estimate", "--html", tmp_path / "x.png", ok=False)
    assert res.exit_code == 2 and "must end in .html" in res.output
