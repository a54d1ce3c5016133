"""``infersim transforms``: the registered software techniques, their parameters and accuracy data."""

from __future__ import annotations

import dataclasses

import click
from rich.table import Table

from .app import console


@click.command("transforms")
def transforms_cmd() -> None:
    """List the transforms usable with --transform and in files' transforms: blocks."""
    from ..perf.transforms import TRANSFORMS
    from ..perf.transforms.base import INTERNAL_FIELDS

    t = Table(title="Transforms (--transform KEY=VALUE,NAME=VALUE...)", title_justify="left")
    for col in ("key", "what", "parameters (defaults)", "example", "accuracy cost of the example"):
        t.add_column(col, overflow="fold")
    for key, cls in sorted(TRANSFORMS.items()):
        params = ", ".join(f"{f.name}={f.default}" for f in dataclasses.fields(cls)
                           if f.name not in (*INTERNAL_FIELDS, "accuracy_delta") and not isinstance(f.default, tuple))
        example = cls.example()
        t.add_row(key, cls.summary, params, example.spec(), example.accuracy().label)
    console.print(t)
