"""The hardware catalog: built-in YAML files plus any file a user names."""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path

from pydantic import ValidationError

from ..errors import ConfigError, InfersimError, unknown_name_error
from ..userfile import parse_yaml, read_text
from .device import Device, device_from_spec
import yaml

from .plausibility import check_plausible
from .choices import ENGINE_KERNELS
from .profile import ENGINE_TITLES, SPEC_ONLY, DeviceProfile, check_efficiency_choice
from .schema import EfficiencySpec, HardwareSpec

_DATA = "data"
#: shipped profiles, one file per catalog device, beside the spec sheets
PROFILES = "profiles"


def _data_dir():
    return resources.files(__package__).joinpath(_DATA)


def builtin_names() -> list[str]:
    """Names of the bundled devices, sorted."""
    return sorted(p.name[: -len(".yaml")] for p in _data_dir().iterdir() if p.name.endswith(".yaml"))


#: errors pydantic gives for a union member the value is not an instance of (``X | str``): when
#: another member reports a real problem, that one is the user's
_MEMBER_TYPE_ERRORS = {"string_type", "int_type", "float_type", "bool_type", "dict_type", "list_type",
                       "model_type", "model_attributes_type", "is_instance_of"}
_SCALAR_TAGS = {"str", "int", "float", "bool", "list", "dict", "none"}


def _model_names() -> set[str]:
    from pydantic import BaseModel

    names, todo = set(), [BaseModel]
    while todo:
        for sub in todo.pop().__subclasses__():
            names.add(sub.__name__)
            todo.append(sub)
    return names


def _user_loc(loc: tuple, members: set[str]) -> str | None:
    """Dotted field of a pydantic location, without the union-member tags pydantic inserts
    (``optimizer.OptimizerSpec.kind`` -> ``optimizer.kind``)."""
    parts = [str(p) for p in loc if not (isinstance(p, str) and (p in _SCALAR_TAGS or p in members
                                                                  or p.startswith("function-")))]
    return ".".join(parts) or None


def format_validation_error(path: object, err: ValidationError) -> ConfigError:
    """Turn pydantic's error into one line naming the file, the field and what was expected."""
    errors = err.errors()
    members = _model_names()
    real = [e for e in errors if e["type"] not in _MEMBER_TYPE_ERRORS] or errors
    first = real[0]
    field = _user_loc(tuple(first["loc"]), members)
    msg = first["msg"]
    if first["type"] == "extra_forbidden":
        msg = "unknown field (not part of the format)"
    elif first["type"] == "missing":
        msg = "required field is missing"
    elif first["type"] == "value_error":
        msg = msg.removeprefix("Value error, ")
    more = len({_user_loc(tuple(e["loc"]), members) for e in real} - {field})
    if more:
        msg += f" (and {more} more problem{'s' if more > 1 else ''})"
    return ConfigError(path, field, msg)


#: libyaml's safe loader where PyYAML has it, for the shipped profiles (15x faster on a profile);
#: user files go through infersim.userfile's checked loader
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _load_mapping(text: str, origin: object) -> dict:
    try:
        data = yaml.load(text, Loader=_SAFE_LOADER)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(origin, None, f"not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise ConfigError(origin, None, "expected a mapping of fields at the top level")
    return data


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


def _profiles_dir():
    return _data_dir().joinpath(PROFILES)


def profile_path(name: str, kernels: str | None = None):
    """Where the shipped profile of catalog device ``name`` lives (it may not exist): the default
    one, or with ``kernels`` (an engine of ``ENGINE_KERNELS``) the one fitted on that engine's kernels."""
    folder = _profiles_dir() if kernels is None else _profiles_dir().joinpath(kernels)
    return folder.joinpath(f"{name}.yaml")


def parse_profile_yaml(text: str, origin: object) -> DeviceProfile:
    """A profile file, validated: a missing provenance field is one line naming the file and field."""
    data = _load_mapping(text, origin)
    try:
        return DeviceProfile.model_validate(data)
    except ValidationError as err:
        raise format_validation_error(origin, err) from None


@functools.lru_cache(maxsize=None)
def load_profile(name: str, kernels: str | None = None) -> DeviceProfile | None:
    """The shipped profile of catalog device ``name`` (with ``kernels``: the one fitted on that
    engine's kernels), or None where none is shipped."""
    path = profile_path(name, kernels)
    if not path.is_file():
        return None
    origin = f"<builtin>/{_DATA}/{PROFILES}/{kernels + '/' if kernels else ''}{name}.yaml"
    profile = parse_profile_yaml(path.read_text(encoding="utf-8"), origin)
    if profile.device != name:
        raise ConfigError(origin, "device", f"names '{profile.device}', expected '{name}' (the file name)")
    if profile.provenance.framework != kernels:
        raise ConfigError(origin, "provenance.framework",
                          f"is '{profile.provenance.framework}', expected '{kernels}' (the folder)")
    return profile


def engine_profile_devices(kernels: str) -> list[str]:
    """Catalog devices that ship a profile fitted on engine ``kernels``' own kernels."""
    return [n for n in builtin_names() if profile_path(n, kernels).is_file()]


@functools.lru_cache(maxsize=None)
def _load_builtin(name: str, efficiency: str = "calibrated") -> Device:
    path = _data_dir().joinpath(f"{name}.yaml")
    spec = parse_hardware_yaml(path.read_text(encoding="utf-8"), f"<builtin>/{name}.yaml")
    if efficiency in ENGINE_KERNELS:
        profile = load_profile(name, efficiency)
        if profile is None:
            have = engine_profile_devices(efficiency)
            raise InfersimError(f"hardware '{name}@{efficiency}': {name}'s kernels were not measured under "
                                f"{ENGINE_TITLES[efficiency]}, so it has no {efficiency} profile; devices with "
                                f"one: {', '.join(have) or 'none'} (or use '{name}' for its default profile)")
    else:
        profile = load_profile(name) if efficiency == "calibrated" else None
    if profile is None:
        return device_from_spec(spec, SPEC_ONLY)
    return device_from_spec(spec.model_copy(update={"efficiency": profile.efficiency}), profile.basis)


def load_hardware_file(path: str | Path, efficiency: str | None = None) -> Device:
    """A device YAML. Its efficiency section is used as written (basis: the file), or the generic
    spec-sheet defaults with ``efficiency="spec"``."""
    path = Path(path)
    if efficiency in ENGINE_KERNELS:
        raise InfersimError(f"{path}: efficiency '{efficiency}' picks a shipped profile of a catalog device; "
                            "a device file carries its own efficiency section ('calibrated') or none ('spec')")
    spec = parse_hardware_yaml(read_text(path), path)
    if efficiency == "spec":
        return device_from_spec(spec.model_copy(update={"efficiency": EfficiencySpec()}), SPEC_ONLY)
    return device_from_spec(spec, f"device file {path.name}: {spec.efficiency.source}")


def is_file_reference(text: str) -> bool:
    """Whether a hardware reference names a YAML file rather than a catalog device."""
    return text.endswith((".yaml", ".yml")) or "/" in text


def starting_device(name_or_path: str) -> Device:
    """What a calibration starts from: a catalog name's spec-sheet model (``NAME@calibrated``: its
    profile), a device file as written."""
    text = str(name_or_path)
    return get_device(text, efficiency=None if is_file_reference(split_efficiency(text)[0]) else "spec")


def split_efficiency(text: str) -> tuple[str, str | None]:
    """``"h100-sxm@spec"`` -> ``("h100-sxm", "spec")``; a name without ``@`` -> ``(name, None)``."""
    if "@" in text and not text.endswith((".yaml", ".yml")):
        base, _, choice = text.rpartition("@")
        return base, check_efficiency_choice(choice, f"hardware '{text}'")
    return text, None


def with_efficiency_choice(name: str, efficiency: str | None) -> str:
    """``name`` with ``@efficiency`` appended (None: unchanged; an ``@`` already there wins)."""
    if efficiency is None or split_efficiency(str(name))[1] is not None:
        return name
    return f"{name}@{check_efficiency_choice(efficiency)}"


def get_device(name_or_path: str | Device, efficiency: str | None = None) -> Device:
    """A device by catalog name (case-insensitive) or by path to a YAML file.

    A catalog device comes with its shipped profile (calibrated, or transferred from the
    nearest measured device); ``efficiency="spec"`` or the name ``NAME@spec`` gives the
    spec-sheet-only model. :attr:`Device.basis` says which.
    """
    if isinstance(name_or_path, Device):
        return name_or_path
    text, suffix = split_efficiency(str(name_or_path))
    choice = check_efficiency_choice(suffix or efficiency)
    if is_file_reference(text):
        return load_hardware_file(text, choice if (suffix or efficiency) else None)
    key = text.lower()
    names = builtin_names()
    if key not in names:
        raise unknown_name_error("hardware", text, names)
    return _load_builtin(key, choice)
