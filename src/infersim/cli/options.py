"""Options shared by several commands (model, hardware, parallelism, dtypes)."""

from __future__ import annotations

import click

from ..dtypes import DTYPE_BYTES

DTYPES = click.Choice(sorted(DTYPE_BYTES))


def deployment_options(func):
    """--model, --hardware, --tp/--pp/--ep and the dtypes."""
    options = [
        click.option("--model", "-m", default="llama-3.1-8b", show_default=True,
                     help="catalog name (infersim models list) or path to a HuggingFace config.json"),
        click.option("--hardware", "-H", default="h100-sxm", show_default=True,
                     help="catalog name (infersim hardware list) or path to a device YAML"),
        click.option("--tp", default=1, show_default=True, type=int, help="tensor-parallel degree"),
        click.option("--pp", default=1, show_default=True, type=int, help="pipeline-parallel stages"),
        click.option("--ep", default=1, show_default=True, type=int,
                     help="expert-parallel degree inside the TP group (MoE)"),
        click.option("--dp-attention", is_flag=True,
                     help="MoE: data-parallel attention + expert parallel (all-to-all) over the tp devices"),
        click.option("--weight-dtype", default="bf16", show_default=True, type=DTYPES),
        click.option("--act-dtype", default="bf16", show_default=True, type=DTYPES),
        click.option("--kv-dtype", default="bf16", show_default=True, type=DTYPES),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def html_option(func):
    """--html FILE: also write a self-contained HTML report (plots, the data behind them)."""
    return click.option("--html", "html_path", default=None, type=click.Path(dir_okay=False),
                        help="also write a self-contained HTML report with plots (needs the report extra)")(func)


def write_html_report(kind: str, data: dict, path: str) -> None:
    """Write the ``kind`` report of ``data`` to ``path`` and say so on stderr."""
    from ..report.html import write_report
    from .app import err_console

    out = write_report(kind, data, path)
    err_console.print(f"[dim]wrote {out}[/dim]", highlight=False)
