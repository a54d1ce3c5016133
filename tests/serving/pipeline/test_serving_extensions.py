"""The small extensions of the serving simulator the pipelines rely on."""

from infersim.serving.engine import prepare
from infersim.serving.kv_cache import KVCache
from infersim.serving.replica import Replica
from infersim.serving.run_logs import RequestLog
from infersim.serving.scenario import validate_scenario
from infersim.serving.scheduler import make_scheduler
from infersim.serving.sweep import bracket_and_bisect, capacity_of

from ._util import WORKLOAD


def test_dp_attention_replica_caches_tp_devices_worth_of_kv():
    base = {"model": "deepseek-v3", "precision": {"weight": "fp8", "kv_cache": "fp8"}, "workload": WORKLOAD,
            "scheduler": {"block_size": 64}}
    dp = prepare(validate_scenario({**base, "parallelism": {"tp": 16, "ep": 16, "dp_attention": True}}))
    per_device = int(dp.kv_capacity_bytes // (dp.kv_bytes_per_token * 64))
    assert dp.blocks_per_engine == 16 * per_device
    assert dp.kv_bytes_per_token == (512 + 64) * 61  # the MLA latent, fp8, every layer


def _replica(blocks=100, policy="continuous"):
    log = RequestLog([0.0] * 4, [100] * 4, [5] * 4, [-1] * 4, [0] * 4)
    from infersim.hardware import get_device
    from infersim.models import get_model
    from infersim.perf.step_time import StepTimeModel
    from infersim.serving.cost import StepCost
    cost = StepCost(StepTimeModel(get_model("llama-3.1-8b"), get_device("h100-sxm")), 1000)
    r = Replica(0, 0, cost, KVCache(blocks, 16, 0.0), log, max_num_seqs=8, token_budget=4096,
                preemption="recompute", swap_bytes_per_s=1e9, kv_bytes_per_token=1.0)
    r.scheduler = make_scheduler(policy)
    return r, log


def test_loaded_tokens_take_blocks_but_no_compute():
    r, _ = _replica()
    r.enqueue(0, 0.0, loaded=64)
    r.scheduler.step(r, float("inf"))
    single = r.steps.singles[0]
    assert single[3] == 36  # prefill tokens computed: 100 - 64
    assert r.kv.used == 7  # ceil(100 / 16) blocks hold the whole prompt


def test_transferred_request_joins_decode_without_a_copy():
    r, log = _replica()
    r.enqueue_transferred(1, 2.0, 100, 1, 5, 1.5)
    r.scheduler.step(r, float("inf"))
    assert r.t > 2.0 and r.steps.singles[0][9] == 0.0  # no swap time
    assert r.steps.singles[0][5] == 1 and r.steps.singles[0][3] == 0  # one decode, no prefill
    while r.active:
        r.scheduler.step(r, float("inf"))
    assert log.completion_s[1] > 2.0 and log.first_scheduled_s[1] == 2.0
    assert r.kv.used == 0  # its blocks were freed


def test_bracket_and_bisect_on_a_known_threshold():
    tried = bracket_and_bisect(lambda rate: rate <= 7.3, 1.0, tolerance=0.01)
    cap = capacity_of(tried)
    assert 7.3 * 0.99 <= cap <= 7.3
    assert capacity_of([(1.0, False)]) is None
    assert capacity_of([(1.0, True), (2.0, False), (3.0, True)]) == 1.0  # never above a failure


def test_closed_loop_replicas_tied_in_time_make_progress():
    """Two replicas whose next steps start at the same instant (identical requests issued together)
    used to hand the first one a decode-run horizon equal to its own start: no step, forever."""
    from infersim.serving.engine import simulate

    sc = validate_scenario({"model": "llama-3.1-8b", "parallelism": {"replicas": 2},
                            "workload": {"requests": 8, "arrival": {"process": "closed_loop", "users": 2},
                                         "input_tokens": {"dist": "fixed", "value": 100},
                                         "output_tokens": {"dist": "fixed", "value": 50}}})
    r = simulate(sc)
    done = r.requests["completion_s"]
    assert (done > 0).all()
    # the two replicas run in lockstep: requests complete in pairs at the same instants
    assert len(set(done.tolist())) == 4
