"""Hand-checkable runs: every time is recomputed here step by step with the foundation's
``StepTimeModel.step_time_for`` (per-request lists; independent of the simulator's cost layer)."""

import math

import numpy as np
import pytest

from infersim.serving.scheduler import SCHEDULERS

from infersim.hardware import get_device
from infersim.models import get_model
from infersim.perf.estimate import estimate
from infersim.serving.engine import prepare, simulate
from infersim.serving.metrics import iterations, itl_samples, request_metrics, summarize

from ._util import oracle, scenario, trace_scenario

REL = 1e-9


def decode_steps(stm, contexts_per_step):
    return [stm.step_time_for([], [], ctx) for ctx in contexts_per_step]


@pytest.mark.parametrize("policy", sorted(SCHEDULERS))  # every registered scheduler
def test_one_request_alone(tmp_path, policy):
    # one request, 1000 prompt tokens, 50 output tokens, arriving at t = 2 s
    sc = trace_scenario(tmp_path, [(2.0, 1000, 50)], scheduler={"policy": policy, "max_num_batched_tokens": 4096})
    res = simulate(sc)
    stm = oracle()
    prefill = stm.step_time_for([1000], [0], [])  # one chunk: the budget holds the whole prompt
    # 49 decode steps; step s (1..49) reads context 1000 + s (including its new token)
    decodes = decode_steps(stm, [[1000 + s] for s in range(1, 50)])
    req = res.requests
    assert req["arrival_s"][0] == 0.0  # trace times are relative to the first row
    assert req["first_scheduled_s"][0] == 0.0  # queueing delay 0
    assert req["first_token_s"][0] == pytest.approx(prefill, rel=REL)  # TTFT = queue + prefill
    assert req["completion_s"][0] == pytest.approx(prefill + sum(decodes), rel=REL)
    m = request_metrics(req)
    assert m["tpot_s"][0] == pytest.approx(sum(decodes) / 49, rel=REL)  # TPOT = mean decode step
    s = summarize(res)
    assert s.itl_s["mean"] == pytest.approx(sum(decodes) / 49, rel=REL)
    assert s.itl_s["p50"] == pytest.approx(sorted(decodes)[24], rel=REL)  # inverted CDF of 49 gaps
    assert s.iterations == 50


def test_chunked_prefill_splits_the_prompt_by_the_token_budget(tmp_path):
    sc = trace_scenario(tmp_path, [(0.0, 1000, 3)], scheduler={"policy": "chunked", "max_num_batched_tokens": 512})
    res = simulate(sc)
    stm = oracle()
    chunk1 = stm.step_time_for([512], [0], [])  # 512 new tokens, nothing cached
    chunk2 = stm.step_time_for([488], [512], [])  # the remaining 488 after 512 cached
    assert res.requests["first_token_s"][0] == pytest.approx(chunk1 + chunk2, rel=REL)
    it = iterations(res)
    assert it["prefill_tokens"].tolist() == [512, 488, 0, 0]
    assert it["decode_seqs"].tolist() == [0, 0, 1, 1]


def test_long_prefill_threshold_caps_each_requests_chunk(tmp_path):
    # vLLM's long_prefill_token_threshold 256 with a 4096-token budget: two 600-token prompts at t = 0
    # prefill 256 + 256, 256 + 256, then 88 + 88 tokens; without the threshold both fit one step
    sc = trace_scenario(tmp_path, [(0.0, 600, 2), (0.0, 600, 2)],
                        scheduler={"policy": "chunked", "max_num_batched_tokens": 4096,
                                   "long_prefill_token_threshold": 256})
    res = simulate(sc)
    it = iterations(res)
    assert it["prefill_tokens"].tolist() == [512, 512, 176, 0]
    assert it["prefill_seqs"].tolist()[:3] == [2, 2, 2]
    stm = oracle()
    t = [stm.step_time_for([256, 256], [0, 0], []), stm.step_time_for([256, 256], [256, 256], []),
         stm.step_time_for([88, 88], [512, 512], [])]
    assert res.requests["first_token_s"].tolist() == pytest.approx([sum(t)] * 2, rel=REL)
    whole = iterations(simulate(sc.with_changes(**{"scheduler.long_prefill_token_threshold": None})))
    assert whole["prefill_tokens"].tolist() == [1200, 0]


def test_inflight_batching_runs_whole_prompts_beside_the_decodes(tmp_path):
    # three requests at t = 0 (prompt, output): r0 (500, 3), r1 (500, 3), r2 (700, 2); 800 tokens a step.
    # step 1: r0's prompt (500); r1's 500 > the 300 left, and a prompt is never split -> it waits
    # step 2: r0's decode + r1's prompt (1 + 500 <= 800); r2's 700 > 299 left -> waits
    # step 3: r0's and r1's decodes + r2's prompt (2 + 700 <= 800); r0 has its 3 tokens
    # step 4: r1's and r2's last decodes
    sc = trace_scenario(tmp_path, [(0.0, 500, 3), (0.0, 500, 3), (0.0, 700, 2)],
                        scheduler={"policy": "inflight", "max_num_batched_tokens": 800})
    res = simulate(sc)
    it = iterations(res)
    assert it["prefill_tokens"].tolist() == [500, 500, 700, 0]
    assert it["decode_seqs"].tolist() == [0, 1, 2, 2]
    stm = oracle()
    t1 = stm.step_time_for([500], [0], [])
    t2 = stm.step_time_for([500], [0], [501])  # a decode reads its context including the new token
    t3 = stm.step_time_for([700], [0], [502, 501])
    t4 = stm.step_time_for([], [], [502, 701])
    req = res.requests
    assert req["first_token_s"].tolist() == pytest.approx([t1, t1 + t2, t1 + t2 + t3], rel=REL)
    assert req["completion_s"].tolist() == pytest.approx([t1 + t2 + t3, t1 + t2 + t3 + t4, t1 + t2 + t3 + t4],
                                                         rel=REL)
    # the chunked scheduler splits instead: step 1 = r0's 500 + 300 of r1; step 2 = r1's other 200 +
    # 599 of r2 beside r0's decode
    chunked = iterations(simulate(sc.with_changes(**{"scheduler.policy": "chunked"})))
    assert chunked["prefill_tokens"].tolist()[:2] == [800, 200 + 599]


def test_low_load_matches_the_static_estimate():
    """At low load every request runs alone: TTFT and TPOT equal the foundation's estimate."""
    sc = scenario(workload={"requests": 20, "arrival": {"process": "constant", "rate": 0.5},
                            "input_tokens": {"dist": "fixed", "value": 700},
                            "output_tokens": {"dist": "fixed", "value": 90}})
    res = simulate(sc)
    m = request_metrics(res.requests)
    assert np.all(res.requests["completion_s"][:-1] < res.requests["arrival_s"][1:])  # no overlap
    est = estimate(get_model("llama-3.1-8b"), get_device("h100-sxm"), batch=1, input_tokens=700, output_tokens=90)
    np.testing.assert_allclose(m["ttft_s"], est.ttft_s, rtol=1e-9)
    np.testing.assert_allclose(m["tpot_s"], est.tpot_s, rtol=1e-9)
    np.testing.assert_allclose(m["queue_s"], 0.0, atol=0)


def _preemption_case(tmp_path, mode):
    # Two requests of 16 prompt + 33 output tokens arrive together; the cache has 5 blocks of 16
    # tokens and no watermark. Both prefill (1 block each), their first decode needs a 2nd block
    # each (4 used), and at decode step 16 both need a 3rd block with 1 free: the later one (B) is
    # preempted with 32 tokens cached and 17 generated.
    sc = trace_scenario(tmp_path, [(0.0, 16, 33), (0.0, 16, 33)],
                        scheduler={"policy": "continuous", "block_size": 16, "num_gpu_blocks_override": 5,
                                   "watermark": 0.0, "preemption": mode})
    return sc, simulate(sc)


def test_preemption_by_recompute_hand_computed(tmp_path):
    sc, res = _preemption_case(tmp_path, "recompute")
    stm = oracle()
    t = stm.step_time_for([16, 16], [0, 0], [])  # prefill both
    first_token = t
    t += sum(decode_steps(stm, [[17 + c, 17 + c] for c in range(16)]))  # clocks 0..15, both decode
    b_last_token = t
    t += sum(decode_steps(stm, [[17 + c] for c in range(16, 32)]))  # A alone until its 33rd token
    a_done = t
    # B re-prefills its 16 + 17 known tokens (3 blocks: it had to wait for A's), emitting token 18
    t += stm.step_time_for([33], [0], [])
    b_recomputed = t
    t += sum(decode_steps(stm, [[34 + s] for s in range(15)]))  # tokens 19..33 at contexts 34..48
    req = res.requests
    assert req["preemptions"].tolist() == [0, 1]
    assert req["first_token_s"] == pytest.approx([first_token, first_token], rel=REL)
    assert req["completion_s"] == pytest.approx([a_done, t], rel=REL)
    # conservation: 65 prefill tokens (16 + 16 + 33), every output token emitted exactly once
    it = iterations(res)
    assert int(it["prefill_tokens"].sum()) == 65
    assert int(it["decode_seqs"].sum()) == 16 * 2 + 16 + 15
    values, weights = itl_samples(res, it)
    assert weights.sum() == 2 * (33 - 1)
    assert np.isclose(values, b_recomputed - b_last_token, rtol=REL, atol=0).sum() == 1  # the gap across it
    assert res.kv_stats[0]["used_blocks_at_end"] == 0


def test_preemption_by_swap_hand_computed(tmp_path):
    sc, res = _preemption_case(tmp_path, "swap")
    stm = oracle()
    dep = res.deployment
    swap_s = 32 * dep.kv_bytes_per_token / 64e9  # B's 32 cached tokens over PCIe Gen5 x16 (64 GB/s)
    t = stm.step_time_for([16, 16], [0, 0], [])
    t += sum(decode_steps(stm, [[17 + c, 17 + c] for c in range(16)]))
    t += swap_s  # swap-out charged to the step that preempts
    t += sum(decode_steps(stm, [[17 + c] for c in range(16, 32)]))
    a_done = t
    # B comes back (3 blocks: 2 for its 32 tokens + 1 for the next) and decodes tokens 18..33
    t += swap_s
    t += sum(decode_steps(stm, [[33 + s] for s in range(16)]))
    req = res.requests
    assert req["preemptions"].tolist() == [0, 1]
    assert req["completion_s"] == pytest.approx([a_done, t], rel=REL)
    it = iterations(res)
    assert int(it["prefill_tokens"].sum()) == 32  # nothing recomputed
    assert it["swap_s"].sum() == pytest.approx(2 * swap_s, rel=REL)


def test_static_batching_runs_the_batch_to_its_longest_request(tmp_path):
    sc = trace_scenario(tmp_path, [(0.0, 100, 2), (0.0, 200, 5), (0.0, 300, 3)], scheduler={"policy": "static"})
    res = simulate(sc)
    stm = oracle()
    prefill = stm.step_time_for([100, 200, 300], [0, 0, 0], [])
    # 4 decode steps (the longest needs 5 - 1); finished requests stay in the batch as padding
    decodes = decode_steps(stm, [[101 + j, 201 + j, 301 + j] for j in range(4)])
    req = res.requests
    assert req["first_token_s"] == pytest.approx([prefill] * 3, rel=REL)
    assert req["completion_s"] == pytest.approx([prefill + sum(decodes)] * 3, rel=REL)
    it = iterations(res)
    assert it["decode_seqs"].tolist() == [0, 3, 3, 3, 3]
    assert it["itl_weight"].tolist() == [0, 3, 2, 1, 1]  # tokens emitted: 1 + 4 + 2 decode tokens


def test_sliding_window_model_uses_the_exact_path(tmp_path):
    sc = trace_scenario(tmp_path, [(0.0, 5000, 20)], model="gemma-2-9b",
                        scheduler={"policy": "chunked", "max_num_batched_tokens": 8192})
    res = simulate(sc)
    assert not res.deployment.cost.fast  # windows: no single decode line
    stm = oracle("gemma-2-9b")
    t = stm.step_time_for([5000], [0], []) + sum(decode_steps(stm, [[5000 + s] for s in range(1, 20)]))
    assert res.requests["completion_s"][0] == pytest.approx(t, rel=REL)


def test_fast_paths_change_nothing():
    """Decode runs, the piecewise-linear decode line and the row roofline give the same run as the
    public per-step API, on a run with chunked prefill, preemptions and prefix caching."""
    sc = scenario(scheduler={"policy": "chunked", "num_gpu_blocks_override": 300, "prefix_caching": True,
                             "max_num_batched_tokens": 256},
                  workload={"requests": 150, "arrival": {"process": "poisson", "rate": 6.0},
                            "input_tokens": {"dist": "lognormal", "median": 300, "sigma": 0.7, "max": 1500},
                            "output_tokens": {"dist": "lognormal", "median": 150, "sigma": 0.7, "max": 900},
                            "prefix": {"groups": 3, "tokens": 200, "fraction": 0.7}})
    sc = sc.with_changes(efficiency="spec")  # the compiled fast paths cover the plain (spec-sheet) roofline
    fast = simulate(sc)
    assert fast.deployment.cost.fast and fast.deployment.cost.fast_mixed
    assert fast.requests["preemptions"].sum() > 0 and fast.requests["prefix_hit_tokens"].sum() > 0
    dep = prepare(sc, max_context_tokens=4000)
    dep.cost.fast = False
    dep.cost.fast_mixed = False
    slow = simulate(sc, deployment=dep)
    for key in ("first_scheduled_s", "first_token_s", "completion_s"):
        np.testing.assert_allclose(fast.requests[key], slow.requests[key], rtol=1e-9)
    for key in ("preemptions", "prefix_hit_tokens", "replica"):
        assert fast.requests[key].tolist() == slow.requests[key].tolist()
    assert fast.engines[0].n_steps == slow.engines[0].n_steps
    assert sum(len(s.runs) for s in slow.engines) == 0  # the slow path never batches steps
    a, b = iterations(fast), iterations(slow)
    for key in ("prefill_tokens", "decode_seqs", "kv_blocks_used", "itl_weight"):
        assert a[key].tolist() == b[key].tolist()
    np.testing.assert_allclose(a["flops"], b["flops"], rtol=1e-9)
    assert math.isclose(summarize(fast).itl_s["p99"], summarize(slow).itl_s["p99"], rel_tol=1e-9)
