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


def transform_option(func):
    """--transform key=value,name=value (repeatable): software techniques (infersim transforms)."""
    return click.option(
        "--transform", "transforms", multiple=True, metavar="KEY=VALUE[,NAME=VALUE...]",
        help="apply a software technique, e.g. sparsity=2:4, quant=w4a16,group=128, "
             "spec=eagle,alpha=0.8,gamma=4 (repeatable; list: infersim transforms)")(func)


def parse_transform_flags(values) -> tuple:
    """The ``--transform`` values as transforms (errors name the flag and the parameter)."""
    from ..perf.transforms import parse_transforms

    return parse_transforms(list(values or ()), "--transform")
