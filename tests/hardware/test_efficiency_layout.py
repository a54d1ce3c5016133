"""The efficiency section's two layouts: the flat one (every shipped device file, and the files
``infersim calibrate`` wrote before the sections) and the sectioned one (what it writes now) load
to the same spec; flat names read and copy the sectioned fields; mistakes name the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from infersim.errors import ConfigError
from infersim.hardware import builtin_names, get_device
from infersim.hardware.catalog import _data_dir, parse_hardware_yaml
from infersim.hardware.efficiency import FLAT_FIELDS, SECTIONS, EfficiencySpec

GOLDEN = Path(__file__).resolve().parent.parent / "data" / "golden"
FLAT_PROFILES = sorted(GOLDEN.glob("*-flat.yaml"))


def _sectioned_text(spec) -> str:
    return yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False)


def _flat_keys(text: str) -> set[str]:
    return set((yaml.safe_load(text).get("efficiency") or {}))


@pytest.mark.parametrize("name", builtin_names())
def test_every_shipped_device_file_is_flat_and_loads_the_same_in_sections(name):
    text = _data_dir().joinpath(f"{name}.yaml").read_text()
    keys = _flat_keys(text)
    assert keys and not keys & set(SECTIONS)  # the flat layout, as shipped
    spec = get_device(name).spec
    again = parse_hardware_yaml(_sectioned_text(spec), "sectioned.yaml")
    assert again == spec
    assert set(yaml.safe_load(_sectioned_text(spec))["efficiency"]) == set(SECTIONS) | {"source"}


@pytest.mark.parametrize("path", FLAT_PROFILES, ids=[p.name for p in FLAT_PROFILES])
def test_profiles_written_by_the_flat_serializer_load_unchanged(path):
    """Files ``infersim calibrate`` wrote before the sections (kept in tests/data/golden): every
    key is flat, every value lands in its section, and the sectioned rewrite is the same spec."""
    text = path.read_text()
    raw = yaml.safe_load(text)["efficiency"]
    assert raw and set(raw) <= set(FLAT_FIELDS) | {"source"}
    spec = parse_hardware_yaml(text, path)
    eff = spec.efficiency
    for key, value in raw.items():
        if key == "source":
            assert eff.source == value
            continue
        section, short = FLAT_FIELDS[key]
        got = getattr(getattr(eff, section), short)
        if key == "collective_bandwidth_fraction_by_group_size":
            value = {int(k): v for k, v in value.items()}
        if key.startswith("gemm_tiles"):
            got = {k: [list(t) for t in v] for k, v in got.items()} if isinstance(got, dict) else [list(t) for t in got]
        assert got == value, key
    assert parse_hardware_yaml(_sectioned_text(spec), "sectioned.yaml") == spec


def test_flat_names_read_and_copy_the_sections():
    eff = EfficiencySpec(gemm_tiles=[(64, 64)], decode_attention_cta_us_by_dtype={"fp8": 2.0},
                         collectives={"latency_us": 3.0})
    assert eff.gemm_tiles == eff.gemm.tiles == [(64, 64)]
    assert eff.decode_attention_cta_us_by_dtype is eff.decode.cta_us_by_dtype
    assert eff.collective_latency_us == 3.0
    flat = eff.flat()
    assert set(flat) == set(FLAT_FIELDS) | {"source"} and len(FLAT_FIELDS) == 67
    copied = eff.model_copy(update={"collective_overhead_us": 7.0, "gemm_k_half": 12.0})
    assert copied.collectives.overhead_us == 7.0 and copied.collectives.latency_us == 3.0
    assert copied.gemm.k_half == 12.0 and copied.gemm.tiles == [(64, 64)]
    assert eff.collectives.overhead_us is None  # frozen: the original is untouched
    with pytest.raises(KeyError, match="gemm_tile_size"):
        eff.model_copy(update={"gemm_tile_size": 1})
    with pytest.raises(AttributeError):
        eff.gemm_tile_size  # noqa: B018


def test_layouts_mix_and_mistakes_name_the_key():
    base = yaml.safe_load(_data_dir().joinpath("h100-sxm.yaml").read_text())
    base["efficiency"] = {"kernel_overhead_us": 5.0, "gemm": {"k_half": 10.0}, "source": "mixed layout"}
    spec = parse_hardware_yaml(yaml.safe_dump(base), "mixed.yaml")
    assert spec.efficiency.core.kernel_overhead_us == 5.0 and spec.efficiency.gemm.k_half == 10.0
    base["efficiency"] = {"gemm_k_half": 3.0, "gemm": {"k_half": 10.0}, "source": "twice"}
    with pytest.raises(ConfigError, match=r"twice\.yaml.*'gemm_k_half' is given twice") as err:
        parse_hardware_yaml(yaml.safe_dump(base), "twice.yaml")
    assert "\n" not in str(err.value)
    base["efficiency"] = {"gemm_k_halves": 3.0, "source": "unknown key"}
    with pytest.raises(ConfigError, match=r"bad\.yaml.*efficiency\.gemm_k_halves"):
        parse_hardware_yaml(yaml.safe_dump(base), "bad.yaml")
    base["efficiency"] = {"decode": {"parallel_sharpness_by_dtype": {"fp8": 20.0}}, "source": "range"}
    with pytest.raises(ConfigError, match=r"efficiency\.decode\.parallel_sharpness_by_dtype.*\[1, 16\].*20"):
        parse_hardware_yaml(yaml.safe_dump(base), "range.yaml")
    base["efficiency"] = {"decode_attention_parallel_sharpness_by_dtype": {"fp8": 20.0}, "source": "range"}
    with pytest.raises(ConfigError, match=r"efficiency\.decode\.decode_attention_parallel_sharpness_by_dtype"):
        parse_hardware_yaml(yaml.safe_dump(base), "range.yaml")
