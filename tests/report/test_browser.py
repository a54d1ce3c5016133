"""Every report kind in a real headless Chromium (one browser for all of them): no console errors,
every plot drew the traces and points its figure holds, and a screenshot is taken."""

from __future__ import annotations

import os
import struct

import pytest

from infersim.report.browser import Chromium, find_chromium
from infersim.report.html import read_embedded

pytest.importorskip("websocket", reason="the browser test drives Chromium with websocket-client "
                                        "(pip install 'infersim[test]')")

if find_chromium() is None:
    if os.environ.get("CI", "").lower() == "true":
        raise RuntimeError("CI=true but no Chromium is installed: .ci/run installs it (apt-get install chromium)")
    pytest.skip("no Chromium on this machine (Debian: apt-get install chromium); CI installs it",
                allow_module_level=True)


@pytest.fixture(scope="module")
def browser():
    with Chromium() as b:
        yield b


def expected_marks(figure: dict) -> dict:
    """What plotly must draw for a figure: marker points, lines and bars per its traces."""
    points = lines = bars = 0
    for t in figure["data"]:
        kind = t.get("type", "scatter")
        if kind == "scatter":
            mode = t.get("mode", "markers")
            if "markers" in mode:
                points += sum(v is not None for v in t["y"])
            if "lines" in mode:
                lines += 1
        elif kind == "bar":
            bars += sum(v is not None for v in (t["x"] if t.get("orientation") == "h" else t["y"]))
    return {"points": points, "lines": lines, "bars": bars}


def png_size(path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


def test_every_report_kind_draws_in_chromium(outputs, browser, tmp_path):
    for kind, (path, _) in outputs.items():
        page = browser.open(path)
        assert page.console_errors == [], (kind, page.console_errors)
        _, _, figures = read_embedded(path)
        assert len(page.plots) == len(figures), kind
        for drawn, figure in zip(page.plots, figures):
            assert drawn["traces"] == len(figure["data"]), (kind, drawn)
            want = expected_marks(figure)
            assert drawn["svg_points"] == want["points"], (kind, drawn, want)
            assert drawn["svg_bars"] == want["bars"], (kind, drawn, want)
            assert drawn["svg_lines"] >= want["lines"], (kind, drawn, want)
            assert drawn["canvases"] == 0, (kind, drawn)  # every plot is SVG (no WebGL to emulate)
        shot = browser.screenshot(tmp_path / f"{kind}.png", full_page=True)
        width, height = png_size(shot)
        assert width == browser.width and height > 600
