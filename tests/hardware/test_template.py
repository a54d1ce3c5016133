"""Accelerator templates: hand-computed formulas, the derived device in use, and bad input."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from infersim.cli.main import cli
from infersim.errors import ConfigError
from infersim.hardware import get_device
from infersim.hardware.template import (derive, die_yield, dies_per_wafer, fused_attention_footprint_bytes,
                                        gemm_cycles_output_stationary, parse_template, systolic_fold_cycles)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "accelerators"


def _template(name="ga100"):
    return yaml.safe_load((EXAMPLES / f"{name}.yaml").read_text())


def _write(tmp_path, data):
    path = tmp_path / "chip.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_peak_is_cores_times_arrays_times_clock():
    spec, report = derive(parse_template(_template("ga100"), "ga100"))
    # 108 enabled SMs x 4 tensor cores x 16 x 16 MACs x 2 FLOP x 1.41 GHz
    assert spec.compute.dense_tflops["bf16"] == pytest.approx(108 * 4 * 16 * 16 * 2 * 1.41e9 / 1e12)
    assert spec.compute.dense_tflops["int8"] == pytest.approx(2 * 108 * 4 * 16 * 16 * 2 * 1.41e9 / 1e12)
    # the datasheet's 312 TFLOP/s bf16 and 624 TOPS int8
    assert report.peak_tflops["bf16"] == pytest.approx(312, rel=0.001)
    # vector fp32: 108 x 64 lanes x 2 x 1.41 GHz = 19.5 TFLOP/s (datasheet)
    assert report.peak_tflops["fp32"] == pytest.approx(19.49, rel=0.001)


def test_memory_is_stacks_times_per_stack_figures():
    _, report = derive(parse_template(_template("ga100"), "ga100"))
    assert report.memory_gb_per_s == pytest.approx(5 * 409.6 * 0.9956)
    assert report.memory_gib == 5 * 16


def test_dies_per_wafer_standard_formula():
    # 100 mm2 on 300 mm: pi 150^2 / 100 - pi 300 / sqrt(200) = 706.858 - 66.643
    assert dies_per_wafer(100.0) == pytest.approx(640.215, abs=1e-3)
    assert dies_per_wafer(826.0) == pytest.approx(math.pi * 22500 / 826 - math.pi * 300 / math.sqrt(1652))


def test_negative_binomial_yield():
    # 1 cm2 at 0.1 defects/cm2, alpha 3: (1 + 0.1/3)^-3 = 1 / 1.103370
    assert die_yield(100.0, 0.1) == pytest.approx(0.906314, abs=1e-6)
    assert die_yield(100.0, 0.0) == 1.0
    # Poisson limit exp(-A D0) for large alpha
    assert die_yield(200.0, 0.2, alpha=1e6) == pytest.approx(math.exp(-0.4), rel=1e-5)


def test_systolic_fold_cycles_by_hand():
    assert systolic_fold_cycles(4, 4, 10) == 2 * 4 + 4 + 10 - 2 == 20
    # 10 x 8 @ 8 x 8 on a 4 x 4 array: ceil(10/4) ceil(8/4) = 6 output tiles of 2*4 + 4 + 8 - 2 = 18
    # cycles; 640 useful MACs of 108 x 16 slots
    cycles, util = gemm_cycles_output_stationary(10, 8, 8, 4, 4)
    assert cycles == 108
    assert util == pytest.approx(640 / (108 * 16))


def test_fused_attention_footprint_is_linear_in_sequence():
    one = fused_attention_footprint_bytes(64, 4096, 128, 64, 2)
    assert one == 2 * (2 * 64 * 128 + 64 * 4096 + 2 * 64 * 128) == 589_824
    two = fused_attention_footprint_bytes(64, 8192, 128, 64, 2)
    assert two - one == 2 * 64 * 4096  # one more row-block of logits, nothing quadratic


def test_area_is_the_sum_of_its_components_and_matrix_area_scales_with_cores():
    base = _template("ga100")
    _, r1 = derive(parse_template(base, "a"))
    assert r1.die_area_mm2 == pytest.approx(sum(r1.area_mm2.values()))
    doubled = json.loads(json.dumps(base))
    doubled["template"]["cores"]["count"] = 256
    doubled["template"]["cores"]["enabled"] = 216
    _, r2 = derive(parse_template(doubled, "b"))
    assert r2.area_mm2["matrix units"] == pytest.approx(2 * r1.area_mm2["matrix units"])
    assert r2.area_mm2["memory phy+ctrl"] == r1.area_mm2["memory phy+ctrl"]
    # a bigger die: fewer dies per wafer, lower yield, dearer good die
    assert r2.dies_per_wafer < r1.dies_per_wafer and r2.yield_fraction < r1.yield_fraction
    assert r2.die_usd > 2 * r1.die_usd


def test_die_cost_is_wafer_cost_over_good_dies():
    _, r = derive(parse_template(_template("ga100"), "a"))
    assert r.die_usd == pytest.approx(9346 / (dies_per_wafer(r.die_area_mm2) * die_yield(r.die_area_mm2, 0.09)))


def test_template_file_is_a_device_everywhere(tmp_path):
    path = _write(tmp_path, _template("gh100"))
    device = get_device(str(path))
    assert device.category == "accelerator"
    assert device.peak_flops("fp8") == pytest.approx(2 * 132 * 4 * 16 * 32 * 2 * 1.83e9)
    assert device.memory_bytes == 80 * 2**30
    res = CliRunner().invoke(cli, ["estimate", "--model", "llama-3.1-8b", "--hardware", str(path), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["tpot_s"] > 0


def test_derive_command_prints_area_and_cost(tmp_path):
    res = CliRunner().invoke(cli, ["hardware", "derive", str(EXAMPLES / "ga100.yaml"), "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["total_usd"] == pytest.approx(data["die_usd"] + data["memory_usd"])
    assert data["die_area_mm2"] == pytest.approx(sum(data["area_mm2"].values()))


@pytest.mark.parametrize("edit, field", [
    (lambda t: t["cores"].update(count=0), "template.cores.count"),
    (lambda t: t.update(process_node="n2"), "template.process_node"),
    (lambda t: t["memory"].update(technology="hbm9"), "template.memory.technology"),
    (lambda t: t.update(budget={"max_area_mm2": 300}), "template.budget"),
    (lambda t: t["cores"].update(enabled=999), "template.cores"),
])
def test_bad_templates_are_one_line_errors(tmp_path, edit, field):
    data = _template("ga100")
    edit(data["template"])
    path = _write(tmp_path, data)
    with pytest.raises(ConfigError) as info:
        get_device(str(path))
    assert str(path) in str(info.value) and f"'{field}" in str(info.value)
    res = CliRunner().invoke(cli, ["estimate", "--hardware", str(path)])
    assert res.exit_code != 0 and "Traceback" not in res.output


def test_over_budget_derive_exits_1_and_says_why(tmp_path):
    data = _template("ga100")
    data["template"]["budget"] = {"max_tdp_w": 100}
    res = CliRunner().invoke(cli, ["hardware", "derive", str(_write(tmp_path, data))])
    assert res.exit_code == 1
    assert "TDP" in res.output and "budget" in res.output


def test_template_gemm_time_is_the_systolic_fold_count(tmp_path):
    """One 16 x 16 array at 1 GHz: a 100 x 64 @ 64 x 40 GEMM is ceil(100/16) ceil(40/16) = 21 output
    tiles, each 2 R + C + k - 2 = 32 + 16 + 64 - 2 = 110 cycles: 2,310 cycles = 2.31 us."""
    from infersim.perf.roofline import compute_time_s

    data = _template("ga100")
    data["template"].update(clock_ghz=1.0)
    data["template"]["cores"].update(count=1, enabled=1, lanes=1, array_rows=16, array_cols=16)
    device = get_device(str(_write(tmp_path, data)))
    m, k, n = 100, 64, 40
    t = compute_time_s(np.array([2.0 * m * n * k]), device.peak_flops("bf16"), device,
                       gemm_m=np.array([m]), gemm_n=np.array([n]), gemm_k=np.array([k]))
    assert t[0] == pytest.approx(21 * 110 / 1e9)
    assert t[0] == pytest.approx(gemm_cycles_output_stationary(m, k, n, 16, 16)[0] / 1e9)


def test_tdp_is_static_power_plus_full_load_dynamic_power(tmp_path):
    """One 16 x 16 array at 1 GHz on N7 with one HBM2e stack: 256 MACs x 1e9 x 1.804 pJ = 0.4618 W of
    MACs, 409.6 GB/s x 8 x 3.9 pJ = 12.78 W of DRAM, plus 0.0666 W per mm2 of die (the technology
    table's measured-idle figure); idle power is that static part alone."""
    from infersim.hardware.template import technology

    data = _template("ga100")
    data["template"].update(clock_ghz=1.0)
    data["template"]["cores"].update(count=1, enabled=1, lanes=1, array_rows=16, array_cols=16, vector_lanes=0)
    data["template"]["memory"].update(stacks=1, enabled=1, speed_fraction=1.0)
    _, report = derive(parse_template(data, "t"))
    comp = technology().components
    assert (comp.tensor_mac_pj, comp.static_w_per_mm2) == (1.804, 0.0666)
    static = 0.0666 * report.die_area_mm2
    assert report.idle_w == pytest.approx(static)
    assert report.tdp_w == pytest.approx(static + 256 * 1e9 * 1.804e-12 + 409.6e9 * 8 * 3.9e-12)


@pytest.mark.parametrize("tech,units,gb_per_s,gib", [
    ("gddr7", 12, 12 * 32 * 32 / 8, 12 * 2),          # 12 x32 devices at 32 Gb/s: 1,536 GB/s, 24 GiB
    ("lpddr5x", 8, 8 * 8.533 * 64 / 8, 8 * 16),       # 8 x64 packages at 8,533 MT/s: 546 GB/s, 128 GiB
    ("ddr5", 12, 12 * 6.4 * 32 / 8, 12 * 32),         # 12 sub-channels of DDR5-6400: 307 GB/s, 384 GiB
])
def test_commodity_memory_technologies_by_pin_rate_and_width(tech, units, gb_per_s, gib):
    from infersim.hardware.template import technology

    data = _template("ga100")
    data["template"]["memory"] = {"technology": tech, "stacks": units}
    _, report = derive(parse_template(data, "t"))
    mem = technology().memory[tech]
    assert report.memory_gb_per_s == pytest.approx(gb_per_s)
    assert report.memory_gib == gib
    assert report.memory_usd == pytest.approx(gib * mem.usd_per_gib)
    assert report.pj_per_dram_byte == pytest.approx(8 * mem.pj_per_bit)
    # PHYs do not scale with the node; a GA100 with these units instead of 6 HBM2e stacks
    _, hbm = derive(parse_template(_template("ga100"), "t"))
    assert report.area_mm2["memory phy+ctrl"] == pytest.approx(units * (mem.phy_mm2 + mem.controller_mm2))
    assert report.area_mm2["memory phy+ctrl"] != hbm.area_mm2["memory phy+ctrl"]


@pytest.mark.parametrize("path", sorted(p.name for p in EXAMPLES.glob("*.yaml")
                                        if "template" in yaml.safe_load(p.read_text())))
def test_every_example_template_is_a_device_within_the_reticle(path):
    device = get_device(str(EXAMPLES / path))
    assert device.spec.array is not None and device.spec.array.cores >= 1
    _, report = derive(parse_template(_template(path.removesuffix(".yaml")), path))
    assert not report.violations and report.die_area_mm2 < 858
