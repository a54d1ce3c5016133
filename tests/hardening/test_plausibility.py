"""Device plausibility ranges, model size limits, MoE and context checks."""

from __future__ import annotations

import copy
import json

import pytest
import yaml

from infersim.errors import ConfigError, InfersimError
from infersim.hardware.catalog import _data_dir, builtin_names, parse_hardware_yaml
from infersim.hardware.plausibility import RANGES
from infersim.models import get_model
from infersim.models.catalog import raw_config
from infersim.models.hf import MAXIMA, parse_hf_config
from infersim.perf.estimate import estimate
from infersim.hardware import get_device

BASE = yaml.safe_load(_data_dir().joinpath("h100-sxm.yaml").read_text(encoding="utf-8"))


def device_error(mutate) -> ConfigError:
    data = copy.deepcopy(BASE)
    mutate(data)
    with pytest.raises(ConfigError) as info:
        parse_hardware_yaml(yaml.safe_dump(data), "dev.yaml")
    return info.value


def test_every_bundled_device_is_plausible():
    for name in builtin_names():
        get_device(name)


@pytest.mark.parametrize("field, value, where", [
    (("memory", "bandwidth_gb_per_s"), 1e-300, None),  # the audit's example
    (("memory", "bandwidth_gb_per_s"), 1e300, None),
    (("compute", "dense_tflops", "bf16"), 1e9, None),
    # 5 s per kernel: seconds written as microseconds; the error names the field's section
    (("efficiency", "kernel_overhead_us"), 5e6, "efficiency.core.kernel_overhead_us"),
    (("cost", "usd_per_hour"), 1e-9, None),
    (("scale_up", "latency_us"), 1e7, None),
])
def test_implausible_figures_are_refused_with_the_range_and_its_reason(field, value, where):
    def mutate(d):
        node = d
        for key in field[:-1]:
            node = node[key]
        node[field[-1]] = value

    e = device_error(mutate)
    assert e.field == (where or ".".join(field)) and "outside" in e.problem and "check the unit" in e.problem


def test_idle_power_above_tdp_is_refused():
    e = device_error(lambda d: d["power"].update(idle_w=d["power"]["tdp_w"] + 1))
    assert e.field == "power.idle_w" and "exceeds the TDP" in e.problem


def test_ranges_cover_what_is_built():
    # each range holds the real devices' figures with margin: the bundled catalog, and the
    # published extremes the comments name (WSE-3: 125 PFLOP/s sparse FP16, 21 PB/s SRAM, 44 GB)
    bounds = {suffix: (lo, hi) for suffix, lo, hi, _ in RANGES}
    assert bounds["tflops"][1] >= 125_000 and bounds["_gb_per_s"][1] >= 21e6 and bounds["_mb"][1] >= 44_000


def _config(**changes):
    data = raw_config("llama-3.1-8b")
    data.update(changes)
    return data


def test_absurd_layer_counts_are_refused_not_looped_over():
    with pytest.raises(ConfigError) as info:
        parse_hf_config(_config(num_hidden_layers=1_000_000_000), "c.json", "m")
    assert info.value.field == "num_hidden_layers" and f"{MAXIMA['num_hidden_layers']:,}" in info.value.problem
    parse_hf_config(_config(num_hidden_layers=MAXIMA["num_hidden_layers"]), "c.json", "m")


def test_a_moe_config_with_zero_experts_is_refused():
    data = raw_config("mixtral-8x7b")
    data["num_local_experts"] = 0
    with pytest.raises(ConfigError) as info:
        parse_hf_config(data, "c.json", "m")
    assert info.value.field == "num_local_experts" and "at least 1 expert" in info.value.problem


def test_prompt_plus_output_beyond_the_context_is_refused():
    model = get_model("llama-2-7b")  # max_position_embeddings 4096 (its published config.json)
    assert model.max_position_embeddings == 4096
    device = get_device("h100-sxm")
    estimate(model, device, batch=1, input_tokens=4000, output_tokens=96)  # exactly 4096: fine
    with pytest.raises(InfersimError, match="4,097 tokens .* context of 4,096"):
        estimate(model, device, batch=1, input_tokens=4000, output_tokens=97)


def test_a_simulation_too_large_for_memory_is_refused_before_it_starts():
    from infersim.serving.memory_guard import MARGIN, check_fits_in_memory

    check_fits_in_memory(1000, 3500, "s.yaml", available=int(1000 * 3500 * MARGIN))  # exactly fits
    with pytest.raises(ConfigError) as info:
        check_fits_in_memory(1001, 3500, "s.yaml", available=int(1000 * 3500 * MARGIN))
    assert info.value.field == "workload.requests" and "run at most ~1,000 requests" in info.value.problem
