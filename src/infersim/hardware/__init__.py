"""Hardware catalog: device specs (YAML, validated) and their SI-unit hot-path view."""

from .catalog import builtin_names, get_device, load_hardware_file
from .device import Device, Link
from .schema import HardwareSpec

__all__ = ["Device", "HardwareSpec", "Link", "builtin_names", "get_device", "load_hardware_file"]
