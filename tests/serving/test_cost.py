"""The simulator's step costs equal the foundation's StepTimeModel (public API) to rounding."""

import numpy as np
import pytest

from infersim.hardware import get_device
from infersim.models import get_model
from infersim.perf.parallel import Parallelism, Precision
from infersim.perf.step_time import StepTimeModel
from infersim.serving.cost import StepCost


@pytest.mark.parametrize("model,device,par,prec", [
    ("llama-3.1-8b", "h100-sxm", Parallelism(), Precision()),
    ("llama-2-70b", "a100-sxm-80gb", Parallelism(tp=2), Precision()),
    ("mixtral-8x7b", "h200", Parallelism(tp=2, pp=2), Precision(kv_cache="fp8")),
    ("deepseek-v3", "h200", Parallelism(tp=8, ep=8), Precision(weight="fp8")),
    ("gemma-2-9b", "h100-sxm", Parallelism(), Precision()),
])
def test_step_cost_equals_step_time_model(model, device, par, prec):
    stm = StepTimeModel(get_model(model), get_device(device), par, prec)
    cost = StepCost(stm, max_context_tokens=20000)
    rng = np.random.default_rng(5)
    rows, want = [], []
    for _ in range(40):
        n_pre, n_dec = int(rng.integers(0, 4)), int(rng.integers(1, 200))
        chunks = rng.integers(1, 2000, n_pre)
        pasts = rng.integers(0, 15000, n_pre)
        ctx = rng.integers(1, 20000, n_dec)
        loads = stm.loads_for(chunks, pasts, ctx)
        pt = int(chunks.sum())
        exact = stm.step_time_s(pt, n_pre, n_dec, loads)
        if cost.full_attention:
            assert cost.time_full(pt, n_pre, n_dec, *loads[None]) == pytest.approx(exact, rel=1e-12)
            decode_only = stm.step_time_s(0, 0, n_dec, {None: (0.0, 0.0, 0.0, loads[None][3])})
            assert cost.decode_time(n_dec, loads[None][3]) == pytest.approx(decode_only, rel=1e-10)
        else:
            assert cost.time_loads(pt, n_pre, n_dec, loads) == exact
        rows.append((pt, n_pre, n_dec, [x for w in stm.windows for x in loads[w]]))
        want.append(stm.step_work(pt, n_pre, n_dec, loads))
    flops, nbytes = cost.work(np.array([r[0] for r in rows]), np.array([r[1] for r in rows]),
                              np.array([r[2] for r in rows]), np.array([r[3] for r in rows]))
    np.testing.assert_allclose(flops, [w[0] for w in want], rtol=1e-9)
    np.testing.assert_allclose(nbytes, [w[1] for w in want], rtol=1e-9)


def test_decode_line_is_exact_on_a_dense_grid():
    """Every integer x of a batch's range, not just random points (the bisection bound is 2e-12)."""
    stm = StepTimeModel(get_model("llama-3.1-8b"), get_device("h100-sxm"))
    cost = StepCost(stm, max_context_tokens=3000)
    for b in (1, 7, 64):
        xs = np.unique(np.linspace(b, b * 3000, 4000).astype(int))
        exact = np.array([stm.step_time_s(0, 0, b, {None: (0.0, 0.0, 0.0, float(x))}) for x in xs])
        got = np.array([cost.decode_time(b, float(x)) for x in xs])
        np.testing.assert_allclose(got, exact, rtol=1e-11)
        segs = cost.decode_segments(b)
        assert segs[0][0] == b and segs[-1][1] == b * 3000
        assert all(s[1] == t[0] for s, t in zip(segs, segs[1:]))  # contiguous pieces


def test_steps_before_the_horizon_closed_form():
    """Steps with durations a + c i starting at t: the count starting before a horizon, by brute force."""
    from infersim.serving.replica import steps_before

    rng = np.random.default_rng(2)
    for _ in range(300):
        t, a, c = rng.uniform(0, 100), rng.uniform(1e-3, 0.1), rng.choice([0.0, rng.uniform(0, 1e-4)])
        n = int(rng.integers(1, 400))
        horizon = t + rng.uniform(0, 1.2) * (n * a + c * n * n / 2)
        starts = t + np.arange(n) * a + c * (np.arange(n) * (np.arange(n) - 1) / 2)
        assert steps_before(t, a, c, horizon, n) == max(1, int((starts < horizon).sum())) or horizon <= t
    assert steps_before(5.0, 1.0, 0.0, 5.0, 10) == 0  # nothing starts at or after the horizon
    assert steps_before(0.0, 1.0, 0.0, 3.0, 10) == 3  # starts 0, 1, 2
    assert steps_before(0.0, 1.0, 0.5, 3.0, 10) == 3  # starts 0, 1, 2.5 (next 4.5)


def test_compiled_row_roofline_equals_the_interpreted_one_bit_for_bit():
    """The generated fast path does the interpreted loop's operations in the same order."""
    import numpy as np

    from infersim.hardware import get_device
    from infersim.models import get_model
    from infersim.perf.parallel import Parallelism, Precision
    from infersim.perf.step_time import StepTimeModel
    from infersim.serving.cost import _RowRoofline

    for model, par in (("llama-2-70b", Parallelism(tp=2)), ("deepseek-v3", Parallelism(tp=8, ep=8))):
        # the compiled rows cover the plain roofline (the spec-sheet model); devices with block terms fall back
        rows = _RowRoofline(StepTimeModel(get_model(model), get_device("h100-sxm", efficiency="spec"), par,
                                          Precision(weight="fp8")))
        rng = np.random.default_rng(7)
        for _ in range(2000):
            pt = int(rng.integers(0, 900))
            ps = int(rng.integers(1, 4)) if pt else 0
            b = int(rng.integers(0 if pt else 1, 300))
            pairs = float(rng.random() * 1e6)
            args = (pt, ps, b, pairs, 1.5 * pairs, float(rng.random() * 1e4), float(rng.random() * 1e6) if b else 0.0)
            assert rows.time(*args) == rows.time_interpreted(*args)
