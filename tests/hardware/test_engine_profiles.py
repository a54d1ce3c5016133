"""Profiles fitted on one serving engine's own kernels (``profiles/<engine>/``, ``NAME@vllm``):
shipped for every device whose kernels that engine's tables measured, none elsewhere, loaded by
name, and a wrong or missing one is a one-line error."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from infersim.errors import ConfigError, InfersimError
from infersim.hardware import catalog, get_device
from infersim.hardware.catalog import engine_profile_devices, load_profile, profile_path
from infersim.hardware.choices import EFFICIENCY_CHOICES, ENGINE_KERNELS
from infersim.serving.scenario import validate_scenario

#: catalog devices with vLLM and SGLang kernel tables (gemm, attention, moe, custom all-reduce) in
#: aiconfigurator-core 0.12.0 (systems/data/<device>/<op>/<framework>/); h100-pcie has none. TensorRT-LLM
#: 1.0's tables in aiconfigurator 0.4.0 (systems/data/<device>/trtllm/<version>/): 1.0.0 for a100_sxm and
#: l40s, 1.0.0rc3 for h100_sxm and h200_sxm, 1.0.0rc6 for b200_sxm and gb200_sxm
MEASURED = {"vllm": ["a100-sxm-80gb", "b200", "gb200", "h100-sxm", "h200", "l40s"],
            "sglang": ["a100-sxm-80gb", "b200", "gb200", "h100-sxm", "h200", "l40s"],
            "trtllm-1.0": ["a100-sxm-80gb", "b200", "gb200", "h100-sxm", "h200", "l40s"]}
#: the data package and engine title each kernel set's basis line names
DATA = {"vllm": ("aiconfigurator-core", "vLLM"), "sglang": ("aiconfigurator-core", "SGLang"),
        "trtllm-1.0": ("aiconfigurator", "TensorRT-LLM 1.0")}


def test_engine_choices_are_efficiency_models():
    assert set(MEASURED) == set(ENGINE_KERNELS)
    assert set(ENGINE_KERNELS) < set(EFFICIENCY_CHOICES)


@pytest.mark.parametrize("engine", ENGINE_KERNELS)
def test_every_device_the_engine_measured_ships_its_profile(engine):
    assert engine_profile_devices(engine) == MEASURED[engine]


@pytest.mark.parametrize("engine", ENGINE_KERNELS)
@pytest.mark.parametrize("name", MEASURED["vllm"])
def test_engine_profile_loads_by_name_with_its_basis(engine, name):
    profile = load_profile(name, engine)
    p = profile.provenance
    assert (p.basis, p.framework, p.transferred_from) == ("calibrated", engine, None)
    assert p.command == f"infersim calibrate --all --write-profiles --framework {engine}"
    data, title = DATA[engine]
    assert p.data == data and (p.version == "0.4.0") == (engine == "trtllm-1.0")
    device = get_device(f"{name}@{engine}")
    assert device is get_device(name, efficiency=engine)
    assert device.basis == f"calibrated on {data} {p.version} {title} kernels ({p.rows:,} rows, {p.date})"
    assert device.efficiency == profile.efficiency != get_device(name).efficiency
    # only the efficiency section differs from the default profile's device
    assert device.spec.model_copy(update={"efficiency": None}) == get_device(name).spec.model_copy(
        update={"efficiency": None})


def test_a_device_the_engine_did_not_measure_is_a_clear_error():
    with pytest.raises(InfersimError) as info:
        get_device("mi300x@vllm")
    msg = str(info.value)
    assert msg.startswith("hardware 'mi300x@vllm': mi300x's kernels were not measured under vLLM")
    assert "a100-sxm-80gb" in msg and "'mi300x'" in msg and "\n" not in msg


def test_a_device_file_takes_no_engine_profile(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(get_device("h200", efficiency="spec").spec.model_dump(mode="json",
                                                                                      exclude_none=True)))
    with pytest.raises(InfersimError, match="mine.yaml: efficiency 'vllm' picks a shipped profile"):
        get_device(f"{path}@vllm")


def test_a_profile_in_the_wrong_engine_folder_is_an_error(tmp_path, monkeypatch):
    shutil.copytree(Path(str(profile_path("h100-sxm"))).parent, tmp_path, dirs_exist_ok=True)
    shutil.copy(Path(str(profile_path("h100-sxm", "vllm"))), tmp_path / "sglang" / "h100-sxm.yaml")
    monkeypatch.setattr(catalog, "_profiles_dir", lambda: tmp_path)
    catalog.load_profile.cache_clear()
    try:
        with pytest.raises(ConfigError, match=r"sglang/h100-sxm.yaml: field 'provenance.framework'.*"
                                              r"is 'vllm', expected 'sglang'"):
            load_profile("h100-sxm", "sglang")
    finally:
        catalog.load_profile.cache_clear()


def test_a_scenario_names_an_engine_profile_or_gets_a_one_line_error():
    base = {"model": "llama-3.1-8b", "hardware": "h100-sxm",
            "workload": {"requests": 4, "arrival": {"process": "offline"},
                         "input_tokens": {"dist": "fixed", "value": 128},
                         "output_tokens": {"dist": "fixed", "value": 8}}}
    assert validate_scenario({**base, "efficiency": "vllm"}, "s.yaml").efficiency == "vllm"
    with pytest.raises(ConfigError) as info:
        validate_scenario({**base, "efficiency": "vlm"}, "s.yaml")
    assert str(info.value).startswith("s.yaml: field 'efficiency': unknown efficiency model 'vlm'")


@pytest.mark.parametrize("engine", ENGINE_KERNELS)
@pytest.mark.parametrize("name", MEASURED["vllm"])
def test_a_stage_the_engine_did_not_measure_keeps_the_default_profiles_fit(engine, name):
    """vLLM's tables have no MLA kernels (aiconfigurator-core 0.12.0 has only whole MLA modules for it),
    nor SGLang's on the A100 (mla_bmm only): those profiles keep the default profile's MLA section
    rather than the spec sheet's generic one. TensorRT-LLM 1.0's tables have every stage."""
    p = load_profile(name, engine).provenance
    default = load_profile(name)
    fitted = set(p.fit_mdape)
    assert set(p.kept_from_default or []) == set(default.provenance.fit_mdape) - fitted
    assert ("mla" in (p.kept_from_default or [])) == (engine == "vllm" or (engine, name) == ("sglang", "a100-sxm-80gb"))
    mine = get_device(f"{name}@{engine}").efficiency
    for stage in p.kept_from_default or []:
        assert getattr(mine, stage) == getattr(default.efficiency, stage)


#: per engine, the (stage, dtype) pairs with default-profile values that its tables give the fit no
#: operators of, by hand from the tables: aiconfigurator-core 0.12.0 times SGLang's fused MoE with
#: block-FP8 scales only (variant fp8_block), never per-tensor FP8; aiconfigurator 0.4.0 times
#: TensorRT-LLM 1.0's kernels in float16, not bfloat16; vLLM's tables cover every dtype the default
#: profiles have (its FP8 attention terms are fitted on the decode rows over an FP8 KV cache)
DTYPES_NOT_MEASURED = {"vllm": {}, "sglang": {"moe": ["fp8"]},
                       "trtllm-1.0": {"attention": ["bf16"], "gemm": ["bf16"], "moe": ["bf16"]}}


@pytest.mark.parametrize("engine", ENGINE_KERNELS)
@pytest.mark.parametrize("name", MEASURED["vllm"])
def test_a_dtype_the_engine_did_not_measure_is_listed_with_the_default_profiles_values(engine, name):
    """Listed in the provenance, and every per-dtype term of it is the default profile's (fractions,
    costs, the GEMM tile restriction)."""
    p = load_profile(name, engine)
    want = dict(DTYPES_NOT_MEASURED[engine])
    if name == "a100-sxm-80gb" and engine == "sglang":
        want = {}  # the default A100 profile has no fp8 MoE values (no fp8 on Ampere): nothing to keep
    if (engine, name) == ("trtllm-1.0", "l40s"):
        want["moe"] = ["bf16", "fp8"]  # 1.0.0's L40S MoE table is float16 only
    assert (p.provenance.dtypes_kept_from_default or {}) == want
    default = load_profile(name).efficiency
    sections = {"attention": ("attention", "decode"), "gemm": ("core", "gemm"), "moe": ("moe",)}
    for stage, dtypes in want.items():
        for section in sections[stage]:
            for key, values in getattr(p.efficiency, section).model_dump().items():
                if key.endswith("_by_dtype"):
                    theirs = getattr(default, section).model_dump()[key]
                    for d in dtypes:
                        assert values.get(d) == theirs.get(d), (section, key, d)


def test_the_dtype_gaps_are_read_from_the_engines_tables():
    pytest.importorskip("aiconfigurator_core", reason="aiconfigurator-core (the fidelity extra) holds the tables")
    from infersim.fidelity.kernel_sets import load_kernel_set
    from infersim.fidelity.shipped import dtypes_kept_from_default

    moe = load_kernel_set("sglang", ["h100-sxm"], ["moe"])
    assert "fp8" not in set(moe.column("dtype").to_pylist())  # plain rows: per-tensor fp8 was never timed
    p = load_profile("h100-sxm", "sglang")
    table = load_kernel_set("sglang", ["h100-sxm"])
    assert dtypes_kept_from_default(table, load_profile("h100-sxm").efficiency,
                                    sorted(p.provenance.fit_mdape)) == p.provenance.dtypes_kept_from_default
