"""The closed-form serving model under load (infersim.serving.loaded), checked by hand and against the
discrete-event simulator on a deterministic arrival stream."""

import math

import numpy as np
import pytest

from infersim.hardware import get_device
from infersim.models import get_model
from infersim.perf.graph import GraphOptions
from infersim.perf.parallel import Parallelism, Precision
from infersim.perf.step_time import StepTimeModel
from infersim.serving import simulate, summarize, validate_scenario
from infersim.serving.queueing import md1_mean_wait_s, md1_wait_quantile_s
from infersim.serving.loaded import (
    colocated_curve,
    decode_curve,
    server_kv_tokens,
    stationary_rate,
    unique_rows,
)


def test_unique_rows_matches_numpy_unique():
    # repeated rows (ints stored as floats, halves, a 0 and -0) against numpy's own row dedupe
    rng = np.random.default_rng(3)
    rows = rng.integers(0, 3, size=(500, 5)).astype(np.float64) / 2.0
    rows[7] = [-0.0, 0.0, 0.0, 0.0, 0.0]
    distinct, where = unique_rows(rows)
    want, inverse = np.unique(rows, axis=0, return_inverse=True)
    np.testing.assert_array_equal(distinct, want)
    np.testing.assert_array_equal(where, inverse.ravel())
    np.testing.assert_array_equal(distinct[where], rows)
    assert len(unique_rows(np.zeros((0, 5)))[0]) == 0


def test_stationary_rate_by_hand():
    # B = 10 decoding, O = 101 (100 decode steps), t_d = 10 ms, one interrupt of +50 ms per request:
    # per request 100 decode steps carry 10 sequences each; lambda = 10 / (100 x 0.01 + 10 x 0.05) = 6.667/s
    rate = stationary_rate(10.0, 101, 0.01, 0.05, 1.0)
    assert rate == pytest.approx(10.0 / 1.5)
    # Little's law: B = lambda x (time in decode) = lambda x (O - 1) x TPOT, TPOT = t_d + B x 0.05 / 100
    tpot = 0.01 + 10 * 0.05 / 100
    assert rate * 100 * tpot == pytest.approx(10.0)


def test_md1_waiting_time_by_hand():
    # Pollaczek-Khinchine, M/D/1 at rho = 0.5, s = 100 ms: W_q = 0.5 x 0.1 / (2 x 0.5) = 50 ms
    assert float(md1_mean_wait_s(0.5, 0.1)) == pytest.approx(0.05)
    # tail: P(W > w) = rho exp(-w / (W_q / rho)); p90: 0.1 ln(0.5 / 0.1)
    assert float(md1_wait_quantile_s(0.5, 0.1, 0.9)) == pytest.approx(0.1 * math.log(5.0))
    assert float(md1_wait_quantile_s(0.5, 0.1, 0.4)) == 0.0  # 60% of requests do not wait
    assert math.isinf(float(md1_mean_wait_s(1.0, 0.1)))


SETUP = dict(model="llama-3.1-8b", device="h100-sxm")


def _curve(i, o, budget, cap=256):
    model, device = get_model(SETUP["model"]), get_device(SETUP["device"])
    par, prec = Parallelism(), Precision()
    kv = server_kv_tokens(model, device, par, prec, token_budget=budget, max_batch=cap, memory_utilization=0.9)
    return colocated_curve(model, device, par, prec, GraphOptions(), input_tokens=[i], output_tokens=[o],
                           token_budget=[budget], max_batch=[cap], kv_tokens=[kv])


def test_one_column_by_hand_from_the_step_model():
    """A column of the colocated curve recomputed from StepTimeModel step times and the formulas."""
    i, o, budget = 1024, 129, 4096
    curve = _curve(i, o, budget)
    j = 20
    b = float(curve.batch[0, j])
    stm = StepTimeModel(get_model(SETUP["model"]), get_device(SETUP["device"]))
    ctx = i + o / 2
    # a step of float batch b: interpolate the step model between the integer batches around it
    lo, hi = math.floor(b), math.ceil(b)

    def at(f):
        return f(lo) + (f(hi) - f(lo)) * (b - lo) if hi > lo else f(lo)

    t_d = at(lambda n: stm.step_time_for([], [], [ctx] * n))
    t_m = at(lambda n: stm.step_time_for([i], [0], [ctx] * n))  # the whole prompt fits the budget: k = 1
    rate = b / ((o - 1) * t_d + b * (t_m - t_d))
    assert float(curve.rate_rps[0, j]) == pytest.approx(rate, rel=2e-3)
    assert float(curve.tpot_s[0, j]) == pytest.approx(b / (rate * (o - 1)), rel=2e-3)
    assert float(curve.service_s[0, j]) == pytest.approx(t_m, rel=2e-3)


def test_deterministic_stream_matches_the_simulator():
    """Constant arrivals (no queueing): the stationary batch (Little's law on the simulated TPOT) and the
    TTFT (the prompt's step plus half a running decode step) agree with the discrete-event simulation."""
    i, o, budget, rate = 1024, 129, 4096, 4.0
    curve = _curve(i, o, budget)
    b_static = float(curve.at_rate(rate, curve.batch)[0])
    tpot_static = float(curve.at_rate(rate, curve.tpot_s)[0])
    assert b_static == pytest.approx(rate * (o - 1) * tpot_static, rel=0.01)  # Little's law on the curve
    ttft_static = float(curve.at_rate(rate, curve.service_s + curve.residual_s)[0])  # no wait: D/D/1
    sc = validate_scenario({
        "name": "det", "seed": 0, "model": SETUP["model"], "hardware": SETUP["device"],
        "runtime": "none",  # the curve above is built from kernel step times alone
        "scheduler": {"policy": "chunked", "max_num_seqs": 256, "max_num_batched_tokens": budget},
        "workload": {"requests": 400, "arrival": {"process": "constant", "rate": rate},
                     "input_tokens": {"dist": "fixed", "value": i}, "output_tokens": {"dist": "fixed", "value": o}}},
        "<test>")
    s = summarize(simulate(sc))
    b_sim = rate * (o - 1) * s.tpot_s["mean"]  # Little's law on the simulation
    assert b_static == pytest.approx(b_sim, rel=0.05)
    assert tpot_static == pytest.approx(s.tpot_s["p50"], rel=0.05)
    assert ttft_static == pytest.approx(s.ttft_s["p50"], rel=0.15)


def test_decode_curve_is_littles_law_on_decode_steps():
    model, device = get_model(SETUP["model"]), get_device(SETUP["device"])
    curve = decode_curve(model, device, Parallelism(), Precision(), GraphOptions(), input_tokens=[2048],
                         output_tokens=[257], max_batch=[64], kv_tokens=[1e7])
    stm = StepTimeModel(model, device)
    b = curve.batch[0, -1]  # 64: the cap (the KV cache holds more)
    assert b == pytest.approx(64.0)
    t_d = stm.step_time_for([], [], [2048 + 257 / 2] * 64)
    assert float(curve.rate_rps[0, -1]) == pytest.approx(64 / (256 * t_d), rel=1e-6)
    assert np.all(np.diff(curve.rate_rps[0]) > 0)
