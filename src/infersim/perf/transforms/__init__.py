"""Software techniques as transforms of the deployment (see :mod:`.base` for the interface).

Each registered transform changes only the model, dtypes, step graph and memory its technique
touches; the helpers here apply a tuple of them in order, the same way in every command.
"""

from __future__ import annotations

import math

from . import attention, kv, lowrank, quant, sparsity, spec  # noqa: F401  (register the transforms)
from .base import LOSSLESS, AccuracyCost, SpecPlan, Transform, TransformContext, TransformError
from .registry import TRANSFORMS, make_transform, parse_transform, parse_transforms, register


def prepare(model, prec, transforms):
    """``(model, precision)`` after every transform's model and dtype adjustments (idempotent)."""
    for t in transforms:
        try:
            model = t.adjust_model(model)
            prec = t.adjust_precision(prec)
        except TransformError as err:
            raise TransformError(None, f"{t.origin or t.spec()}: {err}") from None
    return model, prec


def bind_all(transforms, device) -> tuple:
    """Every transform bound to ``device`` (errors name where the user wrote it)."""
    out = []
    for t in transforms:
        try:
            out.append(t.bind(device))
        except TransformError as err:
            raise TransformError(None, f"{t.origin or t.spec()}: {err}") from None
    return tuple(out)


def apply_graph(table, transforms, model, par, prec):
    ctx = TransformContext(model, par, prec)
    for t in transforms:
        table = t.adjust_graph(table, ctx)
    return table


def linear_weight_factor(transforms, prec) -> float:
    factor = 1.0
    for t in transforms:
        factor *= t.linear_weight_factor(prec)
    return factor


def extra_weight_bytes(transforms, model, par, prec) -> float:
    return float(sum(t.extra_weight_bytes(model, par, prec) for t in transforms))


def speculation(transforms, model) -> SpecPlan | None:
    plans = [p for t in transforms if (p := t.speculation(model)) is not None]
    return plans[0] if plans else None


def notes(transforms, device, prec) -> list[str]:
    return [n for t in transforms for n in t.notes(device, prec)]


def accuracy_costs(transforms) -> list[AccuracyCost]:
    return [t.accuracy() for t in transforms]


def total_accuracy_delta(transforms) -> float:
    """Sum of the transforms' accuracy deltas (NaN when one has no figure): a study's objective."""
    total = 0.0
    for cost in accuracy_costs(transforms):
        if math.isnan(cost.delta):
            return math.nan
        total += cost.delta
    return total


__all__ = [
    "LOSSLESS", "TRANSFORMS", "AccuracyCost", "SpecPlan", "Transform", "TransformContext", "TransformError",
    "accuracy_costs", "apply_graph", "bind_all", "extra_weight_bytes", "linear_weight_factor",
    "make_transform", "notes", "parse_transform", "parse_transforms", "prepare", "register", "speculation",
    "total_accuracy_delta",
]
