"""The transform interface: a software technique as a change to the model, dtypes, graph and memory.

A transform is a frozen dataclass of its parameters. Every hook defaults to "no change", so
a transform overrides only what its technique touches:

* :meth:`Transform.adjust_model` / :meth:`Transform.adjust_precision`: the model description
  and dtypes the deployment runs (a KV window caps every layer's attention; a quantized KV
  cache changes the KV dtype);
* :meth:`Transform.adjust_graph`: the operator table of one step (bytes, FLOPs, dtypes of the
  rows it changes; extra rows such as adapter GEMMs);
* :meth:`Transform.linear_weight_factor` / :meth:`Transform.extra_weight_bytes`: stored
  weights per device (scale and metadata bytes, adapters, draft heads);
* :meth:`Transform.speculation`: speculative decoding's draft / verify plan.

:meth:`Transform.bind` fixes device-dependent choices (is there a sparse tensor-core peak for
the dtype?) and raises where the device cannot run the transform at all. Every transform
declares an :class:`AccuracyCost` (published data with its source, or a user value) and names
its source paper in its docstring.

Hooks must be pure and keep the step graph's structure: rows scale by constants or gain
rows whose work is linear in the step's token / attention features (the serving model
tabulates rows by those features, :mod:`infersim.perf.step_time`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from ...errors import InfersimError

if TYPE_CHECKING:
    from ...hardware.device import Device
    from ...models.config import ModelConfig
    from ..operators import OpKind, OpTable
    from ..parallel import Parallelism, Precision


class TransformError(InfersimError):
    """A transform parameter is invalid; ``param`` names it (None: the transform as a whole)."""

    def __init__(self, param: str | None, problem: str) -> None:
        super().__init__(problem if param is None else f"{param}: {problem}")
        self.param = param
        self.problem = problem


@dataclass(frozen=True)
class AccuracyCost:
    """What a transform costs in quality, as data with a source.

    ``delta`` is signed in the metric's own direction of harm: positive = worse (a perplexity
    increase, an accuracy loss in points). ``published`` is False for user-given values and for
    values ``measured`` here (a record written by ``infersim compress``)."""

    metric: str
    delta: float
    model: str
    source: str
    published: bool = True
    measured: bool = False

    @property
    def label(self) -> str:
        if math.isnan(self.delta):
            return f"unknown ({self.source})"
        if self.metric == "none":
            return f"none ({self.source})"
        origin = ("measured here" if self.measured else "published, not measured here" if self.published
                  else "user value")
        return f"{self.metric} {self.delta:+g} on {self.model} ({origin}; {self.source})"


#: the accuracy cost of a transform that does not change the computed function
LOSSLESS = AccuracyCost("none", 0.0, "any", "exact: output distribution unchanged")


#: fields of every transform that are not user parameters (not knobs, not ``--transform`` names)
INTERNAL_FIELDS = ("origin", "measured")


@dataclass(frozen=True)
class TransformContext:
    """What graph and memory hooks may read: the deployment after model / dtype adjustments."""

    model: ModelConfig
    par: Parallelism
    prec: Precision


@dataclass(frozen=True)
class SpecPlan:
    """One speculative-decoding round: ``verify_tokens`` per sequence verified by the target,
    ``draft_steps`` draft forward passes of ``draft_tokens`` tokens per sequence each, a fixed
    ``overhead_s``, and ``tokens_per_round`` expected tokens emitted per sequence."""

    verify_tokens: int
    draft_steps: int
    draft_tokens: int
    tokens_per_round: float
    overhead_s: float
    draft_model: ModelConfig
    draft_fc: bool  # EAGLE / MTP: a (2h -> h) projection before the draft layer


@dataclass(frozen=True)
class Transform:
    """Base of every transform (see the module docstring). Subclasses are frozen dataclasses
    whose fields are the parameters; ``key`` names it in ``--transform key=value,...`` and
    ``primary`` is the field the bare ``value`` sets."""

    key: ClassVar[str] = ""
    primary: ClassVar[str | None] = None
    summary: ClassVar[str] = ""
    #: where the user wrote it (flag or file field), for errors; not part of identity
    origin: str = field(default="", compare=False, repr=False, kw_only=True)
    #: a user-given accuracy cost (metric delta); None: the bundled published one
    accuracy_delta: float | None = field(default=None, kw_only=True)
    #: a cost measured here (read from a compression record, :mod:`.measured`); wins over both
    measured: AccuracyCost | None = field(default=None, compare=False, repr=False, kw_only=True)

    # ----- parameters -------------------------------------------------------------------
    @classmethod
    def identity(cls) -> Transform:
        """The setting at which the transform changes nothing (bit for bit)."""
        raise NotImplementedError

    def validate(self) -> None:
        """Raise :class:`TransformError` for out-of-range parameters."""

    @classmethod
    def example(cls) -> Transform:
        """A typical non-identity setting (used by the contract tests and the docs)."""
        raise NotImplementedError

    # ----- hooks ------------------------------------------------------------------------
    def bind(self, device: Device) -> Transform:
        """This transform with device-dependent choices fixed; raises where it cannot run."""
        return self

    def adjust_model(self, model: ModelConfig) -> ModelConfig:
        return model

    def adjust_precision(self, prec: Precision) -> Precision:
        return prec

    def adjust_graph(self, table: OpTable, ctx: TransformContext) -> OpTable:
        return table

    def linear_weight_factor(self, prec: Precision) -> float:
        """Factor on the stored (and read) bytes of quantizable linear-layer weights."""
        return 1.0

    def extra_weight_bytes(self, model: ModelConfig, par: Parallelism, prec: Precision) -> float:
        """Weight bytes per device the technique adds (adapters, draft heads)."""
        return 0.0

    def speculation(self, model: ModelConfig) -> SpecPlan | None:
        return None

    def notes(self, device: Device, prec: Precision) -> list[str]:
        """Fallbacks and caveats worth telling the user (with their cost)."""
        return []

    def accuracy(self) -> AccuracyCost:
        """The bundled published cost, or the user's ``accuracy_delta``."""
        return LOSSLESS

    def user_accuracy(self, published: AccuracyCost) -> AccuracyCost:
        if self.measured is not None:
            return self.measured
        if self.accuracy_delta is None:
            return published
        return AccuracyCost(published.metric, self.accuracy_delta, "user's model", "given by the user", False)

    # ----- text -------------------------------------------------------------------------
    def spec(self) -> str:
        """``key=primary,name=value,...`` (parameters that differ from the defaults)."""
        parts = []
        for f in dataclasses.fields(self):
            if f.name in INTERNAL_FIELDS or isinstance(f.default, tuple):  # tuples: bound to a device
                continue
            value = getattr(self, f.name)
            if f.name == self.primary:
                parts.insert(0, f"{self.key}={value}")
            elif f.default is not dataclasses.MISSING and value != f.default:
                parts.append(f"{f.name}={value}")
        if self.primary is None:
            parts.insert(0, self.key)
        return ",".join(parts)


# ----- graph helpers shared by transforms ------------------------------------------------------

#: GEMM rows whose weights are the model's quantizable / prunable linear layers (the LM head
#: and the MoE router stay 16-bit in quantized checkpoints, as vLLM and TensorRT-LLM ship them)
LINEAR_PREFIXES = ("qkv_proj", "o_proj", "mlp.", "moe.experts.", "moe.shared.", "mla.")


#: name parts of rows transforms add beside a linear layer (adapters stay 16-bit, unpruned)
ADAPTER_TAGS = (".lora.", ".lowrank.")


def linear_rows(table: OpTable) -> np.ndarray:
    """Boolean mask of the quantizable linear GEMM rows of ``table`` (not the adapters beside them)."""
    from ..operators import OpKind

    return np.array([k == OpKind.GEMM and n.startswith(LINEAR_PREFIXES) and not any(t in n for t in ADAPTER_TAGS)
                     for n, k in zip(table.names, table.kind)], dtype=bool)


def phase_rows(table: OpTable) -> np.ndarray:
    """Rows whose work the serving step model takes as linear in the step's attention features
    (attention, MLA's prefill-only and decode-only projections; :func:`~infersim.perf.step_time.row_class`):
    what a transform adds to them must stay linear in their ``m``."""
    from ..step_time import row_class

    return np.array([row_class(n) == "attention" for n in table.names], dtype=bool)


def copy_table(table: OpTable, **columns) -> OpTable:
    """``table`` with some columns replaced (the others shared: hooks never mutate in place)."""
    return dataclasses.replace(table, **columns)


def append_row(table, name: str, kind: OpKind, dtype: str, *, flops, act_bytes, count: float = 1.0,
               kernels: float = 0.0):
    """``table`` with one more row (its launches folded into neighbours: ``kernels=0``)."""
    from .. import operators

    s = table.flops.shape[1]
    extra = operators.OpBuilder(s)
    extra.add(name, kind, count=count, dtype=dtype, kernels=kernels, flops=flops, act_bytes=act_bytes)
    return concat_ops(table, extra.build())


def concat_ops(first, second):
    """Operators of ``first`` then ``second`` (same scenarios)."""
    out = {}
    for f in dataclasses.fields(first):
        a, b = getattr(first, f.name), getattr(second, f.name)
        out[f.name] = a + b if isinstance(a, list) else np.concatenate([a, b], axis=0)
    return type(first)(**out)
