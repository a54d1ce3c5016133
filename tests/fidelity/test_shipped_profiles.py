"""The shipped profiles are what the current code makes of the current data (a stale profile fails).

* calibrated profiles: the profile's MdAPE per op family on its check slice (200 rows per family of
  aiconfigurator-core's tables) is recomputed with the current cost model and must equal the figure
  recorded in the file; the slice figures must agree with the fit figures; the collective stage is
  refitted from the spec-sheet start on all of the device's collective rows and must land on the
  recorded parameters and fit MdAPE;
* transferred profiles: recomputed by the current transfer from the current source profile.

Regenerate with ``infersim calibrate --all --write-profiles`` when these fail after a change to the
cost model, the calibration or the data package.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from infersim.fidelity.evaluate import package_version
from infersim.hardware import builtin_names, get_device
from infersim.hardware.catalog import engine_profile_devices, load_profile
from infersim.hardware.choices import ENGINE_KERNELS
from infersim.hardware.profile import REGENERATE

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("pyarrow") is None or importlib.util.find_spec("scipy") is None
    or package_version("aiconfigurator-core") is None,
    reason="needs the 'test' extra (pyarrow, scipy, aiconfigurator-core)")

def _basis(name: str) -> str | None:
    profile = load_profile(name)  # None: no profile (tests/hardware/test_profiles.py fails on that)
    return profile.provenance.basis if profile else None


CALIBRATED = [n for n in builtin_names() if _basis(n) == "calibrated"]
#: (device, engine) of every shipped profile fitted on one engine's kernels (tests/hardware/test_engine_profiles.py
#: checks which devices have one)
ENGINE_PROFILES = [(n, e) for e in ENGINE_KERNELS for n in engine_profile_devices(e)]
TRANSFERRED = [n for n in builtin_names() if _basis(n) == "transferred"]
COLLECTIVE_OPS = ["allreduce", "allgather", "reducescatter", "alltoall"]
#: the collective fields the calibration's collective stage fits
COLLECTIVE_FIELDS = ("collective_bandwidth_fraction_by_kind", "collective_bandwidth_fraction_by_group_size",
                     "collective_latency_us", "collective_overhead_us", "collective_latency_us_by_kind",
                     "collective_overhead_us_by_kind")


def _same_data(profile) -> None:
    installed = package_version(profile.provenance.data)
    if installed is None and profile.provenance.framework:
        from infersim.fidelity.kernel_sets import kernel_set

        hint = kernel_set(profile.provenance.framework).install_hint()
        pytest.skip(f"the {profile.provenance.framework} tables come from {profile.provenance.data} "
                    f"{profile.provenance.version}, not installed: {hint}")
    if installed != profile.provenance.version:
        pytest.fail(f"{profile.device}'s profile was fitted on {profile.provenance.data} "
                    f"{profile.provenance.version}, {installed} is installed: run `{REGENERATE}`")


def test_every_measured_device_is_calibrated():
    assert sorted(CALIBRATED) == ["a100-sxm-80gb", "b200", "gb200", "h100-sxm", "h200", "l40s"]


def _rows(name: str, engine: str | None, ops=None):
    """The rows ``name``'s profile was fitted on: aiconfigurator-core's, or its kernel set's."""
    from infersim.fidelity import load_aiconfigurator
    from infersim.fidelity.kernel_sets import load_kernel_set

    return load_aiconfigurator(devices=[name], ops=ops) if engine is None else load_kernel_set(engine, [name], ops)


@pytest.mark.parametrize(("name", "engine"), [(n, None) for n in CALIBRATED] + ENGINE_PROFILES)
def test_check_slice_is_reproduced(name, engine):
    from infersim.fidelity.shipped import check_slice

    profile = load_profile(name, engine)
    _same_data(profile)
    recorded = profile.provenance.check
    table = _rows(name, engine)
    now = check_slice(table, get_device(name, efficiency=engine), recorded.rows_per_family, recorded.seed)
    assert set(now.mdape) == set(recorded.mdape)
    for family, value in recorded.mdape.items():
        assert now.mdape[family] == pytest.approx(value, abs=2e-5), (
            f"{name} {family}: the profile now scores {now.mdape[family]:.4%} on its check slice, the file "
            f"records {value:.4%}: run `{REGENERATE}`")
    # a slice of the rows scores like the fit did (the fit subsamples the same rows)
    for family, value in recorded.mdape.items():
        fit = profile.provenance.fit_mdape[family]
        assert value <= max(2.0 * fit, fit + 0.05), f"{name} {family}: slice {value:.3f} vs fit {fit:.3f}"


@pytest.mark.parametrize(("name", "engine"), [(n, None) for n in CALIBRATED] + ENGINE_PROFILES)
def test_collective_stage_refit_lands_on_the_recorded_fit(name, engine):
    from infersim.fidelity.calibrate import calibrate, with_efficiency

    profile = load_profile(name, engine)
    _same_data(profile)
    spec = get_device(name, efficiency="spec")
    # the fit's own start: the spec sheet, or for an engine profile the default profile
    first = spec.efficiency if engine is None else load_profile(name).efficiency
    start = profile.efficiency.model_copy(update={f: getattr(first, f) for f in COLLECTIVE_FIELDS})
    rows = _rows(name, engine, COLLECTIVE_OPS)
    cal = calibrate(rows, with_efficiency(spec, start), max_rows=profile.provenance.max_rows)
    assert [s.stage for s in cal.stages] == ["collective"]
    assert cal.stages[0].train_mdape == pytest.approx(profile.provenance.fit_mdape["collective"], abs=1e-4)
    for f in COLLECTIVE_FIELDS:
        got, want = getattr(cal.efficiency, f), getattr(profile.efficiency, f)
        assert got == (pytest.approx(want, rel=2e-3) if not isinstance(want, dict) else
                       {k: pytest.approx(v, rel=2e-3) for k, v in want.items()}), f"{name} {f}"


def _mixtral_moe_ms(framework: str | None, device, variant: str = "") -> tuple[np.ndarray, np.ndarray]:
    """Measured and predicted ms of Mixtral-8x7B's MoE layer (8 experts, top-2, hidden 4096, FFN 14336,
    fp8 per tensor, TP1 / EP1, balanced routing unless ``variant`` names another) at 1,024 / 4,096 / 8,192
    tokens in the H100 table of ``framework`` (None: the default profiles' data, else a kernel set)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from infersim.fidelity.kernels import build_kernels

    t = _rows("h100-sxm", framework, ["moe"])
    keep = pc.and_(pc.and_(pc.equal(t["hidden"], 4096), pc.equal(t["inter"], 14336)),
                   pc.and_(pc.equal(t["num_experts"], 8), pc.equal(t["topk"], 2)))
    keep = pc.and_(keep, pc.and_(pc.and_(pc.equal(t["tp"], 1), pc.equal(t["ep"], 1)),
                                 pc.and_(pc.equal(t["dtype"], "fp8"), pc.equal(t["variant"], variant))))
    t = t.filter(pc.and_(keep, pc.is_in(t["tokens"], pa.array([1024, 4096, 8192]))))
    t = t.take(pc.sort_indices(t, [("tokens", "ascending")]))
    assert t["tokens"].to_pylist() == [1024, 4096, 8192]
    return t["latency_s"].to_numpy() * 1e3, build_kernels(t).predict(device) * 1e3


def test_engine_profiles_carry_each_engines_moe_speed():
    """The same MoE layer runs 1.5-5x slower under vLLM's kernels than under TensorRT-LLM's on the H100
    (aiconfigurator-core's tables, read here directly); h100-sxm@vllm predicts that ratio, the
    default profile (fitted on TensorRT-LLM's kernels) the TensorRT-LLM speed. A check that the engine
    profile reaches the cost model, on rows its fit saw: not an accuracy claim."""
    trt_meas, trt_pred = _mixtral_moe_ms(None, get_device("h100-sxm"))
    vllm_meas, vllm_pred = _mixtral_moe_ms("vllm", get_device("h100-sxm@vllm"))
    measured_ratio, predicted_ratio = vllm_meas / trt_meas, vllm_pred / trt_pred
    assert np.all(measured_ratio > 1.5)
    np.testing.assert_allclose(predicted_ratio, measured_ratio, rtol=0.25)
    _, trt_on_vllm_rows = _mixtral_moe_ms("vllm", get_device("h100-sxm"))
    assert np.all(vllm_meas / trt_on_vllm_rows > 1.5)  # the default profile is far off vLLM's kernels


def test_the_trtllm_1_0_profile_carries_that_releases_moe_speed():
    """TensorRT-LLM 1.0's fused MoE (aiconfigurator 0.4.0's H100 table, 1.0.0rc3) takes 1.2-1.4x as long
    as 1.3's (aiconfigurator-core's, 1.3.0rc20) on Mixtral's FP8 layer under the power-law routing both
    measured; h100-sxm@trtllm-1.0 over the default profile predicts that ratio. A plumbing check on rows
    the fits saw, not an accuracy claim."""
    _same_data(load_profile("h100-sxm", "trtllm-1.0"))
    skew = "dist=power_law_1.2"
    new_meas, new_pred = _mixtral_moe_ms(None, get_device("h100-sxm"), skew)
    old_meas, old_pred = _mixtral_moe_ms("trtllm-1.0", get_device("h100-sxm@trtllm-1.0"), skew)
    measured_ratio, predicted_ratio = old_meas / new_meas, old_pred / new_pred
    assert np.all(measured_ratio > 1.15)
    np.testing.assert_allclose(predicted_ratio, measured_ratio, rtol=0.25)


@pytest.mark.parametrize("name", TRANSFERRED)
def test_transferred_profile_is_reproduced(name):
    from infersim.fidelity.shipped import nearest_measured, transferred_profile

    profile = load_profile(name)
    source = profile.provenance.transferred_from
    spec_of = {n: get_device(n, efficiency="spec") for n in CALIBRATED}
    assert nearest_measured(get_device(name, efficiency="spec"), list(spec_of.values())).name == source
    again = transferred_profile(load_profile(source), spec_of[source], get_device(name, efficiency="spec"))
    assert again.efficiency == profile.efficiency, f"{name}: run `{REGENERATE}`"
    assert again.provenance == profile.provenance


def test_nearest_measured_device_by_hand():
    from infersim.fidelity.shipped import nearest_measured, spec_distance

    pcie = get_device("h100-pcie", efficiency="spec")  # 756 bf16 TFLOP/s, 2.0 TB/s (datasheet)
    sxm, a100 = get_device("h100-sxm", efficiency="spec"), get_device("a100-sxm-80gb", efficiency="spec")
    # |ln(756/989.4)| + |ln(2000/3350)| = 0.269 + 0.516; |ln(756/312)| + |ln(2000/2039)| = 0.885 + 0.019
    assert spec_distance(pcie, sxm) == pytest.approx(0.7848, abs=2e-3)
    assert spec_distance(pcie, a100) == pytest.approx(0.9044, abs=2e-3)
    assert nearest_measured(pcie, [a100, sxm]) is sxm


def test_a_generated_profile_records_its_own_fit(tmp_path):
    """The generator on synthetic collective rows: the recorded fit and check figures are the
    calibration's own, and the file loads back as the same profile."""
    from infersim.fidelity.calibrate import calibrate, with_efficiency
    from infersim.fidelity.shipped import calibrated_profile, check_slice, write_profile
    from infersim.hardware.catalog import parse_profile_yaml

    from .synth import TRUE_COLLECTIVE, collective_rows, synthetic

    table, _ = synthetic(collective_rows(), TRUE_COLLECTIVE, noise=0.03)
    base = get_device("h100-sxm", efficiency="spec")
    profile = calibrated_profile(table, base, "9.9.9", max_rows=1000, date="2026-01-02")
    cal = calibrate(table, base, max_rows=1000)
    assert profile.provenance.fit_mdape == {"collective": round(cal.stages[0].train_mdape, 5)}
    assert profile.provenance.rows == table.num_rows == profile.provenance.rows_measured
    assert profile.basis == f"calibrated on aiconfigurator-core 9.9.9 ({table.num_rows:,} rows, 2026-01-02)"
    again = check_slice(table, with_efficiency(base, profile.efficiency), 200, profile.provenance.check.seed)
    assert again == profile.provenance.check
    path = write_profile(profile, tmp_path)
    assert path == tmp_path / "h100-sxm.yaml"
    assert parse_profile_yaml(path.read_text(), path) == profile


# AMD's Max-Achievable FLOPs (ROCm blog "Measuring Max-Achievable FLOPs - Part 2", 2025-02-28, Table 1
# and the hipblaslt-bench commands of its Appendix B), typed in here independently of MEASURED_GEMM
AMD_MAF = {"mi300x": {"bf16": (708e12, (4096, 4864, 32896)), "fp8": (1273e12, (4096, 3648, 32896))},
           "mi325x": {"bf16": (843e12, (4096, 4864, 32896)), "fp8": (1519e12, (4096, 3648, 32896))}}


@pytest.mark.parametrize("name", sorted(AMD_MAF))
def test_amd_profiles_predict_the_published_max_achievable_gemm(name):
    """The shipped (transferred) AMD profile predicts AMD's measured GEMM throughput on AMD's shape,
    says so in its basis, and its spec-sheet-peak fractions are those of the measurement."""
    from infersim.fidelity.transfer import MeasuredGemm, gemm_flops_per_s

    device, profile = get_device(name), load_profile(name)
    assert "Max-Achievable FLOPs" in profile.provenance.scaled_by
    assert device.basis.startswith(f"transferred from {profile.provenance.transferred_from}, scaled by ")
    for dtype, (flops, (m, n, k)) in AMD_MAF[name].items():
        got = gemm_flops_per_s(device, MeasuredGemm(dtype, flops, m, n, k))
        assert got == pytest.approx(flops, rel=1e-3), f"{name} {dtype}: {got / 1e12:.0f} TFLOP/s"
        # a k = 32,896 GEMM is compute-bound: the fraction is close to measured / peak (708 / 1307.4 = 0.54)
        frac = profile.efficiency.core.compute_max_fraction_by_dtype[dtype]
        assert frac == pytest.approx(flops / device.peak_flops(dtype), rel=0.05)


def test_transfer_without_a_measurement_leaves_the_fractions_alone():
    from infersim.fidelity.transfer import scale_to_measured_gemm

    eff = load_profile("h100-pcie").efficiency
    same, basis = scale_to_measured_gemm(eff, get_device("h100-pcie", efficiency="spec"))
    assert basis is None and same is eff


def test_dtypes_kept_from_default_by_hand():
    """A stage lists the dtypes its sections hold values for in the default efficiency but the stage
    fits no terms for on the table (no operator of that compute dtype among the stage's rows)."""
    from infersim.fidelity.shipped import dtypes_kept_from_default
    from infersim.hardware.efficiency import EfficiencySpec

    from .synth import attention_rows, gemm_rows, rows_table

    default = EfficiencySpec().model_copy(update={
        "compute_max_fraction_by_dtype": {"bf16": 0.9, "fp8": 0.8, "fp4": 0.7},
        "grouped_gemm_max_fraction_by_dtype": {"bf16": 0.9, "fp8": 0.9},
        "attention_max_fraction_by_dtype": {"bf16": 0.5, "fp8": 0.5},
    })
    moe = [dict(op="moe", tokens=t, hidden=4096, inter=14336, topk=2, num_experts=8, tp=1, ep=1, dtype="bf16")
           for t in (16, 256, 4096)]
    table = rows_table(gemm_rows(("bf16", "fp8")) + attention_rows() + moe)
    got = dtypes_kept_from_default(table, default, ["attention", "gemm", "moe"])
    # GEMMs in bf16 and fp8 (no fp4); MoE in bf16 only; attention bf16 over a bf16 cache (no fp8)
    assert got == {"attention": ["fp8"], "gemm": ["fp4"], "moe": ["fp8"]}
    assert dtypes_kept_from_default(table, default, ["moe"]) == {"moe": ["fp8"]}
    assert dtypes_kept_from_default(table, default.model_copy(update={"grouped_gemm_max_fraction_by_dtype":
                                                                       {"bf16": 0.9}}), ["moe"]) == {}
