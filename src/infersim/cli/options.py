"""Options shared by several commands (model, hardware, parallelism, dtypes)."""

from __future__ import annotations

import math

import click

from ..dtypes import DTYPE_BYTES

DTYPES = click.Choice(sorted(DTYPE_BYTES))


class Real(click.ParamType):
    """A finite float within [min, max] (``min_open``: strictly above min). click's FloatRange lets
    nan through (every comparison with nan is false) and accepts inf; this type refuses both."""

    name = "number"

    def __init__(self, min: float | None = None, max: float | None = None, min_open: bool = False) -> None:
        self.min, self.max, self.min_open = min, max, min_open

    def convert(self, value, param, ctx):
        if isinstance(value, float):
            number = value
        else:
            try:
                number = float(str(value).strip())
            except ValueError:
                self.fail(f"expected a number, got {value!r}", param, ctx)
        if not math.isfinite(number):
            self.fail(f"expected a finite number, got {value!r}", param, ctx)
        low = self.min is not None and (number <= self.min if self.min_open else number < self.min)
        if low or (self.max is not None and number > self.max):
            lo = "" if self.min is None else ("(" if self.min_open else "[") + f"{self.min:g}"
            hi = "" if self.max is None else f"{self.max:g}]"
            where = f"in {lo or '(-inf'}, {hi or 'inf)'}"
            self.fail(f"expected a number {where}, got {value!r}", param, ctx)
        return number


#: counts: requests, batch, tokens, parallel degrees, workers (>= 1)
COUNT = click.IntRange(min=1)
#: list lengths and other counts where 0 is meaningful
NONNEG = click.IntRange(min=0)
#: seeds of numpy's generators are non-negative and below 2**64 (numpy.random.SeedSequence)
SEED = click.IntRange(min=0, max=2**63 - 1)
#: a rate in requests/s: positive and finite (very low rates are bounded by the workload's time limit)
RATE = Real(min=0.0, min_open=True)
#: a fraction in (0, 1]
FRACTION = Real(min=0.0, max=1.0, min_open=True)


def deployment_options(func):
    """--model, --hardware, --tp/--pp/--ep and the dtypes."""
    options = [
        click.option("--model", "-m", default="llama-3.1-8b", show_default=True,
                     help="catalog name (infersim models list) or path to a HuggingFace config.json"),
        click.option("--hardware", "-H", default="h100-sxm", show_default=True,
                     help="catalog name (infersim hardware list) or path to a device YAML"),
        click.option("--tp", default=1, show_default=True, type=COUNT, help="tensor-parallel degree"),
        click.option("--pp", default=1, show_default=True, type=COUNT, help="pipeline-parallel stages"),
        click.option("--ep", default=1, show_default=True, type=COUNT,
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


def accuracy_record_option(func):
    """--accuracy-record record.json: a compression measured by ``infersim compress``."""
    return click.option(
        "--accuracy-record", "accuracy_record", default=None, metavar="PATH",
        help="record.json written by infersim compress: its sparsity / bits / adapter ranks become transforms "
             "and its measured quality delta their accuracy cost ('measured here')")(func)


def with_accuracy_record(transforms: tuple, path: str | None) -> tuple:
    """``transforms`` plus the record's; a technique given both ways is a one-line error."""
    from ..errors import InfersimError
    from ..perf.transforms.measured import read_record

    if path is None:
        return transforms
    measured = read_record(path).transforms()
    given = {t.key for t in transforms}
    for t in measured:
        if t.key in given:
            raise InfersimError(f"--accuracy-record {path}: the record sets '{t.key}' and --transform gives it too; "
                                "drop one")
    return tuple(transforms) + measured


def runtime_option(func=None, *, default: str = "the file's 'runtime:' key, else infersim's default"):
    """--runtime: the serving engine modelled (infersim.runtime's registry); ``default`` says what
    the command uses without the flag (``@runtime_option`` or ``@runtime_option(default=...)``)."""
    def decorate(f):
        return click.option("--runtime", "runtime", default=None, metavar="NAME",
                            help="serving engine modelled: a registered runtime, e.g. trtllm, vllm, sglang, or none "
                                 "for the kernels alone (`infersim runtimes` lists them all and the default; "
                                 f"default: {default})")(f)

    return decorate(func) if func is not None else decorate


def check_runtime_flag(name: str | None) -> str | None:
    """The --runtime value, or a one-line error naming the flag."""
    from ..errors import InfersimError
    from ..runtime import known_runtime

    try:
        return known_runtime(name)
    except ValueError as exc:
        raise InfersimError(f"--runtime: {exc}") from None


def moe_routing_option(func):
    """--moe-routing: how MoE routers spread tokens over experts (infersim.perf.routing)."""
    return click.option("--moe-routing", "moe_routing", default=None, metavar="NAME",
                        help="MoE routing: uniform (random, the default), balanced, or power_law_<alpha> "
                             "(skewed, e.g. power_law_1.2 as AIConfigurator assumes)")(func)


def check_moe_routing_flag(name: str | None) -> str:
    """The --moe-routing value (the default when not given), or a one-line error naming the flag."""
    from ..errors import InfersimError
    from ..perf.routing import DEFAULT_ROUTING, parse_routing

    if name is None:
        return DEFAULT_ROUTING
    try:
        parse_routing(name)
    except InfersimError as exc:
        raise InfersimError(f"--moe-routing: {exc}") from None
    return name


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


def efficiency_option(func):
    """--efficiency: catalog devices' shipped calibrated profiles (default) or the spec sheet alone."""
    from ..hardware.choices import EFFICIENCY_CHOICES

    return click.option(
        "--efficiency", type=click.Choice(EFFICIENCY_CHOICES), default=None,
        help="efficiency model of catalog devices: their shipped profiles (calibrated on measured kernels, "
             "or transferred from the nearest measured device; the default) or the spec sheet alone (spec); "
             "overrides a scenario/study file's `efficiency:`")(func)
