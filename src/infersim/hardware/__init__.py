"""Hardware catalog: device specs (YAML, validated) and their SI-unit hot-path view.

Names are imported from their submodules on first use (:mod:`infersim.lazy`)."""

from ..lazy import lazy_exports

_EXPORTS = {
    "builtin_names": ".catalog", "get_device": ".catalog", "load_hardware_file": ".catalog",
    "Device": ".device", "Link": ".device", "HardwareSpec": ".schema",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = ["Device", "HardwareSpec", "Link", "builtin_names", "get_device", "load_hardware_file"]
