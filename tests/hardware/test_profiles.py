"""Shipped device profiles: every catalog device has one, it is what a catalog name loads by
default, the spec-sheet model stays one word away, and a broken profile is a one-line error."""

from __future__ import annotations

import re

import pytest
import yaml

from infersim.errors import ConfigError, InfersimError
from infersim.hardware import builtin_names, get_device
from infersim.hardware.catalog import load_profile, parse_profile_yaml, profile_path
from infersim.hardware.profile import SPEC_ONLY

#: catalog devices with measured kernels in aiconfigurator-core 0.12.0 (systems/data/<device>)
MEASURED = ["a100-sxm-80gb", "b200", "gb200", "h100-sxm", "h200", "l40s"]
NAMES = builtin_names()


def test_every_catalog_device_ships_a_profile():
    assert [n for n in NAMES if not profile_path(n).is_file()] == []


@pytest.mark.parametrize("name", NAMES)
def test_profile_basis_and_provenance(name):
    profile = load_profile(name)
    p = profile.provenance
    assert profile.device == name
    if name in MEASURED:
        assert p.basis == "calibrated" and p.transferred_from is None
        assert p.data == "aiconfigurator-core"
        assert set(p.fit_mdape) <= {"gemm", "attention", "mla", "moe", "collective"}
        assert {"gemm", "attention", "collective"} <= set(p.fit_mdape)
        assert p.check is not None and set(p.check.mdape) <= set(p.fit_mdape)
        assert get_device(name).basis == f"calibrated on aiconfigurator-core {p.version} ({p.rows:,} rows, {p.date})"
    else:
        assert p.basis == "transferred" and p.transferred_from in MEASURED
        scaled = f", scaled by {p.scaled_by}" if p.scaled_by else ""
        assert get_device(name).basis == f"transferred from {p.transferred_from}{scaled}"
        assert profile.efficiency.source.startswith(f"transferred from {p.transferred_from}")
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", p.date)
    assert 0 < p.rows <= p.rows_measured
    assert all(0 <= v < 1 for v in p.fit_mdape.values())


@pytest.mark.parametrize("name", NAMES)
def test_profile_replaces_only_the_efficiency_section(name):
    calibrated, spec = get_device(name), get_device(name, efficiency="spec")
    assert spec.basis == SPEC_ONLY
    assert calibrated.efficiency == load_profile(name).efficiency
    assert calibrated.efficiency != spec.efficiency
    assert calibrated.spec.model_copy(update={"efficiency": spec.efficiency}) == spec.spec
    for attr in ("dense_flops_per_s", "memory_bytes", "memory_bandwidth_bytes_per_s", "scale_up", "tdp_w"):
        assert getattr(calibrated, attr) == getattr(spec, attr)


def test_spec_model_by_name_suffix_and_by_argument():
    assert get_device("h100-sxm@spec") is get_device("h100-sxm", efficiency="spec")
    assert get_device("h100-sxm@calibrated") is get_device("h100-sxm")
    # the suffix wins over the argument (a study may list both models of one device)
    assert get_device("h100-sxm@spec", efficiency="calibrated").basis == SPEC_ONLY


def test_unknown_efficiency_model_is_a_clear_error():
    with pytest.raises(InfersimError, match="unknown efficiency model .tuned.; expected one of calibrated, vllm, sglang, trtllm-1.0, spec"):
        get_device("h100-sxm@tuned")
    with pytest.raises(InfersimError, match="unknown efficiency model"):
        get_device("h100-sxm", efficiency="measured")


def test_device_file_keeps_its_own_efficiency_unless_spec_is_asked(tmp_path):
    spec = get_device("h200", efficiency="spec").spec
    path = tmp_path / "mine.yaml"
    data = spec.model_dump(mode="json", exclude_none=True)
    data["efficiency"]["core"]["kernel_overhead_us"] = 7.5  # the sectioned layout (hardware/efficiency.py)
    path.write_text(yaml.safe_dump(data))
    mine = get_device(str(path))
    assert mine.efficiency.kernel_overhead_us == 7.5 and mine.basis.startswith("device file mine.yaml")
    generic = get_device(f"{path}@spec")
    assert generic.basis == SPEC_ONLY and generic.efficiency.kernel_overhead_us != 7.5


@pytest.mark.parametrize("field", ["version", "data", "rows", "date", "fit_mdape"])
def test_profile_missing_a_provenance_field_names_file_and_field(field):
    data = yaml.safe_load(profile_path("h100-sxm").read_text())
    del data["provenance"][field]
    with pytest.raises(ConfigError) as info:
        parse_profile_yaml(yaml.safe_dump(data), "profiles/h100-sxm.yaml")
    msg = str(info.value)
    assert msg.startswith("profiles/h100-sxm.yaml: field 'provenance." + field + "'")
    assert "missing" in msg and "\n" not in msg


def test_transferred_profile_without_its_source_is_an_error():
    data = yaml.safe_load(profile_path("mi300x").read_text())
    del data["provenance"]["transferred_from"]
    with pytest.raises(ConfigError, match="transferred_from is required"):
        parse_profile_yaml(yaml.safe_dump(data), "profiles/mi300x.yaml")
