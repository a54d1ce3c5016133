"""Laws the simulator must obey: Little's law, conservation, determinism, monotone latency."""

import numpy as np
import pytest

from infersim.serving.scheduler import SCHEDULERS

from infersim.serving.engine import simulate
from infersim.serving.metrics import iterations, itl_samples, request_metrics, summarize, time_average_in_system
from infersim.serving.scenario import DEFAULT_RATE, default_scenario

from ._util import scenario

CHAT = {"input_tokens": {"dist": "lognormal", "median": 600, "sigma": 0.8, "min": 8, "max": 4096},
        "output_tokens": {"dist": "lognormal", "median": 120, "sigma": 0.8, "min": 2, "max": 1024}}


def test_littles_law_on_a_long_stable_run():
    rate = 9.0
    sc = scenario(workload={"requests": 20000, "arrival": {"process": "poisson", "rate": rate}, **CHAT})
    res = simulate(sc)
    req = res.requests
    arrival, done = req["arrival_s"], req["completion_s"]
    # steady state: leave out the first and last 10% of the arrival span
    t0, t1 = np.quantile(arrival, [0.1, 0.9])
    in_system = time_average_in_system(arrival, done, t0, t1)
    window = (arrival >= t0) & (arrival <= t1)
    mean_latency = float((done - arrival)[window].mean())
    assert in_system == pytest.approx(rate * mean_latency, rel=0.02)  # L = lambda W


@pytest.mark.parametrize("policy", sorted(SCHEDULERS))  # every registered scheduler
def test_conservation(policy):
    sc = scenario(scheduler={"policy": policy, "max_num_seqs": 64},
                  workload={"requests": 400, "arrival": {"process": "poisson", "rate": 8.0}, **CHAT})
    res = simulate(sc)
    req = res.requests
    n = req["arrival_s"].size
    # every request arrives, is scheduled, emits its first token and completes, in that order
    assert np.isfinite(req["completion_s"]).all()
    assert (req["arrival_s"] <= req["first_scheduled_s"]).all()
    assert (req["first_scheduled_s"] < req["first_token_s"]).all()
    assert (req["first_token_s"] <= req["completion_s"]).all()
    assert (req["replica"] == 0).all() and req["preemptions"].sum() == 0
    it = iterations(res)
    # every prompt token is prefilled once, every other output token decoded once
    assert int(it["prefill_tokens"].sum()) == int(req["input_tokens"].sum())
    values, weights = itl_samples(res, it)
    assert weights.sum() == int((req["output_tokens"] - 1).sum())
    if policy != "static":  # static batches also compute padding for finished requests
        assert int(it["decode_seqs"].sum()) == int((req["output_tokens"] - 1).sum())
        # the gaps of each request add up to its decode time
        assert (values * weights).sum() == pytest.approx(np.sum(req["completion_s"] - req["first_token_s"]),
                                                        rel=1e-9)
    # steps never overlap on an engine and the KV cache is empty at the end
    start, dur = it["start_s"], it["duration_s"]
    assert (start[1:] >= start[:-1] + dur[:-1] - 1e-12).all()
    assert res.kv_stats[0]["used_blocks_at_end"] == 0
    assert (it["kv_blocks_used"] <= res.kv_blocks).all()
    s = summarize(res, it)
    assert s.completed == n
    assert s.output_tokens_per_s * s.makespan_s == pytest.approx(req["output_tokens"].sum())


@pytest.mark.parametrize("mode", ["recompute", "swap"])
def test_conservation_under_preemption(mode):
    sc = scenario(scheduler={"policy": "chunked", "num_gpu_blocks_override": 400, "preemption": mode,
                             "max_num_batched_tokens": 512},
                  workload={"requests": 300, "arrival": {"process": "poisson", "rate": 20.0}, **CHAT})
    res = simulate(sc)
    req = res.requests
    assert req["preemptions"].sum() > 0
    assert np.isfinite(req["completion_s"]).all()
    assert res.kv_stats[0]["used_blocks_at_end"] == 0
    it = iterations(res)
    values, weights = itl_samples(res, it)
    assert weights.sum() == int((req["output_tokens"] - 1).sum())  # each output token emitted once
    assert (values * weights).sum() == pytest.approx(np.sum(req["completion_s"] - req["first_token_s"]), rel=1e-9)
    assert (it["kv_blocks_used"] <= res.kv_blocks).all()


def test_same_seed_same_run_to_the_byte():
    sc = scenario(scheduler={"policy": "chunked", "num_gpu_blocks_override": 400, "prefix_caching": True},
                  workload={"requests": 300, "arrival": {"process": "gamma", "rate": 10.0, "cv": 2.0}, **CHAT,
                            "prefix": {"groups": 2, "tokens": 300, "fraction": 0.5}})
    a, b = simulate(sc), simulate(sc)
    for key in a.requests:
        assert a.requests[key].tobytes() == b.requests[key].tobytes(), key
    ia, ib = iterations(a), iterations(b)
    for key in ia:
        assert ia[key].tobytes() == ib[key].tobytes(), key
    c = simulate(sc.with_changes(seed=sc.seed + 1))
    assert c.requests["completion_s"].tobytes() != a.requests["completion_s"].tobytes()


def test_latency_grows_with_load():
    base = scenario(workload={"requests": 800, "arrival": {"process": "poisson", "rate": 1.0}, **CHAT})
    rows = []
    for rate in (2.0, 5.0, 8.0, 11.0, 14.0, 17.0):
        s = summarize(simulate(base.with_changes(**{"workload.arrival.rate": rate})))
        rows.append((s.ttft_s["mean"], s.tpot_s["mean"], s.e2e_s["mean"], s.queue_s["mean"]))
    rows = np.array(rows)
    assert (np.diff(rows, axis=0) > 0).all(), rows


def test_closed_loop_obeys_the_response_time_law():
    users, think = 6, 0.5
    sc = scenario(workload={"requests": 3000, "arrival": {"process": "closed_loop", "users": users,
                                                           "think_time_s": think}, **CHAT})
    res = simulate(sc)
    req = res.requests
    arrival, done = req["arrival_s"], req["completion_s"]
    assert np.isfinite(arrival).all() and np.isfinite(done).all()
    # never more requests in the system than users: check N(t) just after every arrival
    order = np.argsort(arrival, kind="stable")
    in_system = np.searchsorted(np.sort(arrival), arrival[order], side="right") - \
        np.searchsorted(np.sort(done), arrival[order], side="right")
    assert in_system.max() <= users
    # interactive response time law: N = X (R + Z), X = throughput, R = mean response, Z = mean think
    s = summarize(res)
    z = float(res.workload.think_s.mean())
    assert s.throughput_rps * (s.e2e_s["mean"] + z) == pytest.approx(users, rel=0.02)


def test_default_scenario_loads_the_replica_to_about_70_percent():
    """The default rate is ~70% of the saturation throughput (all requests queued at t=0)."""
    burst = default_scenario().with_changes(**{"workload.arrival": {"process": "constant", "rate": 1e9}})
    saturation = summarize(simulate(burst)).throughput_rps
    assert 0.65 <= DEFAULT_RATE / saturation <= 0.75, saturation


def test_summary_quantities_are_consistent():
    res = simulate(scenario(workload={"requests": 500, "arrival": {"process": "poisson", "rate": 8.0}, **CHAT}))
    s = summarize(res)
    m = request_metrics(res.requests)
    assert s.ttft_s["p99"] == pytest.approx(np.percentile(m["ttft_s"], 99))
    assert s.mean_in_system == pytest.approx(s.littles_law_rhs, rel=1e-9)  # over the whole run: exact
    assert 0 < s.mfu_mean < 1 and 0 < s.mbu_mean < 1
    assert 0 < s.kv_utilization_mean <= s.kv_utilization_peak <= 1
    assert s.busy_fraction <= 1 + 1e-12


@pytest.mark.parametrize("changes", [
    {"scheduler": {"policy": "chunked", "num_gpu_blocks_override": 400, "max_num_batched_tokens": 512}},
    {"scheduler": {"policy": "continuous", "num_gpu_blocks_override": 400, "preemption": "swap"}},
    {"scheduler": {"policy": "static", "max_num_seqs": 16}},
    {"model": "gemma-2-9b", "scheduler": {"policy": "chunked"}},
], ids=["chunked", "continuous-swap", "static", "sliding-window"])
def test_summary_from_the_compact_log_equals_the_full_table(changes):
    res = simulate(scenario(**changes, workload={"requests": 300, "arrival": {"process": "poisson", "rate": 12.0},
                                                 **CHAT}))
    lean, full = summarize(res).to_dict(), summarize(res, iterations(res)).to_dict()
    for key in ("itl_s", "kv_utilization_mean", "kv_utilization_peak", "mfu_mean", "mbu_mean", "busy_fraction",
                "iterations"):
        a, b = lean[key], full[key]
        if isinstance(a, dict):
            for q in a:
                assert a[q] == pytest.approx(b[q], rel=1e-9), (key, q)
        else:
            assert a == pytest.approx(b, rel=1e-9), key
