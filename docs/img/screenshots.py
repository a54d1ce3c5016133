"""Regenerate the README's pictures: run each command with --html, then photograph one plot of
its report in headless Chromium (Debian's `chromium` package).

Usage: python docs/img/screenshots.py [NAME ...]   (names: the keys of SHOTS; default all)

The fidelity shot needs aiconfigurator-core's data (`pip install '.[fidelity]'`) and a few minutes.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from infersim.report.browser import Chromium

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]

#: picture -> (infersim arguments, which plot of the report)
SHOTS = {
    "estimate": (["estimate", "--model", "llama-3.1-70b", "--tp", "4", "--batch", "32"], 0),
    "simulate": (["simulate"], 1),
    "sweep-rate": (["sweep-rate", "examples/scenarios/default-chat.yaml", "--rates", "4,8,12,14,16,18,20"], 0),
    "search": (["search", "--db", "{tmp}/results.duckdb", "--no-progress"], 0),
    "pipeline-study": (["pipeline-study", "examples/disagg/pd_vs_colocated.yaml", "-q"], 0),
    "fidelity": (["fidelity", "-q"], 1),
}


def main(names: list[str]) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="infersim-shots-"))
    with Chromium(width=1000, height=800) as browser:
        for name in names or list(SHOTS):
            args, plot = SHOTS[name]
            html = tmp / f"{name}.html"
            cmd = [sys.executable, "-m", "infersim.cli.main", *(a.format(tmp=tmp) for a in args), "--html", str(html)]
            subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
            browser.open(html)
            out = browser.screenshot_element(HERE / f"{name}.png", f"#plot{plot}")
            print(f"{out.relative_to(ROOT)}: infersim {' '.join(args)} --html FILE (plot {plot})")


if __name__ == "__main__":
    main(sys.argv[1:])
