"""Waiting-time formulas (infersim.serving.queueing) against closed forms and against queues simulated
here by Lindley's recursion W_{n+1} = max(0, W_n + S_n - A_{n+1}), independent of the formulas."""

import math

import numpy as np
import pytest

from infersim.serving.queueing import (
    chunked_ttft_cdf,
    chunked_ttft_s,
    erlang_c,
    gap_survival,
    pooled_prefill_ttft_s,
    md1_tail,
    md1_wait_cdf,
    md1_wait_laplace_partial,
    welch_queue,
)


def _lindley(services: np.ndarray, gaps: np.ndarray) -> np.ndarray:
    w = np.zeros(services.size)
    for n in range(1, services.size):
        w[n] = max(0.0, w[n - 1] + services[n - 1] - gaps[n])
    return w[2000:]


@pytest.mark.parametrize("rho", [0.3, 0.6, 0.85])
def test_two_piece_md1_matches_a_simulated_md1(rho):
    rng = np.random.default_rng(7)
    n = 200_000
    w = _lindley(np.ones(n), rng.exponential(1.0 / rho, n))  # s = 1
    assert float(md1_wait_cdf(rho, 0.0)) == pytest.approx(1.0 - rho)
    for u in (0.25, 0.75, 1.5, 3.0):
        assert float(md1_wait_cdf(rho, u)) == pytest.approx((w <= u).mean(), abs=0.01)
        # H(u): the same sample, each wait weighted by exp(-rho w) (no arrival during it)
        h = np.mean(np.exp(-rho * w) * ((w > 0) & (w <= u)))
        assert float(md1_wait_laplace_partial(rho, u)) == pytest.approx(h, abs=0.01)


def test_md1_closed_forms_by_hand():
    rho = 0.5
    a, g = md1_tail(rho)
    assert float(a) == pytest.approx(1.0 - 0.5 * math.exp(0.5))  # Erlang's P(W > s)
    # the tail's mean plus the first interval's is Pollaczek-Khinchine's rho / (2 (1 - rho)) = 0.5
    first = 1.0 - 0.5 * (math.exp(0.5) - 1.0) / 0.5
    assert first + float(a / g) == pytest.approx(0.5)
    # H(inf) = E[exp(-lambda W); W > 0]: the M/D/1 Laplace transform at lambda, (1 - rho) e^rho, less 1 - rho
    assert float(md1_wait_laplace_partial(rho, 1.0)) == pytest.approx(0.5 * 0.5 * 1.0)  # rho (1 - rho) u
    h_inf = float(md1_wait_laplace_partial(rho, np.inf))
    assert h_inf == pytest.approx(0.5 * (math.exp(0.5) - 1.0), rel=0.03)


def test_welch_exceptional_first_service_matches_a_simulation():
    lam, s, s0 = 2.0, 0.2, 0.35
    rho_e, s_e = welch_queue(lam * s, lam, s, s0)
    rng = np.random.default_rng(3)
    n = 200_000
    gaps = rng.exponential(1.0 / lam, n)
    w = np.zeros(n)
    served = np.zeros(n)
    for k in range(1, n):
        w[k] = max(0.0, w[k - 1] + served[k - 1] - gaps[k]) if k > 1 else max(0.0, s0 - gaps[k])
        served[k] = s0 if w[k] == 0.0 else s
    served[0] = s0
    w = w[2000:]
    assert float(rho_e) == pytest.approx((w > 0).mean(), abs=0.01)  # 1 - pi0
    assert float(rho_e * s_e / (2 * (1 - rho_e))) == pytest.approx(w.mean(), rel=0.04)  # the mean wait


def test_chunked_ttft_without_queueing_is_the_own_prefill_plus_the_running_step():
    kw = dict(rate=1e-9, queue_s=0.1, scv=1.0, s_lo=0.2, s_hi=0.3, residual_s=0.01, before_last_s=0.1)
    # lambda -> 0: nobody waits, nobody shares: TTFT = residual + s_lo
    assert float(chunked_ttft_s(0.5, rho=1e-10, **kw)) == pytest.approx(0.21, rel=1e-4)
    assert float(chunked_ttft_s(None, rho=1e-10, **kw)) == pytest.approx(0.21, rel=1e-4)


def test_chunked_ttft_quantiles_match_a_simulated_prompt_queue():
    """Prompts of one prefill time s (no batching, no decode step): a plain M/D/1 whose TTFT is s + W;
    s_hi == s_lo removes the shared-step mixture, and the busy period's first service equals s."""
    lam, s = 3.0, 0.2
    rng = np.random.default_rng(11)
    n = 200_000
    w = _lindley(np.full(n, s), rng.exponential(1.0 / lam, n))
    kw = dict(rho=lam * s, rate=lam, queue_s=s, scv=1.0, s_lo=s, s_hi=s, residual_s=0.0, before_last_s=0.0)
    for q in (0.5, 0.9, 0.99):
        assert float(chunked_ttft_s(q, **kw)) == pytest.approx(s + np.quantile(w, q), rel=0.05)
    assert float(chunked_ttft_s(None, **kw)) == pytest.approx(s + w.mean(), rel=0.03)
    # the CDF is a CDF: nondecreasing from 0 to 1
    x = np.linspace(0.0, 3.0, 301)
    f = chunked_ttft_cdf(x, **kw)
    assert f[0] == 0.0 and np.all(np.diff(f) >= -1e-12) and f[-1] == pytest.approx(1.0, abs=1e-3)


def test_erlang_c_and_gap_survival_by_hand():
    # M/M/2 at a = 1 erlang: B(2, 1) = (1/2) / (1 + 1 + 1/2) = 0.2, C = 0.2 / (1 - 0.5 x 0.8) = 1/3
    assert float(erlang_c(2, 1.0)) == pytest.approx(1.0 / 3.0)
    assert float(erlang_c(1, 0.7)) == pytest.approx(0.7)  # one server: P(wait) = rho
    assert float(erlang_c(3, 3.5)) == 1.0  # overloaded
    # Erlang-2 gaps of mean 0.5 s (rate 2/s, SCV 1/2): P(gap > t) = e^(-4t) (1 + 4t)
    assert float(gap_survival(0.5, 2.0, 0.5)) == pytest.approx(math.exp(-2.0) * 3.0)
    assert float(gap_survival(0.5, 2.0, 1.0)) == pytest.approx(math.exp(-1.0))  # Poisson


def test_pooled_prefill_with_one_server_is_pollaczek_khinchine():
    # one server, every prompt its own step s (first service = regular), no batching extra:
    # mean TTFT = s + rho s / (2 (1 - rho)), P(TTFT = s) = 1 - rho
    lam, s = 3.0, 0.2
    kw = dict(rho=lam * s, rate=lam, queue_s=s, service_s=s, servers=1)
    assert float(pooled_prefill_ttft_s(None, **kw)) == pytest.approx(s + 0.6 * s / (2 * 0.4))
    assert float(pooled_prefill_ttft_s(0.3, **kw)) == pytest.approx(s)
    # more servers sharing the same per-server load wait less (Erlang C falls with c)
    assert float(pooled_prefill_ttft_s(0.9, **{**kw, "servers": 4})) < float(pooled_prefill_ttft_s(0.9, **kw))
