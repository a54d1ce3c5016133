"""The registry of HTML report kinds: one builder per command's output.

A kind is a function ``build(data) -> Report`` from the command's ``--json`` dictionary (plus,
where a command has more than its summary, arrays it adds for the plots) and a predicate
``detect(data)`` that recognizes that dictionary in a file given to ``infersim report``.
Adding a report for a new command is one decorated function::

    @report_kind("validate", detect=lambda d: "validation" in d)
    def validate_report(data: dict) -> Report: ...
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ...errors import InfersimError
from .page import Report, write_html


@dataclass(frozen=True)
class ReportKind:
    name: str
    build: Callable[[dict], Report]
    detect: Callable[[dict], bool]


REPORT_KINDS: dict[str, ReportKind] = {}


def report_kind(name: str, detect: Callable[[dict], bool]):
    """Register ``build`` under ``name`` (the decorator returns it unchanged)."""

    def register(build: Callable[[dict], Report]) -> Callable[[dict], Report]:
        if name in REPORT_KINDS:
            raise ValueError(f"report kind '{name}' registered twice")
        REPORT_KINDS[name] = ReportKind(name, build, detect)
        return build

    return register


def _load_kinds() -> None:
    # importing the modules registers their kinds (one import site, no string dispatch)
    from . import estimate_html, fidelity_html, pipeline_html, search_html, serving_html, validate_html  # noqa: F401


def build_report(kind: str, data: dict) -> Report:
    _load_kinds()
    if kind not in REPORT_KINDS:
        raise InfersimError(f"unknown report kind '{kind}'; known: {', '.join(sorted(REPORT_KINDS))}")
    report = REPORT_KINDS[kind].build(data)
    report.kind = kind
    return report


def detect_kind(data: object, origin: str) -> str:
    """The kind whose detector accepts ``data`` (a dictionary read from ``origin``)."""
    _load_kinds()
    if isinstance(data, dict):
        for kind in REPORT_KINDS.values():
            if kind.detect(data):
                return kind.name
    raise InfersimError(f"{origin}: not an infersim output (expected the --json output of one of: "
                        f"{', '.join(sorted(REPORT_KINDS))})")


def write_report(kind: str, data: dict, path: str | Path) -> Path:
    """Build the report of ``kind`` from ``data`` and write it as one HTML file."""
    return write_html(build_report(kind, data), path)
