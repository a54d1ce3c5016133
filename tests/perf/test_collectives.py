import dataclasses
import math

import numpy as np
import pytest

from infersim.perf import collectives as c
from infersim.perf.operators import Collective, OpKind
from tests.perf.conftest import ideal


def test_ring_all_reduce_closed_form():
    # 1 GB over 8 devices, 2 us per step, 360 GB/s: 2*7*2us + 2*(7/8)*1e9/360e9
    t = c.ring_all_reduce_s(1e9, 8, 2e-6, 360e9)
    assert t == pytest.approx(2 * 7 * 2e-6 + 2 * 7 / 8 * 1e9 / 360e9)


def test_tree_all_reduce_closed_form():
    t = c.tree_all_reduce_s(1e9, 8, 2e-6, 360e9)
    assert t == pytest.approx(2 * 3 * 2e-6 + 2 * 1e9 / 360e9)


def test_all_reduce_picks_tree_for_small_ring_for_large_messages():
    # small message: latency dominates, log2(p) steps win; large: ring's (p-1)/p factor wins
    p, a, bw = 64, 5e-6, 50e9
    small, large = 1e3, 1e10
    assert c.all_reduce_s(small, p, a, bw) == pytest.approx(c.tree_all_reduce_s(small, p, a, bw))
    assert c.all_reduce_s(large, p, a, bw) == pytest.approx(c.ring_all_reduce_s(large, p, a, bw))
    assert c.tree_all_reduce_s(small, p, a, bw) < c.ring_all_reduce_s(small, p, a, bw)
    assert c.ring_all_reduce_s(large, p, a, bw) < c.tree_all_reduce_s(large, p, a, bw)


def test_all_gather_reduce_scatter_all_to_all_and_p2p():
    n, p, a, bw = 8e6, 4, 1e-6, 100e9
    expected = 3 * a + 0.75 * n / bw
    assert c.all_gather_s(n, p, a, bw) == pytest.approx(expected)
    assert c.reduce_scatter_s(n, p, a, bw) == pytest.approx(expected)
    assert c.all_to_all_s(n, p, a, bw) == pytest.approx(expected)
    assert c.send_recv_s(n, a, bw) == pytest.approx(a + n / bw)


def test_reduce_scatter_plus_all_gather_equals_ring_all_reduce():
    # the ring all-reduce *is* a reduce-scatter followed by an all-gather
    n, a, bw = np.array([1e3, 1e6, 1e9]), 3e-6, 200e9
    for p in (2, 4, 8, 16):
        assert np.allclose(c.reduce_scatter_s(n, p, a, bw) + c.all_gather_s(n, p, a, bw),
                           c.ring_all_reduce_s(n, p, a, bw))


def test_single_device_collectives_are_free():
    for f in (c.ring_all_reduce_s, c.tree_all_reduce_s, c.all_gather_s, c.all_to_all_s):
        assert f(1e9, 1, 1e-6, 1e9) == 0.0


def test_vectorized_over_messages():
    n = np.logspace(3, 10, 50)
    t = c.all_reduce_s(n, 8, 2e-6, 360e9)
    assert t.shape == (50,)
    assert np.all(np.diff(t) > 0)


def test_group_inside_scale_up_domain_uses_nvlink(h100):
    dev = ideal(h100)
    t = c.collective_time_s(Collective.ALL_REDUCE, 1e9, 8, dev)
    up = dev.scale_up
    assert t == pytest.approx(min(c.ring_all_reduce_s(1e9, 8, up.latency_s, up.bandwidth_bytes_per_s),
                                  c.tree_all_reduce_s(1e9, 8, up.latency_s, up.bandwidth_bytes_per_s)))


def test_group_beyond_domain_is_hierarchical_and_slower(h100):
    dev = ideal(h100)
    n = 1e9
    t16 = float(c.collective_time_s(Collective.ALL_REDUCE, n, 16, dev))
    up, out = dev.scale_up, dev.scale_out
    expected = (c.all_gather_s(n, 8, up.latency_s, up.bandwidth_bytes_per_s) * 2
                + c.all_reduce_s(n / 8, 2, out.latency_s, out.bandwidth_bytes_per_s))
    assert t16 == pytest.approx(expected)
    assert t16 > float(c.collective_time_s(Collective.ALL_REDUCE, n, 8, dev))


def test_hierarchical_all_to_all_is_bound_by_the_slower_link(h100):
    dev = ideal(h100)
    n, p, d = 1e8, 16, 8
    up, out = dev.scale_up, dev.scale_out
    inside = (d - 1) * up.latency_s + n * (d - 1) / p / up.bandwidth_bytes_per_s
    outside = (p - d) * out.latency_s + n * (p - d) / p / out.bandwidth_bytes_per_s
    assert float(c.collective_time_s(Collective.ALL_TO_ALL, n, p, dev)) == pytest.approx(max(inside, outside))
    assert math.isclose(max(inside, outside), outside)  # IB (50 GB/s) is the bottleneck


def _with_group_factors(dev, factors):
    eff = dev.efficiency.model_copy(update={"collective_bandwidth_fraction_by_group_size": factors})
    return dataclasses.replace(dev, efficiency=eff)


def test_group_size_factor_interpolates_in_log2_and_clamps(h100):
    eff = _with_group_factors(ideal(h100), {2: 1.0, 8: 0.25}).efficiency
    assert eff.collective_group_factor(2) == 1.0
    assert eff.collective_group_factor(4) == pytest.approx(0.625)  # log2 4 is halfway from 1 to 3
    assert eff.collective_group_factor(16) == 0.25 and eff.collective_group_factor(1) == 1.0
    assert ideal(h100).efficiency.collective_group_factor(8) == 1.0  # none listed


def test_group_size_factor_scales_the_scale_up_bandwidth_only(h100):
    """A 4-GPU ring on a shared fabric at factor 0.3: the closed form at 0.3x the link; a
    hierarchical 16-GPU all-reduce scales its intra-domain (8-GPU) legs, not the scale-out one."""
    dev = _with_group_factors(ideal(h100), {2: 1.0, 4: 0.3, 8: 0.1})
    up, out = dev.scale_up, dev.scale_out
    n = 1e9
    assert float(c.collective_time_s(Collective.ALL_GATHER, n, 4, dev)) == pytest.approx(
        c.all_gather_s(n, 4, up.latency_s, 0.3 * up.bandwidth_bytes_per_s))
    t16 = float(c.collective_time_s(Collective.ALL_REDUCE, n, 16, dev))
    expected = (c.all_gather_s(n, 8, up.latency_s, 0.1 * up.bandwidth_bytes_per_s) * 2
                + c.all_reduce_s(n / 8, 2, out.latency_s, out.bandwidth_bytes_per_s))
    assert t16 == pytest.approx(expected)
    assert float(c.collective_time_s(Collective.SEND_RECV, n, 2, dev, cross_domain=True)) == pytest.approx(
        c.send_recv_s(n, out.latency_s, out.bandwidth_bytes_per_s))


@pytest.mark.parametrize("factors,match", [({1: 0.5}, "at least 2"), ({4: 0.0}, r"\(0, 2\]"), ({4: 3.0}, r"\(0, 2\]")])
def test_group_size_factor_rejects_bad_entries(factors, match):
    from pydantic import ValidationError

    from infersim.hardware.schema import EfficiencySpec
    with pytest.raises(ValidationError, match=match):
        EfficiencySpec(collective_bandwidth_fraction_by_group_size=factors)


def test_per_kind_latency_and_call_cost(h100):
    """A latency and call cost per collective kind replace the shared ones for that kind only: an
    8-GPU 16 KiB all-gather and all-reduce costed by hand with the alpha-beta formulas."""
    from infersim.perf.operators import OpBuilder
    from infersim.perf.roofline import cost_ops

    dev = ideal(h100, collective_latency_us=1.0, collective_overhead_us=10.0,
                collective_latency_us_by_kind={"all-reduce": 0.25}, collective_overhead_us_by_kind={"all-reduce": 2.0})
    n, bw = 16384.0, dev.scale_up.bandwidth_bytes_per_s
    b = OpBuilder(1)
    b.add("ar", OpKind.COLLECTIVE, dtype="bf16", collective=Collective.ALL_REDUCE, comm_bytes=n, group_size=8)
    b.add("ag", OpKind.COLLECTIVE, dtype="bf16", collective=Collective.ALL_GATHER, comm_bytes=n, group_size=8)
    t = cost_ops(b.build(), dev).time_s[:, 0]
    assert t[0] == pytest.approx(c.all_reduce_s(n, 8, 0.25e-6, bw) + 2.0e-6)
    assert t[1] == pytest.approx(c.all_gather_s(n, 8, 1.0e-6, bw) + 10.0e-6)
    eff = dev.efficiency.collectives
    assert eff.latency_for("all-to-all") == 1.0 and eff.overhead_for("all-reduce") == 2.0


@pytest.mark.parametrize("field,value,match", [
    ("collective_latency_us_by_kind", {"broadcast": 1.0}, "unknown collective"),
    ("collective_overhead_us_by_kind", {"all-reduce": -1.0}, ">= 0")])
def test_per_kind_costs_reject_bad_entries(field, value, match):
    from pydantic import ValidationError

    from infersim.hardware.schema import EfficiencySpec
    with pytest.raises(ValidationError, match=match):
        EfficiencySpec(**{field: value})
