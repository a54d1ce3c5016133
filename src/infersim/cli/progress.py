"""Progress of long commands on stderr: a rich bar with ETA on a terminal, dim log lines elsewhere.

Library functions report progress through a callback ``progress(message, done=None, total=None)``
(``done`` of ``total`` steps when they know them). :func:`progress_reporter` makes that callback
for a command: on a terminal it drives a bar (steps, elapsed, ETA, the last message); when stderr is
not a terminal it prints the messages as timestamped lines, as before; with ``--json`` or
``--quiet`` it is silent.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from .app import err_console

Progress = Callable[..., None]


def _bar(description: str):
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)

    return Progress(SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(bar_width=24),
                    MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                    TextColumn("[dim]{task.fields[message]}"), console=err_console, transient=False,
                    redirect_stdout=False, redirect_stderr=False)


@contextmanager
def progress_reporter(description: str, *, quiet: bool = False, total: int | None = None) -> Iterator[Progress]:
    """A ``progress(message, done=None, total=None)`` callback for the duration of the block
    (``done`` and ``total`` stay as last given when a call leaves them out)."""
    if quiet:
        yield lambda message="", done=None, total=None: None
        return
    start = time.perf_counter()
    if not err_console.is_terminal:
        def log(message: str = "", done: int | None = None, total: int | None = None) -> None:
            if message:
                err_console.print(f"[dim]{time.perf_counter() - start:6.1f}s {message}[/dim]", highlight=False)

        yield log
        return
    bar = _bar(description)
    task = bar.add_task(description, total=total, message="")
    state = {"done": 0, "total": total}

    def update(message: str = "", done: int | None = None, total: int | None = None) -> None:
        if total is not None:
            state["total"] = total
        if done is not None:
            state["done"] = done
        bar.update(task, completed=state["done"], total=state["total"], message=message)

    with bar:
        yield update
