"""The shared registering decorator (infersim.registry.registrar) used by every pluggable family."""

import pytest

from infersim.fidelity.stages import CALIBRATION_STAGES, CalibrationStage
from infersim.registry import registrar
from infersim.runtime import RUNTIMES


def test_registrar_adds_each_class_under_its_key_once():
    registry: dict = {}
    register = registrar(registry, "key", "widget")

    @register
    class A:
        key = "a"

    assert registry == {"a": A}
    with pytest.raises(ValueError, match="widget key 'a' is empty or registered twice"):
        register(type("B", (), {"key": "a"}))
    with pytest.raises(ValueError, match="empty or registered twice"):
        register(type("C", (), {"key": ""}))
    assert registry == {"a": A}  # refused classes leave it as it was


def test_registrar_can_store_instances():
    registry: dict = {}

    @registrar(registry, "name", "stage", instance=True)
    class S:
        name = "s"

    assert isinstance(registry["s"], S)


def test_the_families_registries_are_keyed_by_their_own_attribute():
    assert all(cls.name == key for key, cls in RUNTIMES.items())
    assert all(isinstance(stage, CalibrationStage) and stage.name == key for key, stage in CALIBRATION_STAGES.items())
