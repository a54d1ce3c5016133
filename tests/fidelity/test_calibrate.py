"""Calibration recovers known efficiency parameters from synthetic measurements, writes device
files that load back, and carries its shape to other devices."""

from __future__ import annotations

import dataclasses
import importlib.util
import math

import numpy as np
import pytest

from infersim.errors import InfersimError
from infersim.fidelity.calibrate import Param, apply_params, calibrate, round_efficiency, with_efficiency
from infersim.fidelity.devicefile import calibrated_name, device_spec_with, write_device_yaml
from infersim.fidelity.kernels import predict
from infersim.fidelity.transfer import transfer_efficiency
from infersim.hardware import get_device
from infersim.hardware.schema import EfficiencySpec
from tests.fidelity.synth import (
    TRUE_ATTENTION,
    TRUE_BLOCKS,
    TRUE_COLLECTIVE,
    TRUE_GEMM,
    TRUE_MLA,
    attention_rows,
    collective_rows,
    gemm_rows,
    mla_rows,
    rows_table,
    synthetic,
)

pytestmark = pytest.mark.skipif(importlib.util.find_spec("scipy") is None,
                                reason="calibration needs scipy (pip install 'infersim[fidelity]')")


def _fitted(cal, name: str) -> float:
    for stage in cal.stages:
        if name in stage.params:
            return stage.params[name]
    raise KeyError(name)


def _true(true: dict, name: str) -> float:
    if "." in name:
        field, key = name.split(".", 1)
        return true[field][key]
    return true[name]


def _stripped(device, fields):
    """``device`` with the named efficiency fields back at their defaults (the fit must find them)."""
    defaults = EfficiencySpec()
    return with_efficiency(device, device.efficiency.model_copy(update={f: getattr(defaults, f) for f in fields}))


@pytest.mark.parametrize("noise,rel", [(0.0, 1e-3), (0.03, 0.10)])
def test_gemm_parameters_are_recovered(noise, rel):
    table, true_dev = synthetic(gemm_rows(), TRUE_GEMM, noise=noise)
    cal = calibrate(table, get_device("h100-sxm", efficiency="spec"))  # starts from the generic defaults
    (stage,) = cal.stages
    assert stage.stage == "gemm" and stage.tile_set == "gpu"
    assert cal.efficiency.gemm_tiles == TRUE_GEMM["gemm_tiles"]
    for name in ("compute_max_fraction_by_dtype.bf16", "compute_max_fraction_by_dtype.fp8", "memory_max_fraction",
                 "gemm_k_half", "gemm_overhead_us_by_dtype.bf16", "gemm_overhead_us_by_dtype.fp8",
                 "compute_half_flops", "gemm_tile_intensity_half"):
        assert _fitted(cal, name) == pytest.approx(_true(TRUE_GEMM, name), rel=rel), name
    # the memory ramp is the least constrained number (few rows sit near its half point, and the
    # warm-cache ratio also speeds up small working sets)
    assert _fitted(cal, "memory_half_bytes") == pytest.approx(TRUE_GEMM["memory_half_bytes"], rel=max(rel, 0.4))
    assert stage.train_mdape < (1e-3 if noise == 0 else 0.04)


def test_attention_parameters_are_recovered_with_prefill_and_decode_apart():
    true = {**TRUE_GEMM, **TRUE_ATTENTION}
    table, true_dev = synthetic(attention_rows(), true, noise=0.02, seed=1)
    start = _stripped(true_dev, TRUE_ATTENTION)
    cal = calibrate(table, start)
    assert [s.stage for s in cal.stages] == ["attention"]
    for name in TRUE_ATTENTION:
        if name == "attention_max_fraction_by_dtype":
            assert _fitted(cal, "attention_max_fraction_by_dtype.bf16") == pytest.approx(0.47, rel=0.05)
        elif name != "attention_half_flops":
            assert _fitted(cal, name) == pytest.approx(TRUE_ATTENTION[name], rel=0.08), name
    assert _fitted(cal, "attention_half_flops") == pytest.approx(TRUE_ATTENTION["attention_half_flops"], rel=0.3)


def test_block_terms_are_recovered_with_the_attention_terms():
    true = {**TRUE_GEMM, **TRUE_ATTENTION, **TRUE_BLOCKS}
    table, true_dev = synthetic(attention_rows(), true, noise=0.02, seed=3)
    start = _stripped(true_dev, {**TRUE_ATTENTION, **TRUE_BLOCKS})
    cal = calibrate(table, start)
    assert cal.efficiency.attention_query_tile == 128
    for name, rel in (("attention_softmax_fraction", 0.1), ("attention_cta_us", 0.1),
                      ("decode_attention_cta_us_by_dtype.bf16", 0.1), ("decode_attention_head_cta_us", 0.15),
                      ("decode_attention_parallel_half_by_dtype.bf16", 0.3), ("attention_overhead_us", 0.1)):
        assert _fitted(cal, name) == pytest.approx(_true(true, name), rel=rel), name
    assert cal.stages[0].train_mdape < 0.03
    # the plain model (no block terms) cannot follow these latencies as closely
    plain = calibrate(table, start, blocks=False)
    assert plain.stages[0].train_mdape > 2 * cal.stages[0].train_mdape


def test_mla_rows_get_their_own_terms_after_the_attention_stage():
    true = {**TRUE_GEMM, **TRUE_ATTENTION, **TRUE_MLA}
    table, true_dev = synthetic(attention_rows() + mla_rows(), true, noise=0.01, seed=4)
    cal = calibrate(table, _stripped(true_dev, {**TRUE_ATTENTION, **TRUE_MLA}), blocks=False)
    assert [s.stage for s in cal.stages] == ["attention", "mla"]
    for key, value in TRUE_MLA["mla_overrides"].items():
        assert _fitted(cal, f"mla_overrides.{key}") == pytest.approx(value, rel=0.1), key
    # the attention stage saw no MLA rows: its terms are the GQA kernels'
    assert _fitted(cal, "attention_overhead_us") == pytest.approx(TRUE_ATTENTION["attention_overhead_us"], rel=0.08)


def test_collective_parameters_are_recovered():
    true = {**TRUE_GEMM, **TRUE_COLLECTIVE}
    table, true_dev = synthetic(collective_rows(), true, noise=0.02, seed=2)
    cal = calibrate(table, _stripped(true_dev, TRUE_COLLECTIVE))
    for kind, frac in TRUE_COLLECTIVE["collective_bandwidth_fraction_by_kind"].items():
        assert _fitted(cal, f"collective_bandwidth_fraction_by_kind.{kind}") == pytest.approx(frac, rel=0.03)
    # one latency and call cost for every kind, whichever candidate the fit keeps (shared, or one
    # per kind landing on the same values)
    coll = cal.efficiency.collectives
    for kind in TRUE_COLLECTIVE["collective_bandwidth_fraction_by_kind"]:
        assert coll.latency_for(kind) == pytest.approx(0.8, rel=0.1), kind
        assert coll.overhead_for(kind) == pytest.approx(4.5, rel=0.1), kind


def test_per_kind_collective_costs_are_recovered():
    """A one-shot all-reduce (0.2 us a step, 2 us a call) beside NCCL-like kinds (1 us, 8 us): the
    per-kind candidate wins and lands on each kind's own costs; the kinds not measured (send/recv)
    take the median of the measured ones."""
    per_kind = dict(TRUE_COLLECTIVE, collective_latency_us_by_kind={"all-reduce": 0.2, "all-gather": 1.0,
                                                                    "reduce-scatter": 1.0, "all-to-all": 1.0},
                    collective_overhead_us_by_kind={"all-reduce": 2.0, "all-gather": 8.0, "reduce-scatter": 8.0,
                                                    "all-to-all": 8.0})
    table, true_dev = synthetic(collective_rows(), {**TRUE_GEMM, **per_kind}, noise=0.01, seed=3)
    start = _stripped(true_dev, per_kind)
    assert not start.efficiency.collectives.latency_us_by_kind  # the fit starts from none
    cal = calibrate(table, start)
    assert cal.stages[0].tile_set == "per-kind latency and call cost"
    coll = cal.efficiency.collectives
    for kind, latency in per_kind["collective_latency_us_by_kind"].items():
        assert coll.latency_for(kind) == pytest.approx(latency, rel=0.15), kind
        assert coll.overhead_for(kind) == pytest.approx(per_kind["collective_overhead_us_by_kind"][kind], rel=0.1)
    assert coll.latency_us == pytest.approx(1.0, rel=0.15) and coll.overhead_us == pytest.approx(8.0, rel=0.1)


@pytest.mark.parametrize("noise", [0.0, 0.01])
def test_warm_cache_terms_are_recovered(noise):
    """GEMMs whose operands fit in a 30 MB warm cache stream them 2.5x faster: the fit finds the
    capacity and the ratio, and the DRAM fraction stays the true one. (With noise the ratio
    trades against the memory ramp, which also speeds up small working sets: only the capacity
    and the DRAM fraction are asserted then.)"""
    warm = dict(warm_cache_bytes=30e6, warm_cache_bandwidth_ratio=2.5)
    table, true_dev = synthetic(gemm_rows(), {**TRUE_GEMM, **warm}, noise=noise, seed=5)
    cal = calibrate(table, _stripped(true_dev, {**TRUE_GEMM, **warm}), tile_sets=["gpu"])
    rel = 1e-3 if noise == 0 else 0.15
    assert _fitted(cal, "warm_cache_bytes") == pytest.approx(30e6, rel=rel)
    if noise == 0:
        assert _fitted(cal, "warm_cache_bandwidth_ratio") == pytest.approx(2.5, rel=rel)
    assert _fitted(cal, "memory_max_fraction") == pytest.approx(TRUE_GEMM["memory_max_fraction"], rel=rel / 3)
    cold = calibrate(table, _stripped(true_dev, {**TRUE_GEMM, **warm}), tile_sets=["gpu"], warm_cache=False)
    # without the warm-cache terms the memory-bound rows that fit cannot be followed (most
    # rows are unaffected, so the robust loss, not the median, shows it)
    assert cold.stages[0].cost > 5 * cal.stages[0].cost


def test_pcie_group_size_factors_are_recovered():
    """On a PCIe device the bandwidth falls as the group grows (shared switch uplinks and host
    bridges); the fit finds each larger group's factor relative to the 2-GPU one."""
    factors = {2: 1.0, 4: 0.26, 8: 0.065}
    true = {**TRUE_GEMM, **TRUE_COLLECTIVE, "collective_bandwidth_fraction_by_group_size": factors}
    table, true_dev = synthetic(collective_rows(), true, device="l40s", noise=0.02, seed=3)
    cal = calibrate(table, _stripped(true_dev, true))
    assert cal.efficiency.collective_bandwidth_fraction_by_group_size[2] == 1.0
    for size in (4, 8):
        assert _fitted(cal, f"collective_bandwidth_fraction_by_group_size.{size}") == pytest.approx(
            factors[size], rel=0.05)
    for kind, frac in TRUE_COLLECTIVE["collective_bandwidth_fraction_by_kind"].items():
        assert _fitted(cal, f"collective_bandwidth_fraction_by_kind.{kind}") == pytest.approx(frac, rel=0.05)


def test_switched_fabric_fits_no_group_size_factors():
    """An NVSwitch gives every GPU its own ports: the H100 fit has no per-group-size factor."""
    table, true_dev = synthetic(collective_rows(), {**TRUE_GEMM, **TRUE_COLLECTIVE}, noise=0.02, seed=2)
    cal = calibrate(table, _stripped(true_dev, TRUE_COLLECTIVE))
    assert cal.efficiency.collective_bandwidth_fraction_by_group_size == {}
    assert not any("group_size" in name for stage in cal.stages for name in stage.params)


def test_calibrated_device_predicts_the_synthetic_truth():
    table, true_dev = synthetic(gemm_rows(("bf16",)), TRUE_GEMM)
    cal = calibrate(table, get_device("h100-sxm", efficiency="spec"))
    pred = predict(table, cal.device)
    meas = table.column("latency_s").to_numpy()
    assert np.median(np.abs(pred / meas - 1)) < 1e-3
    assert "fitted to" in cal.efficiency.source and f"{table.num_rows} rows" in cal.efficiency.source


def test_subsampling_is_deterministic_and_bounded():
    table, _ = synthetic(gemm_rows(), TRUE_GEMM, noise=0.03)
    a = calibrate(table, get_device("h100-sxm", efficiency="spec"), max_rows=100)
    b = calibrate(table, get_device("h100-sxm", efficiency="spec"), max_rows=100)
    assert a.stages[0].rows == 100
    assert a.efficiency == b.efficiency


def test_no_rows_is_a_clear_error():
    table = rows_table([dict(op="gemm", m=1, n=1, k=1, dtype="bf16")]).slice(0, 0)
    with pytest.raises(InfersimError, match="no measurements"):
        calibrate(table, get_device("h100-sxm", efficiency="spec"))


def test_apply_params_and_rounding():
    eff = EfficiencySpec()
    params = [Param("compute_max_fraction_by_dtype.fp8", 0.1, 1, 0.5), Param("gemm_k_half", 0, 100, 1)]
    out = apply_params(eff, params, [0.61234567, 12.3456789])
    assert out.compute_max_fraction_by_dtype == {"fp8": 0.61234567} and out.gemm_k_half == 12.3456789
    r = round_efficiency(out)
    assert r.compute_max_fraction_by_dtype == {"fp8": 0.6123} and r.gemm_k_half == 12.35
    p = Param("x", 1e3, 1e9, 1e6, log=True)
    assert p.from_x(p.to_x(2.5e5)) == pytest.approx(2.5e5) and p.bounds == (3.0, 9.0)


def test_device_file_round_trip_and_estimate(tmp_path):
    table, _ = synthetic(gemm_rows(("bf16",)), TRUE_GEMM)
    base = get_device("h100-sxm", efficiency="spec")
    cal = calibrate(table, base)
    spec = device_spec_with(base, cal.efficiency, calibrated_name(base.name))
    path = write_device_yaml(spec, tmp_path / "h100-cal.yaml", "a comment")
    assert path.read_text().startswith("# a comment\n")
    loaded = get_device(str(path))
    assert loaded.name == "h100-sxm-calibrated" and loaded.efficiency == cal.efficiency
    assert loaded.dense_flops_per_s == base.dense_flops_per_s  # spec-sheet numbers unchanged
    np.testing.assert_allclose(predict(table, loaded), predict(table, cal.device), rtol=1e-12)
    with pytest.raises(InfersimError, match="yaml"):
        write_device_yaml(spec, tmp_path / "h100.json")


def test_transfer_keeps_fractions_and_rescales_halves_and_link_latency():
    h100, b200, l40s = get_device("h100-sxm", efficiency="spec"), get_device("b200", efficiency="spec"), get_device("l40s", efficiency="spec")
    eff = h100.efficiency.model_copy(update=dict(compute_max_fraction_by_dtype={"bf16": 0.8},
                                                 compute_half_flops=1e9, memory_half_bytes=2e6,
                                                 collective_latency_us=1.0, kernel_overhead_us=2.5))
    out = transfer_efficiency(eff, h100, b200)
    assert out.compute_max_fraction_by_dtype == {"bf16": 0.8} and out.kernel_overhead_us == 2.5
    assert out.compute_half_flops == pytest.approx(1e9 * 2250.0 / 989.4)  # same start-up time
    assert out.memory_half_bytes == pytest.approx(2e6 * 8000.0 / 3350.0)
    assert out.collective_latency_us == pytest.approx(1.0)  # both NVLink specs list 2 us
    assert transfer_efficiency(eff, h100, l40s).collective_latency_us == pytest.approx(1.0 * 5.0 / 2.0)  # PCIe 5 us
    assert "transferred from h100-sxm" in out.source
    assert not math.isnan(out.compute_half_flops)
    assert transfer_efficiency(eff, h100, b200, scale_halves=False).compute_half_flops == 1e9


def test_transfer_scales_parallelism_half_points_with_compute_units():
    """Half-points counted in thread blocks: the blocks that fill the machine, 132 SMs on the
    H100 against 108 on the A100."""
    h100, a100 = get_device("h100-sxm", efficiency="spec"), get_device("a100-sxm-80gb", efficiency="spec")
    eff = h100.efficiency.model_copy(update=dict(
        attention_parallel_half=66.0, decode_attention_parallel_half_by_dtype={"fp8": 132.0},
        decode_attention_head_parallel_half=13.2,
        mla_overrides={"decode_attention_parallel_half": 33.0, "attention_overhead_us": 5.0}))
    out = transfer_efficiency(eff, h100, a100)
    assert (h100.compute_units, a100.compute_units) == (132, 108)
    assert out.attention_parallel_half == pytest.approx(54.0)
    assert out.decode_attention_parallel_half_by_dtype == {"fp8": pytest.approx(108.0)}
    assert out.decode_attention_head_parallel_half == pytest.approx(10.8)
    assert out.mla_overrides == {"decode_attention_parallel_half": pytest.approx(27.0), "attention_overhead_us": 5.0}
    assert transfer_efficiency(eff, h100, a100, scale_halves=False).attention_parallel_half == 66.0


def test_transfer_keeps_group_size_factors_only_on_the_same_fabric():
    l40s, h100_pcie, h100 = get_device("l40s", efficiency="spec"), get_device("h100-pcie", efficiency="spec"), get_device("h100-sxm", efficiency="spec")
    assert l40s.scale_up.topology == h100_pcie.scale_up.topology == "pcie"
    eff = l40s.efficiency.model_copy(update={"collective_bandwidth_fraction_by_group_size": {2: 1.0, 8: 0.07}})
    assert transfer_efficiency(eff, l40s, h100_pcie).collective_bandwidth_fraction_by_group_size == {2: 1.0, 8: 0.07}
    assert transfer_efficiency(eff, l40s, h100).collective_bandwidth_fraction_by_group_size == {}


def test_calibrating_a_copy_does_not_touch_the_catalog_device():
    before = get_device("h100-sxm", efficiency="spec").efficiency
    table, _ = synthetic(gemm_rows(("bf16",)), TRUE_GEMM)
    calibrate(table, get_device("h100-sxm", efficiency="spec"))
    assert get_device("h100-sxm", efficiency="spec").efficiency == before
    assert dataclasses.is_dataclass(get_device("h100-sxm", efficiency="spec"))


def test_mla_per_dtype_terms_and_prefill_ramp_are_recovered():
    # an fp8 KV cache: decode streams it at its own fraction, prefill quantizes Q/K/V in a pass of its
    # own; few prefill blocks (1-2 heads, short batches) keep only part of the machine busy
    true_mla = {"attention_max_fraction_by_dtype.bf16": 0.55, "attention_max_fraction_by_dtype.fp8": 0.35,
                "decode_attention_memory_max_fraction_by_dtype.bf16": 0.92,
                "decode_attention_memory_max_fraction_by_dtype.fp8": 0.64,
                "attention_query_bandwidth_fraction_by_dtype.bf16": 4.0,
                "attention_query_bandwidth_fraction_by_dtype.fp8": 0.3,
                "attention_parallel_half": 150.0, "attention_cta_us": 2.5,
                "attention_overhead_us": 14.0, "decode_attention_overhead_us": 8.0}
    true = {**TRUE_GEMM, **TRUE_ATTENTION, **TRUE_BLOCKS, "mla_overrides": true_mla}
    rows = mla_rows(kv_dtypes=("bf16", "fp8"), heads=(1, 2, 16, 128))
    table, true_dev = synthetic(rows, true, noise=0.01, seed=5)
    cal = calibrate(table, _stripped(true_dev, {"mla_overrides"}))
    assert [s.stage for s in cal.stages] == ["mla"]
    for key, rel in (("decode_attention_memory_max_fraction_by_dtype.bf16", 0.05),
                     ("decode_attention_memory_max_fraction_by_dtype.fp8", 0.05),
                     ("attention_query_bandwidth_fraction_by_dtype.fp8", 0.15),
                     ("attention_parallel_half", 0.3), ("attention_max_fraction_by_dtype.fp8", 0.05)):
        assert _fitted(cal, f"mla_overrides.{key}") == pytest.approx(true_mla[key], rel=rel), key
    assert cal.stages[0].train_mdape < 0.02


def test_transfer_scales_warm_cache_capacity_with_on_chip_memory():
    h100, b200 = get_device("h100-sxm", efficiency="spec"), get_device("b200", efficiency="spec")
    eff = h100.efficiency.model_copy(update=dict(warm_cache_bytes=40e6, warm_cache_bandwidth_ratio=2.0,
                                                 attention_warm_cache_bytes=60e6,
                                                 mla_overrides={"attention_warm_cache_bytes": 20e6}))
    out = transfer_efficiency(eff, h100, b200)
    ratio = 159.7 / 80.0  # on-chip memory (MB) of the two spec sheets
    assert out.warm_cache_bytes == pytest.approx(40e6 * ratio)
    assert out.attention_warm_cache_bytes == pytest.approx(60e6 * ratio)
    assert out.mla_overrides["attention_warm_cache_bytes"] == pytest.approx(20e6 * ratio)
    assert out.warm_cache_bandwidth_ratio == 2.0


def _prefill_triplets(mix_like: str, shapes: int) -> object:
    """Long prefills measured as bf16/bf16, bf16 over an fp8 cache and fp8/fp8; the mixed rows
    time like ``mix_like`` ("bf16" or "fp8") kernels."""
    import itertools

    rows = []
    for batch, seq in itertools.islice(itertools.product((1, 2, 4), (1024, 2048, 4096, 8192)), shapes):
        bf16 = 1e-3 * batch * seq / 1024
        times = {("bf16", "bf16"): bf16, ("fp8", "fp8"): 0.55 * bf16}
        times[("bf16", "fp8")] = 1.02 * times[(mix_like, mix_like)]
        for (dtype, kv), t in times.items():
            rows.append(dict(op="attention_prefill", batch=batch, seq_len=seq, kv_len=seq, num_heads=32,
                             num_kv_heads=8, head_dim=128, dtype=dtype, kv_dtype=kv, latency_s=t))
    return rows_table(rows, "l40s")


def test_context_math_is_read_from_the_rows():
    from infersim.fidelity.calibrate import context_math_from_rows

    assert context_math_from_rows(_prefill_triplets("bf16", 12)) == "activation"
    assert context_math_from_rows(_prefill_triplets("fp8", 12)) == "fp8"
    assert context_math_from_rows(_prefill_triplets("bf16", 4)) is None  # too few shapes to tell


def test_fp8_cache_context_rows_run_in_the_device_math():
    """The same bf16-over-fp8-cache prefill costs 2x on an (ideal) L40S that runs it in bf16:
    the bf16 tensor peak is half the fp8 one (366.5 vs 733 TFLOP/s)."""
    from infersim.fidelity.kernels import build_kernels
    from tests.perf.conftest import ideal

    table = rows_table([dict(op="attention_prefill", batch=1, seq_len=16384, kv_len=16384, num_heads=32,
                             num_kv_heads=8, head_dim=128, dtype="bf16", kv_dtype="fp8")], "l40s")
    kernels = build_kernels(table)
    dev = ideal(get_device("l40s", efficiency="spec"))
    as_bf16 = dataclasses.replace(dev, efficiency=dev.efficiency.model_copy(
        update={"fp8_kv_context_math": "activation"}))
    assert kernels.predict(as_bf16)[0] / kernels.predict(dev)[0] == pytest.approx(733.0 / 366.5, rel=0.01)


def test_native_head_sizes_are_found_and_the_fallback_fitted():
    """fp8 kernels fast at head size 128 only (fraction 0.6), a generic kernel at 0.2 for 64
    and 256: the fit finds the split and both fractions."""
    import itertools

    true = {**TRUE_GEMM, **TRUE_ATTENTION, "attention_max_fraction_by_dtype": {"bf16": 0.47, "fp8": 0.6},
            "attention_native_head_dims_by_dtype": {"fp8": [128]}, "attention_fallback_fraction_by_dtype": {"fp8": 0.2}}
    rows = [dict(op="attention_prefill", batch=b, seq_len=s, kv_len=s, num_heads=32, num_kv_heads=8, head_dim=hd,
                 dtype="fp8", kv_dtype="fp8")
            for hd, b, s in itertools.product((64, 128, 256), (1, 4, 16), (128, 512, 1024, 2048, 4096, 8192, 16384))]
    table, true_dev = synthetic(rows, true, noise=0.01, seed=6)
    cal = calibrate(table, _stripped(true_dev, {**TRUE_ATTENTION, "attention_native_head_dims_by_dtype": 0,
                                                "attention_fallback_fraction_by_dtype": 0}))
    assert cal.efficiency.attention_native_head_dims_by_dtype == {"fp8": [128]}
    assert _fitted(cal, "attention_fallback_fraction_by_dtype.fp8") == pytest.approx(0.2, rel=0.1)
    assert _fitted(cal, "attention_max_fraction_by_dtype.fp8") == pytest.approx(0.6, rel=0.1)


def test_decode_kernel_terms_are_recovered():
    """A grouped fp8-KV decode kernel that walks each sequence from one block (a sharp, late
    parallelism ramp) and a per-query-head kernel with per-dtype block and launch costs that
    re-reads its KV head from the cache: the fit finds them from decode rows alone."""
    import itertools

    true = {**TRUE_GEMM, **TRUE_ATTENTION, **TRUE_BLOCKS, "decode_attention_max_group": 32,
            "decode_attention_parallel_half_by_dtype": {"bf16": 4.0, "fp8": 120.0},
            "decode_attention_parallel_sharpness_by_dtype": {"fp8": 8.0},
            "decode_attention_head_cta_us_by_dtype": {"bf16": 1.0, "fp8": 3.0},
            "decode_attention_head_launch_us_by_dtype": {"fp8": 5.0},
            "decode_attention_head_parallel_half": 6.0, "decode_attention_reread_bandwidth_ratio": 6.0}
    rows = [dict(op="attention_decode", batch=b, seq_len=1, kv_len=ctx, num_heads=h, num_kv_heads=kvh, head_dim=128,
                 dtype="bf16", kv_dtype=kv)
            for kv, (h, kvh), b, ctx in itertools.product(("bf16", "fp8"), ((16, 16), (32, 8), (64, 1)),
                                                          (1, 4, 16, 64, 256), (16, 256, 2048, 16384))]
    table, true_dev = synthetic(rows, true, noise=0.01, seed=8)
    start = _stripped(true_dev, {**TRUE_ATTENTION, **TRUE_BLOCKS, **{k: 0 for k in true if k.startswith("decode_")}})
    cal = calibrate(table, start, warm_cache=False)
    assert cal.efficiency.decode_attention_max_group == 32
    # (the bf16 block costs trade a little against the softmax and compute terms these rows hide)
    for name, rel in (("decode_attention_parallel_half_by_dtype.fp8", 0.1),
                      ("decode_attention_head_cta_us_by_dtype.bf16", 0.25),
                      ("decode_attention_head_cta_us_by_dtype.fp8", 0.1),
                      ("decode_attention_head_launch_us_by_dtype.fp8", 0.1),
                      ("decode_attention_head_parallel_half", 0.1)):
        assert _fitted(cal, name) == pytest.approx(_true(true, name), rel=rel), name
    for dtype in ("bf16", "fp8"):  # one ratio, fitted per dtype
        assert _fitted(cal, f"decode_attention_reread_bandwidth_ratio_by_dtype.{dtype}") == pytest.approx(6.0, rel=0.05)
    assert _fitted(cal, "decode_attention_parallel_sharpness_by_dtype.fp8") > 4.0  # a sharp ramp
    assert cal.stages[0].train_mdape < 0.02
