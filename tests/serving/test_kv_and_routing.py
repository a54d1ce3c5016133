"""KV-cache accounting, prefix caching hits, and router decisions on hand-made cases."""

import pytest

from infersim.serving.engine import simulate
from infersim.serving.kv_cache import KVCache
from infersim.serving.metrics import request_metrics, summarize

from ._util import oracle, scenario, trace_scenario


def test_watermark_blocks_admission_but_not_decode_appends():
    kv = KVCache(total_blocks=100, block_size=16, watermark=0.05)  # 5 blocks kept free for admissions
    assert kv.can_admit(95) and not kv.can_admit(96)
    kv.allocate(95)
    assert kv.available == 5 and kv.used == 95
    kv.allocate(5)  # appends may take the last blocks
    assert kv.free == 0 and kv.used == 100


def test_prefix_blocks_are_shared_then_evicted_least_recently_released_first():
    kv = KVCache(total_blocks=10, block_size=16, watermark=0.0, prefix_caching=True)
    # a request of group 1 (48-token prefix = 3 full blocks) computes it, donates it, completes
    assert kv.lookup(1, 50) == 0
    kv.allocate(4)  # ceil(50 / 16)
    kv.acquire(1, 0, 50)
    assert kv.donate(1, 0, 3) == 3  # it now references the group's 3 blocks
    kv.release(4 - 3)
    kv.unref(1)
    assert (kv.used, kv.free, kv.evictable) == (0, 7, 3)
    # the same for group 2 (2 blocks), released later
    kv.allocate(3)
    kv.acquire(2, 0, 40)
    kv.donate(2, 0, 2)
    kv.release(1)
    kv.unref(2)
    assert (kv.used, kv.free, kv.evictable) == (0, 5, 5)
    # a hit on group 2 pins its blocks: they stop being evictable
    assert kv.lookup(2, 40) == 2 and kv.pin_cost(2, 2) == 2
    kv.acquire(2, 2, 40)
    assert (kv.used, kv.evictable, kv.hit_tokens) == (2, 3, 32)
    kv.unref(2)
    # allocating 7 needs 2 evictions: group 1 was released first, so its tail blocks go first
    kv.allocate(7)
    assert kv.cached == {1: 1, 2: 2} and kv.evicted_blocks == 2
    assert kv.used + kv.free + kv.evictable == kv.total_blocks
    # (prompt - 1) // 16: at least one prompt token is always computed
    assert kv.lookup(2, 32) == 1


def test_prefix_caching_hits_shorten_the_prefill():
    sc = scenario(scheduler={"policy": "continuous", "prefix_caching": True},
                  workload={"requests": 6, "arrival": {"process": "constant", "rate": 1.0},
                            "input_tokens": {"dist": "fixed", "value": 36},
                            "output_tokens": {"dist": "fixed", "value": 2},
                            "prefix": {"groups": 1, "tokens": 64, "fraction": 1.0}})
    res = simulate(sc)
    stm = oracle()
    req = res.requests
    assert req["input_tokens"].tolist() == [100] * 6  # 64 shared + 36 own
    # the first request computes the 4 prefix blocks; every later one reuses them (alone, 1 s apart)
    assert req["prefix_hit_tokens"].tolist() == [0, 64, 64, 64, 64, 64]
    ttft = request_metrics(req)["ttft_s"]
    assert ttft[0] == pytest.approx(stm.step_time_for([100], [0], []), rel=1e-9)
    assert ttft[1:] == pytest.approx([stm.step_time_for([36], [64], [])] * 5, rel=1e-9)
    s = summarize(res)
    assert s.prefix_hit_rate == pytest.approx(5 * 64 / (6 * 100))
    assert res.kv_stats[0]["used_blocks_at_end"] == 0 and res.kv_stats[0]["evictable_blocks_at_end"] == 4


ROWS = [(0.0, 2000, 2000), (0.01, 10, 2), (1.0, 10, 2), (1.001, 10, 2)]


@pytest.mark.parametrize("policy,expected", [
    ("round_robin", [0, 1, 0, 1]),
    # r0 keeps replica 0 busy; r1 is done long before r2 arrives, so r2 -> 1; r3 arrives while r2 runs: tie -> 0
    ("least_outstanding", [0, 1, 1, 0]),
    # replica 0 holds r0's ~2,100 tokens; replica 1 only r2's one block
    ("least_kv", [0, 1, 1, 1]),
])
def test_router_policies(tmp_path, policy, expected):
    sc = trace_scenario(tmp_path, ROWS, parallelism={"replicas": 2}, router={"policy": policy})
    res = simulate(sc)
    assert res.requests["replica"].tolist() == expected


def test_router_sees_a_completion_only_when_its_step_ends(tmp_path):
    stm = oracle()
    p1 = stm.step_time_for([10], [0], [])  # r1's only step (1 output token: done at its end)
    rows = [(0.0, 2000, 2000), (0.01, 10, 1), (0.01 + p1 / 2, 10, 1), (0.01 + 2 * p1, 10, 1)]
    sc = trace_scenario(tmp_path, rows, parallelism={"replicas": 2}, router={"policy": "least_outstanding"})
    res = simulate(sc)
    # r2 arrives mid-step: replica 1 still has r1 outstanding (tie -> 0); r3 arrives after it completed
    assert res.requests["replica"].tolist() == [0, 1, 0, 1]
    assert res.requests["completion_s"][1] == pytest.approx(0.01 + p1, rel=1e-9)


def test_pipeline_parallel_replica_has_virtual_engines():
    sc = scenario(model="llama-3.1-70b", hardware="h100-sxm", parallelism={"tp": 2, "pp": 2},
                  workload={"requests": 40, "arrival": {"process": "poisson", "rate": 4.0},
                            "input_tokens": {"dist": "fixed", "value": 200},
                            "output_tokens": {"dist": "fixed", "value": 20}})
    res = simulate(sc)
    assert len(res.engines) == 2 and res.engine_replica == [0, 0]
    assert all(s.n_steps > 0 for s in res.engines)  # both virtual engines got work
    assert res.kv_blocks == res.deployment.blocks_per_engine
