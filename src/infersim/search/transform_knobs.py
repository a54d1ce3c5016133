"""Transforms as study-space parameters.

Every registered transform ``key`` (:mod:`infersim.perf.transforms`) is a deployment knob
``transform.<key>`` (its primary parameter: ``transform.sparsity: [dense, "2:4"]``,
``transform.spec: [none, eagle]``) and each of its other parameters a knob
``transform.<key>.<name>`` (``transform.spec.gamma: {type: int, low: 1, high: 8}``). A knob
left out keeps its default; a transform whose primary is at its identity value and whose
other knobs are at their defaults is not applied (the point is the plain deployment, bit for
bit). ``transform.<key>.accuracy_delta`` gives a user accuracy cost ("published": the bundled
one). Each point's ``accuracy_delta`` metric sums its transforms' costs (NaN when one has no
figure), for constraints (``accuracy_delta <= 1``) and objectives (``{min: accuracy_delta}``).
"""

from __future__ import annotations

import dataclasses

from ..perf.transforms import TRANSFORMS, make_transform, total_accuracy_delta
from ..perf.transforms.base import INTERNAL_FIELDS

PREFIX = "transform."
BUNDLED = "published"


def _params(cls):
    return [f for f in dataclasses.fields(cls)
            if f.name not in (*INTERNAL_FIELDS, cls.primary) and not isinstance(f.default, tuple)]


def transform_knobs() -> dict[str, object]:
    """Knob name -> default for every registered transform and parameter."""
    out: dict[str, object] = {}
    for key, cls in sorted(TRANSFORMS.items()):
        out[f"{PREFIX}{key}"] = getattr(cls.identity(), cls.primary)
        for f in _params(cls):
            out[f"{PREFIX}{key}.{f.name}"] = BUNDLED if f.name == "accuracy_delta" else f.default
    return out


TRANSFORM_KNOBS = transform_knobs()


def transforms_from_config(config: dict) -> tuple:
    """The transforms a (resolved) configuration applies, in registry order; errors name the knob."""
    out = []
    for key, cls in sorted(TRANSFORMS.items()):
        primary = config.get(f"{PREFIX}{key}", TRANSFORM_KNOBS[f"{PREFIX}{key}"])
        params = {}
        for f in _params(cls):
            value = config.get(f"{PREFIX}{key}.{f.name}", TRANSFORM_KNOBS[f"{PREFIX}{key}.{f.name}"])
            if value != TRANSFORM_KNOBS[f"{PREFIX}{key}.{f.name}"]:
                params[f.name] = value
        if primary == TRANSFORM_KNOBS[f"{PREFIX}{key}"] and not params:
            continue
        out.append(make_transform(key, {cls.primary: primary, **params}, f"space.{PREFIX}{key}"))
    return tuple(out)


def accuracy_delta(transforms) -> float:
    return total_accuracy_delta(transforms)
