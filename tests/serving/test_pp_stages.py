"""Pipeline-parallel replicas: when the virtual-engine model equals micro-batches flowing through stages
(infersim.serving.pp_stages), checked by hand and against the flow shop simulated step by step."""

import numpy as np
import pytest

from infersim.serving.pp_stages import flow_shop_finish_s, lockstep_slowdown


@pytest.mark.parametrize("pp", [2, 4])
def test_equal_steps_flow_without_a_bubble(pp):
    """Equal step times: every engine steps every t through the shared stages, as independent engines do."""
    t = 0.04
    done = flow_shop_finish_s(np.full((50, pp), t), pp)
    rounds = np.diff(done, axis=0)
    assert np.allclose(rounds, t)  # each engine's step interval is its own step time
    # engine k's first step leaves the pipeline k stage-times after engine 0's (staggered, no overlap)
    assert np.allclose(done[0], t + np.arange(pp) * t / pp)


def test_a_long_step_holds_every_engine():
    """pp = 2, engine 0 prefilling (200 ms) beside engine 1 decoding (40 ms): by hand, stage 0 holds
    engine 0 for 100 ms, then engine 1 for 20 ms; engine 1's micro-batch waits at stage 1 until engine 0's
    leaves at 200 ms. Both engines then step every 200 ms: the slower step sets the round."""
    done = flow_shop_finish_s(np.tile([0.2, 0.04], (6, 1)), 2)
    assert done[0, 0] == pytest.approx(0.2) and done[0, 1] == pytest.approx(0.22)
    assert np.allclose(np.diff(done, axis=0), 0.2)


@pytest.mark.parametrize("pp,p", [(2, 0.1), (2, 0.4), (4, 0.2)])
def test_lockstep_slowdown_matches_the_flow_shop(pp, p):
    rng = np.random.default_rng(5)
    t_d, t_m = 0.03, 0.12
    steps = np.where(rng.random((20_000, pp)) < p, t_m, t_d)
    done = flow_shop_finish_s(steps, pp)
    coupled = (done[-1] - done[0]).mean() / (steps.shape[0] - 1)  # mean step interval through the stages
    independent = steps.mean()
    bound = float(lockstep_slowdown((steps == t_m).mean(), t_m, t_d, pp))  # at the sample's mixed fraction
    assert coupled / independent > 1.05  # the stages cost throughput whenever steps differ
    assert coupled / independent <= bound * 1.01  # E[max] / E[t] bounds it (whole-round lockstep)
    assert coupled / independent == pytest.approx(bound, rel=0.06)
    assert float(lockstep_slowdown(p, t_m, t_d, 1)) == pytest.approx(1.0)
    assert float(lockstep_slowdown(p, t_d, t_d, pp)) == pytest.approx(1.0)


def test_lockstep_steps_by_hand():
    """Three kinds, pp = 2 (one other engine): t = 1, 2, 4 with shares 0.5, 0.3, 0.2. A step of 1 lasts
    1 + 0.3 * 1 + 0.2 * 3 = 1.9; of 2: 2 + 0.2 * 2 = 2.4; of 4: 4. The mean, 0.5 * 1.9 + 0.3 * 2.4 + 0.2 * 4
    = 2.47, is E[max] of two draws: 1 * 0.25 + 2 * (0.64 - 0.25) + 4 * (1 - 0.64) = 2.47."""
    from infersim.serving.pp_stages import lockstep_steps_s

    out = lockstep_steps_s([1.0, 2.0, 4.0], [0.5, 0.3, 0.2], 2)
    assert [float(x) for x in out] == pytest.approx([1.9, 2.4, 4.0])
    # two kinds: the mean over the kinds is lockstep_slowdown's E[max]
    p, t_m, t_d = 0.3, 0.12, 0.03
    e_d, e_m = lockstep_steps_s([t_d, t_m], [1 - p, p], 4)
    assert float((1 - p) * e_d + p * e_m) / (t_d + p * (t_m - t_d)) == pytest.approx(
        float(lockstep_slowdown(p, t_m, t_d, 4)))
    assert [float(x) for x in lockstep_steps_s([t_d, t_m], [1 - p, p], 1)] == [t_d, t_m]


def _markov_steps(n, f, p_hh, t_l, t_h, seed=1):
    """``n`` step times in the order they enter the stages, heavy (t_h) after heavy with probability
    p_hh, after light with p_lh = f (1 - p_hh) / (1 - f) (stationary share f)."""
    rng = np.random.default_rng(seed)
    p_lh = f * (1 - p_hh) / (1 - f)
    heavy = np.zeros(n, dtype=bool)
    u = rng.random(n)
    for j in range(1, n):
        heavy[j] = u[j] < (p_hh if heavy[j - 1] else p_lh)
    return np.where(heavy, t_h, t_l), heavy


@pytest.mark.parametrize("f, p_hh", [(0.28, 0.5), (0.2, 0.2), (0.4, 0.7)])
def test_chained_lockstep_is_the_two_engine_flow_shop(f, p_hh):
    """pp = 2: the flow shop on a Markov chain of heavy and light micro-batches (alternating engines):
    the mean period and the mean duration of each kind (finish minus the engine's previous finish) are
    the closed forms of chained_lockstep_steps_s."""
    from infersim.serving.pp_stages import chained_lockstep_steps_s

    t_l, t_h = 0.03, 0.15
    steps, heavy = _markov_steps(40_000, f, p_hh, t_l, t_h)
    done = flow_shop_finish_s(steps.reshape(-1, 2), 2).ravel()
    elapsed = done[2:] - done[:-2]  # engine of micro-batch j: its previous one is j - 2
    (light,), heavy_s = chained_lockstep_steps_s([t_l], [1 - heavy.mean()], t_h, heavy.mean(), p_hh, 2)
    assert elapsed[~heavy[2:]].mean() == pytest.approx(float(light), rel=0.02)
    assert elapsed[heavy[2:]].mean() == pytest.approx(float(heavy_s), rel=0.02)
    assert (done[-1] - done[0]) / (done.size - 1) * 2 == pytest.approx(
        t_l + heavy.mean() * (2 - p_hh) * (t_h - t_l), rel=0.02)  # per engine: two micro-batches a period
    # independent draws (p_hh = f): the lockstep E[max] of two
    if p_hh == f:
        (light,), heavy_s = chained_lockstep_steps_s([t_l], [1 - f], t_h, f, p_hh, 2)
        assert float(light) * (1 - f) + float(heavy_s) * f == pytest.approx(
            t_l + (1 - (1 - f) ** 2) * (t_h - t_l), rel=1e-9)
