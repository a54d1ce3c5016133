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


def runtime_option(func):
    """--runtime: the serving engine modelled (infersim.runtime's registry)."""
    return click.option("--runtime", "runtime", default=None, metavar="NAME",
                        help="serving engine modelled: none (kernels only), trtllm, vllm, vllm-v0, sglang "
                             "(default: the file's 'runtime:' key, else infersim's default)")(func)


def check_runtime_flag(name: str | None) -> str | None:
    """The --runtime value, or a one-line error naming the flag."""
    from ..errors import InfersimError
    from ..runtime import RUNTIMES

    if name is not None and name not in RUNTIMES:
        raise InfersimError(f"--runtime: unknown runtime '{name}'; expected one of {', '.join(sorted(RUNTIMES))}")
    return name
