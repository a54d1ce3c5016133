"""The multi-stage event loop: equivalence with the single-engine simulator, conservation across the
graph, determinism, branches, iterative retrieval, KV retrieval and routing."""

import numpy as np
import pytest

from infersim.serving.engine import simulate
from infersim.serving.metrics import iterations
from infersim.serving.pipeline.metrics import pool_result, summarize_pipeline
from infersim.serving.pipeline.simulator import simulate_pipeline
from infersim.serving.scenario import validate_scenario

from ._util import WORKLOAD, llm, pd_data, pipeline, spaced

RETRIEVER = {"kind": "retrieval", "servers": 2, "scan_gb_per_s_per_core": 1.0, "overhead_ms": 0.5, "max_batch": 4,
             "database": {"vectors": 4e9, "fraction_probed": 0.001, "code_bytes": 32}}


@pytest.mark.parametrize("policy,router,replicas", [("continuous", "round_robin", 1),
                                                     ("chunked", "least_outstanding", 3),
                                                     ("continuous", "least_kv", 2),
                                                     ("static", "round_robin", 2)])
def test_one_colocated_stage_reproduces_the_single_engine_simulator(policy, router, replicas):
    wl = dict(WORKLOAD, requests=150, arrival={"process": "poisson", "rate": 15.0},
              prefix={"groups": 3, "tokens": 200, "fraction": 0.5})
    sched = {"policy": policy, "max_num_seqs": 48, "prefix_caching": True, "num_gpu_blocks_override": 600}
    engine = {"model": "llama-3.1-8b", "parallelism": {"replicas": replicas}, "scheduler": sched,
              "router": {"policy": router}}
    single = simulate(validate_scenario({"seed": 3, **engine, "workload": wl}))
    piped = simulate_pipeline(pipeline({"seed": 3, "engines": {"e": {"kind": "llm", **engine}},
                                        "graph": [{"name": "g", "kind": "llm", "engine": "e"}], "workload": wl}))
    for key in ("first_token_s", "completion_s"):
        # decode runs split at other engines' steps sum their durations in another order: ~1e-14 apart
        np.testing.assert_allclose(piped.requests[key], single.requests[key], rtol=1e-12, atol=0)
    assert np.array_equal(piped.requests["arrival_s"], single.requests["arrival_s"])


def _rag(**changes):
    data = {
        "name": "rag", "seed": 11,
        "engines": {"ret": RETRIEVER, "gen": llm(scheduler={"policy": "chunked"}, parallelism={"replicas": 2})},
        "graph": [{"name": "retrieve", "kind": "retrieval", "engine": "ret"},
                  {"name": "generate", "kind": "llm", "engine": "gen", "extra_input_tokens": 300}],
        "workload": dict(WORKLOAD, requests=80),
    }
    data.update(changes)
    return pipeline(data)


def test_conservation_across_the_graph():
    r = simulate_pipeline(_rag())
    n = 80
    starts, ends = r.stage_start_s, r.stage_end_s
    assert np.isfinite(starts).all() and np.isfinite(ends).all()  # every request passed every stage once
    assert (ends >= starts).all()
    assert np.array_equal(starts[0], r.requests["arrival_s"])
    assert np.array_equal(starts[1], ends[0])  # a hand-off takes no time
    assert np.array_equal(r.requests["completion_s"], ends[1])
    assert sum(u.jobs for u in r.servers["ret"]) == n  # one query per request
    # tokens: the generation pool prefilled every prompt (+ retrieved passages) and generated every token
    pool = pool_result(r, "gen")
    assert pool.requests["input_tokens"].sum() == (r.requests["input_tokens"] + 300).sum()
    it = iterations(pool, with_work=False)
    assert it["prefill_tokens"].sum() == (r.requests["input_tokens"] + 300).sum()  # no preemption here
    assert (it["itl_weight"].sum() + len(np.concatenate([np.frombuffer(s.gaps_s) for s in pool.engines]))
            == (r.requests["output_tokens"] - 1).sum())  # every decode token is one inter-token gap
    s = summarize_pipeline(r)
    assert s.completed == n
    # Little's law over the whole pipeline: time-average in system = throughput x mean E2E
    assert s.throughput_rps * s.e2e_s["mean"] == pytest.approx(
        (r.requests["completion_s"] - r.requests["arrival_s"]).sum() / s.makespan_s, rel=1e-12)


def test_determinism_and_seed_sensitivity():
    a = simulate_pipeline(_rag())
    b = simulate_pipeline(_rag())
    for key in a.requests:
        assert np.array_equal(a.requests[key], b.requests[key], equal_nan=True)
    assert np.array_equal(a.stage_end_s, b.stage_end_s)
    c = simulate_pipeline(_rag(seed=12))
    assert not np.array_equal(a.requests["completion_s"], c.requests["completion_s"])


def test_pd_first_token_comes_from_the_prefill_pool_and_decode_tokens_from_the_decode_pool():
    r = simulate_pipeline(pipeline(pd_data()))
    pre, dec = pool_result(r, "prefill"), pool_result(r, "decode")
    assert (pre.requests["output_tokens"] == 1).all()
    np.testing.assert_array_equal(r.requests["first_token_s"], pre.requests["first_token_s"])
    it = iterations(dec, with_work=False)
    assert it["prefill_tokens"].sum() == 0  # the decode pool never prefills (no preemption here)
    gaps = sum(len(s.gaps_s) for s in dec.engines)
    # every token after the first is made by a decode step of the decode pool
    assert it["itl_weight"].sum() + gaps == (r.requests["output_tokens"] - 1).sum()
    assert (r.requests["completion_s"] > r.requests["first_token_s"] + r.transfer_s[1]).all()


def test_decode_admission_waits_for_kv_room():
    data = pd_data(workload=dict(WORKLOAD, requests=40, arrival={"process": "poisson", "rate": 50.0},
                                 input_tokens={"dist": "fixed", "value": 1000},
                                 output_tokens={"dist": "fixed", "value": 50}))
    data["engines"]["decode"]["scheduler"] = {"num_gpu_blocks_override": 200, "watermark": 0.0}  # 3 requests fit
    r = simulate_pipeline(pipeline(data))
    dec = pool_result(r, "decode")
    arrival = dec.requests["arrival_s"]
    admitted = dec.requests["first_scheduled_s"]
    assert (admitted >= arrival).all() and (admitted > arrival).any()  # some waited for room
    # at most 3 requests of ceil(1050 / 16) = 66 blocks hold KV at once
    events = sorted([(t, 1) for t in admitted] + [(t, -1) for t in dec.requests["completion_s"]])
    level, peak = 0, 0
    for _, d in events:
        level += d
        peak = max(peak, level)
    assert peak <= 3
    assert np.isfinite(r.requests["completion_s"]).all()


def test_reasoning_branches_share_one_prefill():
    data = {
        "seed": 2, "engines": {"e": llm()},
        "graph": [{"name": "think", "kind": "reasoning", "engine": "e", "branches": 3,
                   "output_tokens": {"dist": "fixed", "value": 40}}],
        "workload": spaced(4, 500, 999),
    }
    r = simulate_pipeline(pipeline(data))
    assert (r.requests["total_output_tokens"] == 120).all()
    pool = pool_result(r, "e")
    it = iterations(pool, with_work=False)
    assert it["prefill_tokens"].sum() == 4 * 500  # one prefill per request
    gaps = sum(len(s.gaps_s) for s in pool.engines)
    assert it["itl_weight"].sum() + gaps == 4 * 3 * 39  # every branch's 39 later tokens
    # alone, the three branches decode together: they end at the same step
    done = pool.requests["completion_s"].reshape(3, 4)
    assert (done == done[0]).all()
    np.testing.assert_array_equal(r.requests["completion_s"], done[0])


def test_iterative_retrieval_stalls_only_the_retrieving_request():
    data = {
        "seed": 4, "engines": {"e": llm(), "ret": RETRIEVER},
        "graph": [{"name": "gen", "kind": "llm", "engine": "e", "retrieve_every_tokens": 16,
                   "retrieval_engine": "ret"}],
        "workload": dict(WORKLOAD, requests=30, output_tokens={"dist": "uniform", "min": 2, "max": 70}),
    }
    r = simulate_pipeline(pipeline(data))
    out = r.requests["output_tokens"]
    want = -(-out // 16) - 1  # a retrieval after every 16 tokens but the last segment's
    np.testing.assert_array_equal(r.stalls, want)
    assert sum(u.jobs for u in r.servers["ret"]) == want.sum()
    pool = pool_result(r, "e")
    it = iterations(pool, with_work=False)
    assert it["prefill_tokens"].sum() == r.requests["input_tokens"].sum()  # resumed without recomputation
    # the stalls add at least one retrieval each to the request's time
    per_query = 4e9 * 0.001 * 32 / (1e9 * 56 * 2) + 0.5e-3
    e2e = r.requests["completion_s"] - r.requests["first_token_s"]
    assert (e2e >= want * per_query - 1e-12).all()


def test_kv_retrieval_hits_skip_prefill_compute_and_misses_recompute():
    def run(hit_rate):
        data = {
            "seed": 8,
            "engines": {"kv": {"kind": "kv_store", "levels": [{"name": "dram", "hit_rate": hit_rate,
                                                                "latency_us": 20, "bandwidth_gb_per_s": 40}]},
                        "e": llm()},
            "graph": [{"name": "fetch", "kind": "kv_retrieval", "engine": "kv"},
                      {"name": "gen", "kind": "llm", "engine": "e"}],
            "workload": dict(spaced(5, 200, 8), prefix={"groups": 1, "tokens": 1024}),
        }
        return simulate_pipeline(pipeline(data))
    hit, miss = run(1.0), run(0.0)
    fetch = hit.stage_end_s[0] - hit.stage_start_s[0]
    # 1024 tokens of Llama-3.1-8B KV over 40 GB/s after 20 us
    np.testing.assert_allclose(fetch, 20e-6 + 1024 * 131072 / 40e9, rtol=0, atol=1e-12)  # (times ~1e2 s)
    assert (miss.stage_end_s[0] == miss.stage_start_s[0]).all()
    prefilled = iterations(pool_result(hit, "e"), with_work=False)["prefill_tokens"].sum()
    assert prefilled == 5 * 200  # only the request's own tokens
    assert iterations(pool_result(miss, "e"), with_work=False)["prefill_tokens"].sum() == 5 * 1224
    assert summarize_pipeline(hit).stages[0].kv_hit_rate == 1.0


def test_size_routing_splits_by_prompt_length():
    data = {
        "seed": 1, "engines": {"small": llm(), "big": llm(parallelism={"tp": 2})},
        "graph": [{"name": "g", "kind": "llm", "engine": ["small", "big"],
                   "route": {"policy": "size", "thresholds_tokens": [800]}}],
        "workload": dict(WORKLOAD, requests=50),
    }
    r = simulate_pipeline(pipeline(data))
    small = r.pools["small"].used()
    big = r.pools["big"].used()  # local ids of the first slot are the request ids
    inp = r.requests["input_tokens"]
    assert (inp[small] <= 800).all() and (inp[big] > 800).all()
    assert len(small) + len(big) == 50


def test_cost_and_energy_follow_their_definitions():
    r = simulate_pipeline(_rag())
    s = summarize_pipeline(r)
    gen = next(e for e in s.engines if e.name == "gen")
    ret = next(e for e in s.engines if e.name == "ret")
    # 2 H100 at $2.99/h and 2 Xeon sockets at $4.84/h over the makespan
    assert gen.cost_usd == pytest.approx(2 * 2.99 * s.makespan_s / 3600, rel=1e-12)
    assert ret.cost_usd == pytest.approx(2 * 4.84 * s.makespan_s / 3600, rel=1e-12)
    assert s.usd_per_million_output_tokens == pytest.approx(
        (gen.cost_usd + ret.cost_usd) / r.requests["output_tokens"].sum() * 1e6, rel=1e-12)
    # H100: 90 W idle, 700 W TDP; Xeon: 350 W TDP, idle 30% of it
    assert gen.power_w == pytest.approx(2 * (90 + 610 * gen.busy_fraction), rel=1e-12)
    assert ret.power_w == pytest.approx(2 * (105 + 245 * ret.busy_fraction), rel=1e-12)
    assert ret.busy_fraction == pytest.approx(sum(u.busy_s for u in r.servers["ret"]) / (2 * s.makespan_s))
    assert s.joules_per_output_token == pytest.approx(
        (gen.power_w + ret.power_w) * s.makespan_s / r.requests["output_tokens"].sum(), rel=1e-12)
