"""Write a device YAML that ``--hardware`` accepts: the spec unchanged, efficiency replaced."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from ..errors import ConfigError
from ..hardware.catalog import parse_hardware_yaml
from ..hardware.device import Device
from ..hardware.schema import EfficiencySpec, HardwareSpec


def device_spec_with(device: Device, eff: EfficiencySpec, name: str | None = None,
                     display_suffix: str = " (calibrated)") -> HardwareSpec:
    """``device``'s spec with ``eff`` as its efficiency section (and optionally a new name)."""
    spec = device.spec
    update: dict[str, object] = {"efficiency": eff}
    if name is not None:
        update["name"] = name
        update["display_name"] = spec.display_name + display_suffix
    return spec.model_copy(update=update)


def calibrated_name(name: str) -> str:
    base = re.sub(r"-calibrated$", "", name)
    return f"{base}-calibrated"


class _Dumper(yaml.SafeDumper):
    """Block style, except lists of plain numbers (a tile ``[64, 128]``) on one line."""


def _represent_list(dumper: yaml.SafeDumper, value: list):
    flow = all(isinstance(v, (int, float)) for v in value)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=flow)


_Dumper.add_representer(list, _represent_list)


def efficiency_dump(eff: EfficiencySpec) -> dict:
    """``eff`` as plain data in its sections (hardware/efficiency.py): every number explicit (a later
    change of a default must not change a file's meaning), empty refinements and sections left out."""
    data = eff.model_dump(mode="json", exclude_none=True)
    out = {}
    for key, value in data.items():
        if isinstance(value, dict):
            value = {k: v for k, v in value.items() if v not in ({}, [])}
        if value not in ({}, []):
            out[key] = value
    return out


def yaml_text(data: dict, comment: str = "") -> str:
    """``data`` as block-style YAML, ``comment`` lines on top."""
    text = yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=110)
    head = "".join(f"# {line}\n" for line in comment.splitlines()) if comment else ""
    return head + text


def spec_yaml(spec: HardwareSpec, comment: str = "") -> str:
    data = spec.model_dump(mode="json", exclude_none=True)
    data["efficiency"] = efficiency_dump(spec.efficiency)
    return yaml_text(data, comment)


def write_device_yaml(spec: HardwareSpec, path: str | Path, comment: str = "") -> Path:
    """Write ``spec`` to ``path`` and check it loads back as the same spec."""
    path = Path(path)
    if path.suffix.lower() not in (".yaml", ".yml"):
        raise ConfigError(path, None, "the device file must end in .yaml or .yml (that is how --hardware knows a path)")
    text = spec_yaml(spec, comment)
    back = parse_hardware_yaml(text, path)
    if back != spec:  # pragma: no cover - a serialization bug, not user input
        raise AssertionError("device YAML does not round-trip")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path
