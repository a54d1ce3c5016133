"""HTML report figures: how fast a 5,000-point study report opens in headless Chromium, and how big the
report of a 10,000-request simulation is. Prints figures; asserts nothing.

Usage: python benchmarks/bench_report.py [--repeats N]

1. Study: the built-in search study with max batch over 1..8 (5,120 grid points), loose SLOs and
   no utilization constraint, so that every point that fits is feasible (4,580), run with the
   static evaluator into a fresh DuckDB file; its report written (the Pareto front whole, at most 1,500 dominated points and
   1,000 parallel-coordinate lines drawn). Open time = the page's own clock from navigation start
   to the last plot drawn (``window.__infersimDone``), median of ``--repeats`` loads in one headless
   Chromium (Debian's package), after one warm-up load; beside it the same for a report with no
   plot (plotly.js alone), the floor every report pays on this machine.
2. ``infersim simulate -n 10000 --html``: the file's size in bytes (plotly.js, 4.8 MB of it,
   embedded) and the size of everything but plotly.js.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from infersim.report.browser import Chromium, find_chromium
from infersim.report.html import Report, write_html, write_report
from infersim.report.html.search_html import study_data
from infersim.search import DEFAULT_STUDY, InlineBackend, open_store, run_study, study_from_dict
from infersim.search.results import load_results


def plotly_js_bytes() -> int:
    import plotly.offline

    return len(plotly.offline.get_plotlyjs().encode())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-report-"))

    spec = dict(DEFAULT_STUDY, name="bench-report", slo={"ttft_p99_s": 1e3, "tpot_p90_s": 1e3}, constraints=[])
    spec["space"] = dict(DEFAULT_STUDY["space"], max_batch={"type": "int", "low": 1, "high": 8})
    study = study_from_dict(spec, "<bench>")
    with open_store(tmp / "study.duckdb", write=True) as store:
        run_study(study, store, InlineBackend())
        results = load_results(store, study.name)
    data = study_data(results)
    feasible = sum(bool(p["feasible"]) for p in data["points"])
    t0 = time.perf_counter()
    page = write_report("search", data, tmp / "study.html")
    written = time.perf_counter() - t0
    print(f"study report: {len(data['points'])} points ({feasible} feasible, "
          f"{sum(p['rank'] == 0 for p in data['points'])} on the front), written in {written:.2f} s, "
          f"{page.stat().st_size / 1e6:.2f} MB")
    if find_chromium() is None:
        print("no Chromium: install it (apt-get install chromium) for the open time")
    else:
        empty = write_html(Report("bench", "plotly.js alone"), tmp / "empty.html")
        with Chromium() as browser:
            for label, path in (("5,120-point study report", page), ("report with no plot (plotly.js alone)", empty)):
                browser.open(path)  # warm-up
                times = [browser.open(path).load_ms for _ in range(args.repeats)]
                print(f"  {label}: opens in {statistics.median(times):.0f} ms, median of {args.repeats} loads in "
                      f"headless Chromium (min {min(times):.0f}, max {max(times):.0f}; target <= 2000 ms)")

    html = tmp / "sim10k.html"
    subprocess.run([sys.executable, "-m", "infersim.cli.main", "simulate", "-n", "10000", "--html", str(html)],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    size = html.stat().st_size
    print(f"simulate -n 10000 --html: {size:,} bytes ({size / 1e6:.2f} MB; target <= 5 MB), "
          f"{size - plotly_js_bytes():,} bytes besides plotly.js")


if __name__ == "__main__":
    main()
