"""Template fields as search parameters: ``chip.<knob>`` overrides one field of a template file.

A study names a template file as its ``device`` and searches ``chip.cores``, ``chip.memory_stacks``,
... next to the model, parallelism and serving knobs. Each design is derived once (cached) and a
design over the reticle or its budget is rejected, with the reason, before any evaluation.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path

from ...errors import InfersimError
from ...userfile import load_yaml_mapping
from ..chip_knobs import CHIP_KNOBS, KEEP
from ..device import Device, device_from_spec
from . import parse_template
from .derive import ChipReport, derive

_ENABLES = {("cores", "count"): "enabled", ("memory", "stacks"): "enabled"}


def is_template_file(name: str) -> bool:
    """Whether ``name`` is a path to a YAML file holding an accelerator template."""
    path = Path(name)
    if path.suffix not in (".yaml", ".yml") or not path.is_file():
        return False
    return _read(str(path)).get("template") is not None


@functools.lru_cache(maxsize=64)
def _read(path: str) -> dict:
    """The file's mapping, through the checked user-file loader (read once per process)."""
    return load_yaml_mapping(path)


def apply_knobs(template: dict, knobs: dict) -> dict:
    """A copy of the template mapping with every ``chip.*`` knob that is not :data:`KEEP` applied."""
    out = copy.deepcopy(template)
    for knob, value in knobs.items():
        if value == KEEP:
            continue
        path = CHIP_KNOBS[knob]
        node = out
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
        if path in _ENABLES:
            node.pop(_ENABLES[path], None)
    return out


@functools.lru_cache(maxsize=4096)
def derive_design(path: str, knobs: tuple[tuple[str, object], ...]) -> tuple[Device, ChipReport]:
    """The device and chip report of a template file with knobs applied; a design over the reticle
    or its budget raises :class:`InfersimError` with the reason (the study records it as rejected)."""
    data = _read(path)
    template = parse_template({"template": apply_knobs(data["template"], dict(knobs))}, path)
    spec, report = derive(template, path)
    if report.violations:
        raise InfersimError("infeasible design: " + "; ".join(report.violations))
    return device_from_spec(spec), report
