import dataclasses

import pytest

from infersim.hardware import get_device
from infersim.hardware.device import Device


def ideal(device: Device, **changes) -> Device:
    """The device with an ideal roofline: full peak, no ramp-up, no launch overhead."""
    update = dict(compute_max_fraction=1.0, compute_half_flops=0.0, memory_max_fraction=1.0,
                  memory_half_bytes=0.0, kernel_overhead_us=0.0, collective_bandwidth_fraction=1.0)
    update.update(changes)
    eff = device.efficiency.model_copy(update=update)
    return dataclasses.replace(device, efficiency=eff)


@pytest.fixture
def h100():
    # the spec-sheet model: the hand computations here start from its plain roofline
    return get_device("h100-sxm", efficiency="spec")


@pytest.fixture
def ideal_h100(h100):
    return ideal(h100)
