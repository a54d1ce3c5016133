"""Pipeline-parallel replicas in the simulator: a replica's engines send their micro-batches through
shared stages (infersim.serving.pp_stages.StageClock). Checked by hand and with the foundation's step
times (``StepTimeModel.step_time_for``, independent of the simulator's cost layer) through the flow shop,
and on random workloads by replaying every step through a flow shop written here."""

from __future__ import annotations

import numpy as np
import pytest

from infersim.serving.scheduler import SCHEDULERS

from infersim.serving.engine import simulate
from infersim.serving.metrics import expand_steps, iterations, summarize
from infersim.serving.pp_stages import flow_shop_finish_s
from infersim.serving.streaming import simulate_streaming

from ._util import oracle, scenario, trace_scenario
from .test_streaming import _same_summary

REL = 1e-9


def _engine_ends(res, engine: int) -> np.ndarray:
    it = iterations(res)
    sel = it["engine"] == engine
    return (it["start_s"] + it["duration_s"])[sel]


@pytest.mark.parametrize("policy", sorted(SCHEDULERS))  # every registered scheduler
def test_equal_steps_flow_without_a_bubble(tmp_path, policy):
    """pp = 2, two equal requests at t = 0, one per engine: both engines' steps are equal, row by row.
    By hand: engine 0's prefill (t_p) leaves at t_p; engine 1's waits for stage 0 (t_p / 2) and leaves
    at 1.5 t_p; engine 0's first decode (d_1) leaves stage 0 at t_p + d_1 / 2 and waits for stage 1
    until 1.5 t_p, so it ends at 1.5 t_p + d_1 / 2; engine 1's at 1.5 t_p + d_1. From then on each
    engine steps every own step time, as an engine of its own would (no bubble; engine 1, behind engine 0's
    micro-batch, steps every d_s + (d_(s+1) - d_s) / 2 as the contexts grow)."""
    isl, osl = 500, 40
    sc = trace_scenario(tmp_path, [(0.0, isl, osl), (0.0, isl, osl)], parallelism={"pp": 2},
                        scheduler={"policy": policy, "max_num_batched_tokens": 2048})
    res = simulate(sc)
    stm = oracle(pp=2)
    t_p = stm.step_time_for([isl], [0], [])
    d = [stm.step_time_for([], [], [isl + s]) for s in range(1, osl)]
    assert res.requests["replica"].tolist() == [0, 0]
    e0, e1 = _engine_ends(res, 0), _engine_ends(res, 1)
    assert e0[:2] == pytest.approx([t_p, 1.5 * t_p + d[0] / 2], rel=REL)
    assert e1[:2] == pytest.approx([1.5 * t_p, 1.5 * t_p + d[0]], rel=REL)
    assert np.diff(e0)[1:] == pytest.approx(d[1:], rel=REL)  # every own step time, no bubble
    assert np.diff(e1)[1:] == pytest.approx(d[1:], abs=float(np.diff(d).max()))
    table = np.array([[t_p, t_p]] + [[x, x] for x in d])
    done = flow_shop_finish_s(table, 2)
    assert np.column_stack([e0, e1]) == pytest.approx(done, rel=REL)
    assert res.requests["first_token_s"] == pytest.approx(done[0], rel=REL)
    assert res.requests["completion_s"] == pytest.approx(done[-1], rel=REL)


def test_a_prefill_bearing_step_holds_the_other_engine(tmp_path):
    """pp = 2: requests A and B (16 prompt tokens, 60 output) decode on engines 0 and 1; C (2000 prompt
    tokens, 2 output) arrives at 0.1 s and joins engine 0's next step (the tie of outstanding requests
    goes to engine 0), a mixed step of t_m beside engine 1's decode steps of t_d. The finish times are the
    flow shop's on the foundation's step times, and by hand engine 1's decode step of that round leaves
    the last stage t_d / 2 after engine 0's mixed one: it waited at stage 1 for it."""
    small, big, osl, t_c = 16, 2000, 60, 0.1
    sc = trace_scenario(tmp_path, [(0.0, small, osl), (0.0, small, osl), (t_c, big, 2)], parallelism={"pp": 2},
                        scheduler={"policy": "chunked", "max_num_batched_tokens": 4096})
    res = simulate(sc)
    stm = oracle(pp=2)
    t_p = stm.step_time_for([small], [0], [])
    dec = [stm.step_time_for([], [], [small + s]) for s in range(1, osl)]
    decode_only = flow_shop_finish_s(np.array([[t_p, t_p]] + [[x, x] for x in dec]), 2)
    m = int(np.argmax(decode_only[:, 0] >= t_c)) + 1  # engine 0's first step formed at or after C's arrival
    col0 = [t_p] + dec
    col0[m] = stm.step_time_for([big], [0], [small + m])  # A's m-th decode + C's whole prompt
    col0[m + 1] = stm.step_time_for([], [], [small + m + 1, big + 1])  # A's next decode + C's second token
    done = flow_shop_finish_s(np.column_stack([col0, [t_p] + dec]), 2)
    e0, e1 = _engine_ends(res, 0), _engine_ends(res, 1)
    assert np.column_stack([e0, e1]) == pytest.approx(done, rel=REL)
    assert e1[m] == pytest.approx(e0[m] + dec[m - 1] / 2, rel=REL)  # held behind the mixed micro-batch
    assert e0[m] - e0[m - 1] == pytest.approx(col0[m], rel=REL)  # the mixed step itself did not wait
    assert res.requests["first_token_s"][2] == pytest.approx(e0[m], rel=REL)
    assert res.requests["completion_s"] == pytest.approx([e0[-1], e1[-1], e0[m + 1]], rel=REL)


def _replay(res) -> None:
    """Every step of each replica, in the order its engines formed them (ties: the lower engine), through
    ``pp`` stages of ``d / pp`` each with ``d`` the step's pipeline latency: each must end when the log
    says (formed at its start, ending at start + duration)."""
    pp = res.deployment.parallel.pp
    cost = res.deployment.cost
    nw = len(cost.windows)
    for replica in sorted(set(res.engine_replica)):
        rows = []
        for e, steps in enumerate(res.engines):
            if res.engine_replica[e] != replica:
                continue
            cols = expand_steps(steps, nw, res.scenario.scheduler.block_size)
            for i in range(cols["start_s"].size):
                pairs, rect, kv_read, dp = cols["loads"][i]
                d = cost.time_full(int(cols["prefill_tokens"][i]), int(cols["prefill_seqs"][i]),
                                   int(cols["decode_seqs"][i]), pairs, rect, kv_read, dp) + cols["swap_s"][i]
                rows.append((cols["start_s"][i], e, d, cols["start_s"][i] + cols["duration_s"][i]))
        rows.sort()
        free = [0.0] * pp
        waited = 0
        for start, _, d, end in rows:
            waited += end > start + d * (1 + 1e-6)
            x = start
            for s in range(pp):
                x = max(x, free[s]) + d / pp
                free[s] = x
            assert x == pytest.approx(end, rel=REL, abs=1e-12)
        assert waited > len(rows) // 20  # the stages held many micro-batches (independent engines: none)


@pytest.mark.parametrize("pp, policy, replicas", [(2, "chunked", 1), (4, "chunked", 2), (2, "continuous", 1),
                                                  (4, "continuous", 1), (2, "static", 1)])
def test_random_workload_is_the_flow_shop_and_conserves_requests_and_tokens(pp, policy, replicas):
    sc = scenario(model="llama-3.1-70b", hardware="h100-sxm", parallelism={"tp": 2, "pp": pp, "replicas": replicas},
                  router={"policy": "round_robin"},
                  scheduler={"policy": policy, "max_num_batched_tokens": 2048 if policy == "chunked" else 4096},
                  workload={"requests": 150, "arrival": {"process": "poisson", "rate": 6.0},
                            "input_tokens": {"dist": "uniform", "min": 50, "max": 2000},
                            "output_tokens": {"dist": "uniform", "min": 2, "max": 200}})
    res = simulate(sc)
    req = res.requests
    assert np.isfinite(req["completion_s"]).all()  # every request completes
    it = iterations(res)
    assert req["preemptions"].sum() == 0
    assert it["prefill_tokens"].sum() == req["input_tokens"].sum()  # every prompt token prefilled once
    # every output token but the first (emitted by the prefill) comes from one decode slot of one step
    # (static batching decodes its whole batch, the finished requests' slots as padding: its steps'
    # emitted tokens are their inter-token weights)
    emitted = it["itl_weight"] if policy == "static" else it["decode_seqs"]
    assert emitted.sum() == (req["output_tokens"] - 1).sum()
    for e in range(len(res.engines)):  # an engine's steps never overlap
        sel = it["engine"] == e
        start, end = it["start_s"][sel], (it["start_s"] + it["duration_s"])[sel]
        assert (start[1:] >= end[:-1] - 1e-12).all()
    _replay(res)


def test_streamed_pp_run_matches_the_in_memory_run(tmp_path):
    sc = scenario(model="llama-3.1-70b", hardware="h100-sxm", parallelism={"tp": 2, "pp": 4},
                  router={"policy": "least_outstanding"}, scheduler={"policy": "chunked", "max_num_batched_tokens": 1024},
                  workload={"requests": 400, "arrival": {"process": "poisson", "rate": 8.0},
                            "input_tokens": {"dist": "uniform", "min": 50, "max": 1500},
                            "output_tokens": {"dist": "uniform", "min": 2, "max": 100}})
    result = simulate(sc)
    mem = summarize(result, iterations(result, detail=True))
    run = simulate_streaming(sc, tmp_path / "streamed", chunk=64)
    _same_summary(mem.to_dict(), run.summary.to_dict())


@pytest.mark.parametrize("policy, replicas", [("chunked", 1), ("continuous", 2), ("static", 1)])
def test_the_pipeline_simulator_couples_pp_engines_alike(policy, replicas):
    """A one-stage pipeline of a PP2 engine steps its replica's engines in global time order (its own loop)
    and gives the single-engine simulator's stage-coupled times."""
    from infersim.serving.pipeline import simulate_pipeline
    from infersim.serving.pipeline.spec import validate_pipeline
    from infersim.serving.scenario import validate_scenario

    wl = {"requests": 120, "arrival": {"process": "poisson", "rate": 12.0},
          "input_tokens": {"dist": "uniform", "min": 100, "max": 1500},
          "output_tokens": {"dist": "uniform", "min": 2, "max": 80}}
    engine = {"model": "llama-3.1-8b", "parallelism": {"pp": 2, "replicas": replicas},
              "scheduler": {"policy": policy, "max_num_seqs": 48, "max_num_batched_tokens": 2048},
              "router": {"policy": "least_outstanding"}}
    single = simulate(validate_scenario({"seed": 3, **engine, "workload": wl}, "<test>"))
    piped = simulate_pipeline(validate_pipeline({"seed": 3, "engines": {"e": {"kind": "llm", **engine}},
                                                 "graph": [{"name": "g", "kind": "llm", "engine": "e"}],
                                                 "workload": wl}, "<test>"))
    for key in ("first_token_s", "completion_s"):
        np.testing.assert_allclose(piped.requests[key], single.requests[key], rtol=1e-12, atol=0)
    _replay(single)


@pytest.mark.parametrize("preemption, policy", [("recompute", "chunked"), ("swap", "continuous")])
def test_preempting_pipeline_engines_stay_on_the_flow_shop(preemption, policy):
    """A KV cache too small for the load: requests are preempted (recomputed, or swapped out and back, the
    copies charged to the step), every request still completes and every step is the flow shop's."""
    sc = scenario(parallelism={"pp": 2},
                  scheduler={"policy": policy, "max_num_batched_tokens": 2048, "num_gpu_blocks_override": 240,
                             "preemption": preemption},
                  workload={"requests": 120, "arrival": {"process": "poisson", "rate": 20.0},
                            "input_tokens": {"dist": "uniform", "min": 50, "max": 800},
                            "output_tokens": {"dist": "uniform", "min": 2, "max": 300}})
    res = simulate(sc)
    assert res.requests["preemptions"].sum() > 10
    assert np.isfinite(res.requests["completion_s"]).all()
    _replay(res)
