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

``transform.record`` names compression records written by ``infersim compress``
(``transform.record: [none, runs/sparsegpt-24/record.json]``): a point with a record gets the
record's transforms (its sparsity pattern, bits, adapter rank) with the accuracy cost measured here,
beside the published costs of the other transforms (:mod:`infersim.perf.transforms.measured`).
"""

from __future__ import annotations

import dataclasses

from ..perf.transforms import TRANSFORMS, make_transform, total_accuracy_delta
from ..perf.transforms.base import INTERNAL_FIELDS

PREFIX = "transform."
BUNDLED = "published"
#: the knob naming a measured compression record (``none``: no record)
RECORD_KNOB = "transform.record"


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
    out[RECORD_KNOB] = "none"
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
    record = config.get(RECORD_KNOB, "none")
    if record not in (None, "none"):
        out = sorted(out + list(_record_transforms(str(record), {t.key for t in out})), key=lambda t: t.key)
    return tuple(out)


def _record_transforms(path: str, given: set[str]) -> tuple:
    from ..errors import InfersimError
    from ..perf.transforms.measured import read_record

    try:
        measured = read_record(path).transforms()
    except InfersimError as err:
        raise InfersimError(f"space.{RECORD_KNOB}: {err}") from None
    for t in measured:
        if t.key in given:
            raise InfersimError(f"space.{RECORD_KNOB}: the record {path} sets '{t.key}' and the point sets "
                                f"space.{PREFIX}{t.key} too; keep one")
    return measured


def accuracy_delta(transforms) -> float:
    return total_accuracy_delta(transforms)
