"""One registry of transforms, keyed once, and the parsers of the text and file forms.

Text form (``--transform``): ``key=value,name=value,...`` where the bare first ``value`` sets
the transform's primary parameter (``sparsity=2:4``, ``spec=eagle,alpha=0.8,gamma=4``); a
transform without a primary parameter is written ``key,name=value``. File form (scenario,
pipeline and study files): a list of mappings ``{type: key, name: value, ...}``, or the text
form as a string.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping

from ...errors import InfersimError, unknown_name_error
from ...registry import registrar
from .base import INTERNAL_FIELDS, Transform, TransformError

TRANSFORMS: dict[str, type[Transform]] = {}


#: class decorator: add a transform to :data:`TRANSFORMS` under its ``key`` (once)
register = registrar(TRANSFORMS, "key", "transform")


def _coerce(cls: type[Transform], name: str, raw):
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name not in INTERNAL_FIELDS}
    if name not in fields:
        known = ", ".join(sorted(fields))
        raise TransformError(name, f"unknown parameter of '{cls.key}'; expected one of {known}")
    f = fields[name]
    default = f.default
    if isinstance(raw, str):
        text = raw.strip()
    else:
        text = raw
    try:
        if isinstance(default, bool):
            if isinstance(text, bool):
                return text
            if str(text).lower() in ("true", "1", "yes"):
                return True
            if str(text).lower() in ("false", "0", "no"):
                return False
            raise ValueError
        if isinstance(default, int):
            if isinstance(text, float) and not text.is_integer():
                raise ValueError
            return int(float(text)) if float(text).is_integer() else int(text)
        if isinstance(default, float) or default is None:
            return float(text)
        return str(text)
    except (TypeError, ValueError):
        kind = ("true/false" if isinstance(default, bool) else "an integer" if isinstance(default, int)
                else "a number" if isinstance(default, float) or default is None else "text")
        raise TransformError(name, f"expected {kind}, got {raw!r}") from None


def make_transform(key: str, params: Mapping[str, object], origin: str) -> Transform:
    """A validated transform ``key`` with ``params`` (raw values coerced); errors start with ``origin``."""
    cls = TRANSFORMS.get(key)
    try:
        if cls is None:
            raise unknown_name_error("transform", key, TRANSFORMS)
        values = {name: _coerce(cls, name, raw) for name, raw in params.items()}
        t = cls(origin=origin, **values)
        t.validate()
        return t
    except TransformError as err:
        raise InfersimError(f"{origin}: {err}") from None
    except InfersimError as err:
        if str(err).startswith(origin):
            raise
        message = str(err).replace(" (or give a path to a file)", "")
        raise InfersimError(f"{origin}: {message}") from None


def parse_transform(text: str, where: str = "--transform") -> Transform:
    """``key=value,name=value,...`` -> a transform (see the module docstring)."""
    origin = f"{where} '{text}'"
    parts = [p.strip() for p in str(text).split(",") if p.strip()]
    if not parts:
        raise InfersimError(f"{origin}: empty; expected key=value[,name=value...]")
    head = parts[0]
    key, _, primary = head.partition("=")
    key = key.strip()
    params: dict[str, str] = {}
    cls = TRANSFORMS.get(key)
    if primary:
        if cls is not None and cls.primary is None:
            raise InfersimError(f"{origin}: '{key}' takes no value; write {key},name=value")
        params[cls.primary if cls is not None else "_"] = primary
    for part in parts[1:]:
        name, eq, value = part.partition("=")
        if not eq:
            raise InfersimError(f"{origin}: '{part}' is not name=value")
        if name.strip() in params:
            raise InfersimError(f"{origin}: parameter '{name.strip()}' given twice")
        params[name.strip()] = value
    return make_transform(key, params, origin)


def parse_transforms(items: Iterable[object], where: str) -> tuple[Transform, ...]:
    """A list from a file or repeated flags: strings (text form) or mappings with ``type``.

    ``where`` names the flag or the file field (``scenario.yaml: field 'transforms'``)."""
    out = []
    for i, item in enumerate(items or ()):
        here = f"{where}[{i}]"
        if isinstance(item, Transform):
            out.append(item)
        elif isinstance(item, str):
            out.append(parse_transform(item, here))
        elif isinstance(item, Mapping):
            params = dict(item)
            key = params.pop("type", None)
            if not isinstance(key, str):
                raise InfersimError(f"{here}: expected a 'type' naming the transform "
                                    f"(one of {', '.join(sorted(TRANSFORMS))})")
            out.append(make_transform(key, params, f"{here} ({key})"))
        else:
            raise InfersimError(f"{here}: expected 'key=value,...' or a mapping with 'type', got {item!r}")
    keys = [t.key for t in out]
    for key in set(keys):
        if keys.count(key) > 1:
            raise InfersimError(f"{where}: transform '{key}' given {keys.count(key)} times; give it once")
    return tuple(out)
