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
