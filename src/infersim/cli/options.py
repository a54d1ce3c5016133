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


def efficiency_option(func):
    """--efficiency: catalog devices' shipped calibrated profiles (default) or the spec sheet alone."""
    from ..hardware.profile import EFFICIENCY_CHOICES

    return click.option(
        "--efficiency", type=click.Choice(EFFICIENCY_CHOICES), default=None,
        help="efficiency model of catalog devices: their shipped profiles (calibrated on measured kernels, "
             "or transferred from the nearest measured device; the default) or the spec sheet alone (spec); "
             "overrides a scenario/study file's `efficiency:`")(func)
