"""Workloads: arrival processes, length distributions, trace replay, prefixes, reproducibility."""

import numpy as np
import pytest

from infersim.serving.workload import build_workload

from ._util import scenario, trace_scenario


def wl(arrival=None, inp=None, out=None, n=20000, seed=3, prefix=None):
    w = {"requests": n, "arrival": arrival or {"process": "poisson", "rate": 4.0},
         "input_tokens": inp or {"dist": "fixed", "value": 10}, "output_tokens": out or {"dist": "fixed", "value": 5}}
    if prefix:
        w["prefix"] = prefix
    return build_workload(scenario(seed=seed, workload=w))


def test_same_seed_same_requests_to_the_byte():
    a, b = wl(seed=11), wl(seed=11)
    for key in ("arrival_s", "input_tokens", "output_tokens", "prefix_group"):
        assert getattr(a, key).tobytes() == getattr(b, key).tobytes()
    assert wl(seed=12).arrival_s.tobytes() != a.arrival_s.tobytes()


def test_streams_are_independent():
    """Changing the output distribution leaves the arrivals and prompts unchanged."""
    a = wl(inp={"dist": "uniform", "min": 1, "max": 100}, out={"dist": "fixed", "value": 5})
    b = wl(inp={"dist": "uniform", "min": 1, "max": 100}, out={"dist": "lognormal", "median": 50, "sigma": 1})
    assert a.arrival_s.tobytes() == b.arrival_s.tobytes()
    assert a.input_tokens.tobytes() == b.input_tokens.tobytes()


def test_poisson_rate_and_exponential_gaps():
    w = wl({"process": "poisson", "rate": 4.0}, n=40000)
    gaps = np.diff(np.concatenate([[0.0], w.arrival_s]))
    # mean 1/rate and CV 1 of exponential gaps; 40k samples: standard error 0.5%
    assert gaps.mean() == pytest.approx(0.25, rel=0.02)
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, rel=0.03)


def test_gamma_has_the_requested_cv():
    w = wl({"process": "gamma", "rate": 2.0, "cv": 3.0}, n=40000)
    gaps = np.diff(np.concatenate([[0.0], w.arrival_s]))
    assert gaps.mean() == pytest.approx(0.5, rel=0.05)
    assert gaps.std() / gaps.mean() == pytest.approx(3.0, rel=0.08)


def test_constant_rate_is_exact():
    w = wl({"process": "constant", "rate": 8.0}, n=5)
    assert w.arrival_s.tolist() == [0.125, 0.25, 0.375, 0.5, 0.625]


def test_length_distributions():
    u = wl(inp={"dist": "uniform", "min": 3, "max": 7}).input_tokens
    assert u.min() == 3 and u.max() == 7 and set(np.unique(u)) == {3, 4, 5, 6, 7}
    ln = wl(inp={"dist": "lognormal", "median": 400, "sigma": 0.8, "min": 10, "max": 100000}).input_tokens
    assert np.median(ln) == pytest.approx(400, rel=0.03)
    assert np.log(ln).std() == pytest.approx(0.8, rel=0.03)
    clipped = wl(inp={"dist": "lognormal", "median": 400, "sigma": 2, "min": 50, "max": 600}).input_tokens
    assert clipped.min() == 50 and clipped.max() == 600


def test_empirical_lengths_come_from_the_csv(tmp_path):
    (tmp_path / "lens.csv").write_text("x,prompt\n1,11\n2,22\n3,33\n")
    sc = scenario(workload={"requests": 3000, "arrival": {"process": "poisson", "rate": 1.0},
                            "input_tokens": {"dist": "empirical", "path": str(tmp_path / "lens.csv"),
                                             "column": "prompt"},
                            "output_tokens": {"dist": "fixed", "value": 1}})
    x = build_workload(sc).input_tokens
    assert set(np.unique(x)) == {11, 22, 33}
    assert np.bincount(x)[[11, 22, 33]] / x.size == pytest.approx([1 / 3] * 3, abs=0.03)


def test_trace_replay_azure_layout(tmp_path):
    # Azure LLM inference trace layout, ISO date-times with 7 fractional digits, out of order
    path = tmp_path / "azure.csv"
    path.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n"
                    "2023-11-16 18:15:47.0000000,300,20\n"
                    "2023-11-16 18:15:46.5000000,100,0\n"
                    "2023-11-16 18:15:49.2500000,200,7\n")
    from infersim.serving.scenario import validate_scenario

    sc = validate_scenario({"model": "llama-3.1-8b", "workload": {"trace": {"path": str(path), "time_scale": 2.0}}})
    w = build_workload(sc)
    assert w.arrival_s.tolist() == [0.0, 1.0, 5.5]  # (t - first) * time_scale
    assert w.input_tokens.tolist() == [100, 300, 200]
    assert w.output_tokens.tolist() == [1, 20, 7]  # a 0 in the trace still produces the first token


def test_trace_replay_in_seconds_simulates(tmp_path):
    from infersim.serving.engine import simulate

    sc = trace_scenario(tmp_path, [(10.0, 50, 4), (10.5, 60, 3), (12.0, 70, 2)])
    res = simulate(sc)
    assert res.requests["arrival_s"].tolist() == [0.0, 0.5, 2.0]
    assert np.isfinite(res.requests["completion_s"]).all()


def test_prefix_groups_prepend_shared_tokens():
    w = wl(inp={"dist": "fixed", "value": 30}, prefix={"groups": 4, "tokens": 100, "fraction": 0.5}, n=8000)
    member = w.prefix_group >= 0
    assert member.mean() == pytest.approx(0.5, abs=0.03)
    assert set(np.unique(w.prefix_group[member])) == {0, 1, 2, 3}
    assert (w.input_tokens[member] == 130).all() and (w.input_tokens[~member] == 30).all()
    assert (w.prefix_tokens == np.where(member, 100, 0)).all()


def test_closed_loop_has_think_times_not_arrivals():
    w = wl({"process": "closed_loop", "users": 5, "think_time_s": 2.0}, n=4000)
    assert w.closed_loop and w.closed_loop_users == 5
    assert np.isnan(w.arrival_s).all()
    assert w.think_s.mean() == pytest.approx(2.0, rel=0.05)
