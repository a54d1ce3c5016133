"""User-facing errors.

Anything a user can cause (a bad file, an unknown name, an impossible parallel
layout) raises :class:`InfersimError`. The CLI prints its message and exits with
status 2, without a traceback; programming errors keep their tracebacks.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class InfersimError(Exception):
    """An error caused by user input, with a message meant to be read as is."""


class ConfigError(InfersimError):
    """A file a user wrote is malformed: names the file, the field and what was expected."""

    def __init__(self, path: object, field: str | None, problem: str) -> None:
        where = f"{path}" + (f": field '{field}'" if field else "")
        super().__init__(f"{where}: {problem}")
        self.path = path
        self.field = field
        self.problem = problem


def unknown_name_error(kind: str, name: str, known: Iterable[str]) -> InfersimError:
    """An 'unknown X' error that lists the closest known names (or all when none are close)."""
    known = sorted(known)
    close = difflib.get_close_matches(name.lower(), known, n=5, cutoff=0.5)
    if close:
        hint = "did you mean: " + ", ".join(close) + "?"
    else:
        hint = "known: " + ", ".join(known)
    return InfersimError(f"unknown {kind} '{name}'; {hint} (or give a path to a file)")
