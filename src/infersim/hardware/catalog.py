"""The hardware catalog: built-in YAML files plus any file a user names."""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path

from pydantic import ValidationError

from ..errors import ConfigError, unknown_name_error
from ..userfile import parse_yaml, read_text
from .device import Device, device_from_spec
from .plausibility import check_plausible
from .schema import HardwareSpec

_DATA = "data"


def _data_dir():
    return resources.files(__package__).joinpath(_DATA)


def builtin_names() -> list[str]:
    """Names of the bundled devices, sorted."""
    return sorted(p.name[: -len(".yaml")] for p in _data_dir().iterdir() if p.name.endswith(".yaml"))


def format_validation_error(path: object, err: ValidationError) -> ConfigError:
    """Turn pydantic's error into one line naming the file, the field and what was expected."""
    first = err.errors()[0]
    field = ".".join(str(p) for p in first["loc"]) or None
    msg = first["msg"]
    if first["type"] == "extra_forbidden":
        msg = "unknown field (not part of the format)"
    elif first["type"] == "missing":
        msg = "required field is missing"
    more = len(err.errors()) - 1
    if more:
        msg += f" (and {more} more problem{'s' if more > 1 else ''})"
    return ConfigError(path, field, msg)


def parse_hardware_yaml(text: str, origin: object) -> HardwareSpec:
    data = parse_yaml(text, origin)
    if not isinstance(data, dict):
        raise ConfigError(origin, None, "expected a mapping of fields at the top level")
    if "template" in data:  # an accelerator described by its architecture
        from .template import spec_from_template_data

        return spec_from_template_data(data, origin)
    try:
        spec = HardwareSpec.model_validate(data)
    except ValidationError as err:
        raise format_validation_error(origin, err) from None
    check_plausible(spec, origin)
    return spec


@functools.lru_cache(maxsize=None)
def _load_builtin(name: str) -> Device:
    path = _data_dir().joinpath(f"{name}.yaml")
    return device_from_spec(parse_hardware_yaml(path.read_text(encoding="utf-8"), f"<builtin>/{name}.yaml"))


def load_hardware_file(path: str | Path) -> Device:
    return device_from_spec(parse_hardware_yaml(read_text(path), Path(path)))


def get_device(name_or_path: str | Device) -> Device:
    """A device by catalog name (case-insensitive) or by path to a YAML file."""
    if isinstance(name_or_path, Device):
        return name_or_path
    text = str(name_or_path)
    if text.endswith((".yaml", ".yml")) or "/" in text:
        return load_hardware_file(text)
    key = text.lower()
    names = builtin_names()
    if key not in names:
        raise unknown_name_error("hardware", text, names)
    return _load_builtin(key)
