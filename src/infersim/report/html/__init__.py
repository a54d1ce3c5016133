"""Self-contained HTML reports with Plotly (the ``report`` extra): one builder per command.

``write_report(kind, data, path)`` writes one page; :data:`REPORT_KINDS` lists the builders
(``estimate``, ``simulate``, ``sweep-rate``, ``search``, ``pipeline``, ``pipeline-study``,
``fidelity``); :func:`read_embedded` reads a page's data and figures back.
"""

from .page import Report, read_embedded, write_html
from .registry import REPORT_KINDS, build_report, detect_kind, report_kind, write_report

__all__ = ["REPORT_KINDS", "Report", "build_report", "detect_kind", "read_embedded", "report_kind", "write_html",
           "write_report"]
