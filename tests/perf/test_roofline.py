import numpy as np
import pytest

from infersim.perf.efficiency import ramp_efficiency, wave_utilization
from infersim.perf.operators import OpBuilder, OpKind
from infersim.perf.roofline import Bound, cost_ops
from tests.perf.conftest import ideal


def gemm_table(ms, n=8192, k=8192):
    ms = np.asarray(ms, dtype=float)
    b = OpBuilder(ms.size)
    b.gemm("g", ms, n, k, weight_dtype_bytes=2, act_dtype_bytes=2, dtype="bf16")
    return b.build()


def test_ideal_roofline_is_max_of_compute_and_memory(ideal_h100):
    ms = np.array([1, 16, 64, 256, 1024, 4096])
    n = k = 8192
    costs = cost_ops(gemm_table(ms, n, k), ideal(ideal_h100, gemm_tile_m=1, gemm_tile_n=1))
    flops = 2.0 * ms * n * k
    byts = 2.0 * (n * k + ms * k + ms * n)
    expected = np.maximum(flops / 989.4e12, byts / 3350e9)
    assert np.allclose(costs.time_s[0], expected, rtol=1e-12)


def test_regime_switch_at_the_ridge_point(ideal_h100):
    # arithmetic intensity of a bf16 GEMM with weights dominating ~ m FLOP/byte; the ridge point of
    # an H100 is 989.4e12 / 3.35e12 = 295 FLOP/byte, so m ~ 295 separates the regimes
    dev = ideal(ideal_h100, gemm_tile_m=1, gemm_tile_n=1)
    n = k = 16384
    ms = np.arange(200, 400)
    costs = cost_ops(gemm_table(ms, n, k), dev)
    bound = costs.bound[0]
    switch = ms[np.argmax(bound == Bound.COMPUTE)]
    # solve 2 m n k / P = 2 (n k + m k + m n) / B exactly for m
    P, B = 989.4e12, 3350e9
    m_star = (n * k) / (n * k / (P / B) - k - n)
    assert bound[0] == Bound.MEMORY and bound[-1] == Bound.COMPUTE
    assert abs(switch - m_star) <= 1


def test_efficiency_is_size_dependent(h100):
    # small kernels run further below peak than large ones
    costs = cost_ops(gemm_table([8192], n=256, k=256), h100)
    small_eff = 2 * 8192 * 256 * 256 / costs.time_s[0, 0] / 989.4e12
    costs = cost_ops(gemm_table([8192], n=16384, k=16384), h100)
    large_eff = 2 * 8192 * 16384 * 16384 / costs.time_s[0, 0] / 989.4e12
    assert small_eff < 0.5 * large_eff
    assert large_eff <= h100.efficiency.compute_max_fraction + 1e-9


def test_ramp_efficiency_half_point():
    assert ramp_efficiency(2e9, 0.8, 2e9) == pytest.approx(0.4)
    assert ramp_efficiency(1e15, 0.8, 2e9) == pytest.approx(0.8, rel=1e-5)


def test_wave_quantization():
    # 132 SMs: 132 tiles = one full wave; 133 tiles = 2 waves, 133/264 busy
    assert wave_utilization(128 * 132, 128, 128, 128, 132) == pytest.approx(1.0)
    assert wave_utilization(128 * 133, 128, 128, 128, 132) == pytest.approx(133 / 264)


def test_kernel_overhead_added_per_launch(ideal_h100):
    dev = ideal(ideal_h100, kernel_overhead_us=5.0)
    b = OpBuilder(1)
    b.add("x", OpKind.ELEMENTWISE, kernels=3, act_bytes=3350e3)  # 1 us of traffic
    costs = cost_ops(b.build(), dev)
    assert costs.time_s[0, 0] == pytest.approx(1e-6 + 15e-6)


def test_elementwise_uses_vector_peak(ideal_h100):
    b = OpBuilder(1)
    b.add("x", OpKind.ELEMENTWISE, flops=67e12)
    assert cost_ops(b.build(), ideal_h100).time_s[0, 0] == pytest.approx(1.0)


def test_gemms_smaller_than_one_wave_are_not_charged_for_idle_units():
    # 2 output tiles on 132 SMs: split-K fills the machine, only the size ramp applies
    assert wave_utilization(64, 256, 128, 128, 132) == 1.0
    assert wave_utilization(128 * 132, 128, 128, 128, 132) == 1.0
