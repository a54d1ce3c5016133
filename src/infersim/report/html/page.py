"""One self-contained HTML page: plotly.js embedded once, figures, tables and the data behind them.

The page opens offline (no network at view time). The data a report was built from is embedded
as JSON in ``<script type="application/json" id="infersim-data">`` and every figure's traces in
``<script type="application/json" class="infersim-figure">``, so a program (or a test) reads the
plotted numbers back with :func:`read_embedded`. When every figure has drawn, the page sets
``window.__infersimDone`` to ``performance.now()`` (milliseconds since navigation started).
"""

from __future__ import annotations

import html
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...errors import InfersimError

#: a legend in one row below the plot, clear of the x-axis title, and the margins that leave it room
LEGEND = {"orientation": "h", "yanchor": "top", "y": -0.2, "x": 0}
MARGIN = {"t": 50, "b": 110}

#: marks the file as an infersim report (read back by :func:`read_embedded`)
GENERATOR = "infersim-report"


def plotly_modules():
    """(plotly.graph_objects, plotly.offline), or a clear error when the extra is missing."""
    try:
        import plotly.graph_objects as go
        import plotly.offline as offline
    except ImportError:
        raise InfersimError("HTML reports need plotly; install it with: pip install 'infersim[report]'") from None
    return go, offline


@dataclass
class Section:
    """A heading, an optional note and one figure (a plotly Figure) or a table (header + rows)."""

    title: str
    figure: Any = None
    note: str = ""
    table: tuple[list[str], list[list[str]]] | None = None


@dataclass
class Report:
    kind: str
    title: str
    subtitle: str = ""
    sections: list[Section] = field(default_factory=list)
    data: dict = field(default_factory=dict)  # what the report was built from (its --json numbers)

    def add(self, title: str, figure=None, note: str = "", table=None) -> None:
        self.sections.append(Section(title, figure, note, table))

    @property
    def figures(self) -> list:
        return [s.figure for s in self.sections if s.figure is not None]


def json_clean(x):
    """JSON-ready: NaN/inf -> null, numpy scalars/arrays -> Python, tuples -> lists."""
    if isinstance(x, dict):
        return {str(k): json_clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_clean(v) for v in x]
    if hasattr(x, "tolist"):  # numpy
        return json_clean(x.tolist())
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _script_json(obj) -> str:
    # '</' must not close the script element early
    return json.dumps(json_clean(obj), separators=(",", ":"), allow_nan=False).replace("</", "<\\/")


def _figure_json(fig) -> str:
    data = [json_clean(t.to_plotly_json()) for t in fig.data]
    layout = json_clean(fig.layout.to_plotly_json())
    return _script_json({"data": data, "layout": layout})


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1180px;color:#222}
h1{font-size:1.45em;margin-bottom:2px} .sub{color:#666;margin-top:0}
h2{font-size:1.1em;margin:28px 0 4px;border-bottom:1px solid #ddd;padding-bottom:3px}
.note{color:#555;font-size:.9em;margin:2px 0 6px} .plot{width:100%;height:440px}
table{border-collapse:collapse;font-size:.88em;margin:6px 0}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}
th{background:#f4f4f4} td:first-child,th:first-child{text-align:left}
footer{color:#888;font-size:.8em;margin-top:32px}
"""

_BOOT = """
(function(){
  var figs=document.querySelectorAll('script.infersim-figure'), jobs=[];
  figs.forEach(function(s){
    var f=JSON.parse(s.textContent), div=document.getElementById(s.dataset.target);
    jobs.push(Plotly.newPlot(div,f.data,f.layout,{responsive:true,displaylogo:false}));
  });
  Promise.all(jobs).then(function(){window.__infersimDone=performance.now();},
                         function(e){console.error('plot failed: '+e);});
})();
"""


def _table_html(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def render_html(report: Report) -> str:
    """The page as one string (plotly.js inlined)."""
    _, offline = plotly_modules()
    import plotly

    parts = [f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
             f'<meta name="generator" content="{GENERATOR} {html.escape(report.kind)}">'
             f"<title>{html.escape(report.title)}</title><style>{_CSS}</style>"
             f"<script>{offline.get_plotlyjs()}</script></head><body>",
             f"<h1>{html.escape(report.title)}</h1>"]
    if report.subtitle:
        parts.append(f'<p class="sub">{html.escape(report.subtitle)}</p>')
    n = 0
    for sec in report.sections:
        parts.append(f"<h2>{html.escape(sec.title)}</h2>")
        if sec.note:
            parts.append(f'<p class="note">{html.escape(sec.note)}</p>')
        if sec.table is not None:
            parts.append(_table_html(*sec.table))
        if sec.figure is not None:
            div = f"plot{n}"
            height = sec.figure.layout.height or 440
            parts.append(f'<div id="{div}" class="plot" style="height:{int(height)}px"></div>'
                         f'<script type="application/json" class="infersim-figure" data-target="{div}">'
                         f"{_figure_json(sec.figure)}</script>")
            n += 1
    parts.append(f'<script type="application/json" id="infersim-data" data-kind="{html.escape(report.kind)}">'
                 f"{_script_json(report.data)}</script>")
    parts.append(f"<footer>infersim {html.escape(_version())} report ({html.escape(report.kind)}); "
                 f"plotly.js {html.escape(plotly.__version__)} embedded, opens offline.</footer>")
    parts.append(f"<script>{_BOOT}</script></body></html>")
    return "".join(parts)


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("infersim")
    except Exception:  # noqa: BLE001 - a source checkout without metadata
        return "(source)"


def write_html(report: Report, path: str | Path) -> Path:
    out = Path(path)
    if out.suffix.lower() not in (".html", ".htm"):
        raise InfersimError(f"{out}: an HTML report's file name must end in .html")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_html(report), encoding="utf-8")
    return out


_DATA_RE = re.compile(r'<script type="application/json" id="infersim-data" data-kind="([^"]*)">(.*?)</script>', re.S)
_FIG_RE = re.compile(r'<script type="application/json" class="infersim-figure" data-target="[^"]*">(.*?)</script>',
                     re.S)


def read_embedded(path: str | Path) -> tuple[str, dict, list[dict]]:
    """(kind, data, figures) of a report written by :func:`write_html`."""
    text = Path(path).read_text(encoding="utf-8")
    m = _DATA_RE.search(text)
    if m is None:
        raise InfersimError(f"{path}: not an infersim HTML report")
    unescape = lambda s: json.loads(s.replace("<\\/", "</"))  # noqa: E731
    return html.unescape(m.group(1)), unescape(m.group(2)), [unescape(f) for f in _FIG_RE.findall(text)]
