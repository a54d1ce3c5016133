"""Local profiling: timing helper, grids, the measured device spec and the long-format output."""

from __future__ import annotations

import numpy as np
import pytest

from infersim.errors import InfersimError
from infersim.fidelity import SCHEMA
from infersim.fidelity.kernels import predict
from infersim.fidelity.profile import GRIDS, grid, measure_local_spec, profile, time_kernel
from infersim.hardware.device import device_from_spec


def _fake_kernel(monkeypatch, cost_s):
    """(run, calls): a kernel whose call on copy i costs ``cost_s(i)`` on a fake clock."""
    now = [0.0]
    monkeypatch.setattr("infersim.fidelity.profile.time.perf_counter", lambda: now[0])
    calls = []

    def run(i):
        calls.append(i)
        now[0] += cost_s(i)

    return run, calls


def test_time_kernel_is_the_median_per_call(monkeypatch):
    # call i of a pass over the copies costs (i + 1) microseconds
    run, calls = _fake_kernel(monkeypatch, lambda i: (i + 1) * 1e-6)
    t = time_kernel(run, 4, warmup=1, repeats=3, min_sample_s=0.0, max_sample_s=1.0)
    assert t == pytest.approx((1 + 2 + 3 + 4) / 4 * 1e-6)  # per call, averaged over the copies
    assert calls.count(3) == 1 + 1 + 3  # one sizing pass, one warm-up sample, three timed samples
    # a long kernel is timed on fewer copies (a pass would exceed max_sample_s)
    calls.clear()
    time_kernel(run, 4, warmup=0, repeats=1, min_sample_s=0.0, max_sample_s=2.5e-6)
    assert max(calls) == 1


def test_grids_grow_and_unknown_grid_is_an_error():
    tiny, small, full = (grid(g) for g in GRIDS)
    assert len(tiny.gemm_m) * len(tiny.gemm_nk) < len(small.gemm_m) * len(small.gemm_nk) < \
        len(full.gemm_m) * len(full.gemm_nk)
    with pytest.raises(InfersimError, match="unknown grid 'huge'; expected one of tiny, small, full"):
        grid("huge")


def test_elementwise_profile_rows_are_long_format():
    t = profile("tiny", ops=("elementwise",), warmup=0, repeats=1, device_name="my-box")
    assert t.schema == SCHEMA
    assert set(t.column("op").to_pylist()) == {"elementwise"}
    assert set(t.column("device").to_pylist()) == {"my-box"}
    assert set(t.column("dtype").to_pylist()) == {"fp32"}
    lat = t.column("latency_s").to_numpy()
    assert np.all(lat > 0) and np.all(lat < 1.0)
    elems = t.column("tokens").to_numpy() * t.column("hidden").to_numpy()
    assert elems.max() <= grid("tiny").ew_max_elems


def test_bad_profile_options():
    with pytest.raises(InfersimError, match="--repeats"):
        profile("tiny", repeats=0)
    with pytest.raises(InfersimError, match="unknown kernel kind 'conv'"):
        profile("tiny", ops=("conv",))


def test_local_spec_is_measured_and_says_so():
    spec = measure_local_spec("bench-box", matmul_n=256, copy_bytes=8 << 20, repeats=2)
    assert spec.name == "bench-box" and spec.category == "cpu"
    assert spec.compute.dense_tflops["fp32"] > 0 and spec.memory.bandwidth_gb_per_s > 0
    assert "measured by infersim profile" in spec.compute.source
    assert "measured by infersim profile" in spec.memory.source
    assert "placeholder" in spec.scale_up.source and "placeholder" in spec.power.source
    dev = device_from_spec(spec)
    t = profile("tiny", ops=("elementwise",), warmup=0, repeats=1)
    assert np.all(np.isfinite(predict(t, dev)))


def test_passes_interleave_kernels_and_the_median_drops_a_slow_phase(monkeypatch):
    """Every kernel gets one sample per pass over the grid; a pass during which the machine ran
    3x slower costs each kernel one sample, which the median of three drops."""
    calls = []

    def fake_time_kernel(run, copies, *, warmup, repeats, plan=None, key=None, **_):
        calls.append(key)
        slow = 3.0 if len(calls) > 2 * len(grid_keys) else 1.0  # the third pass is slow
        return 1e-6 * (1 + grid_keys.index(key)) * slow

    g = grid("tiny")
    grid_keys = [(t, h) for t in g.ew_tokens for h in g.ew_hidden if t * h <= g.ew_max_elems]
    monkeypatch.setattr("infersim.fidelity.profile.time_kernel", fake_time_kernel)
    t = profile("tiny", ops=("elementwise",), warmup=0, repeats=3)
    assert calls == grid_keys * 3  # pass after pass, not kernel after kernel
    assert t.column("latency_s").to_pylist() == pytest.approx([1e-6 * (1 + i) for i in range(len(grid_keys))])


def test_time_kernel_sizes_a_sample_once_per_plan(monkeypatch):
    run, calls = _fake_kernel(monkeypatch, lambda i: 1e-6)
    plan: dict = {}
    time_kernel(run, 4, warmup=0, repeats=1, min_sample_s=0.0, max_sample_s=1.0, plan=plan, key="k")
    first = len(calls)  # warm call, timed call, sizing pass over the 4 copies, one sample
    assert plan == {"k": (4, 1)} and first == 1 + 1 + 4 + 4
    calls.clear()
    time_kernel(run, 4, warmup=0, repeats=1, min_sample_s=0.0, max_sample_s=1.0, plan=plan, key="k")
    assert len(calls) == 1 + 4  # a warm call and the sample: the plan is reused
