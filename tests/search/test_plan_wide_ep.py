"""Wide expert parallelism in the plan grid: DP attention with EP beyond the 8-GPU NVLink domain
(DP16 EP16 over two nodes) is a candidate for MoE models, costed by the static pass and run by the
simulated check."""

import pytest

from infersim.hardware import get_device
from infersim.models import get_model
from infersim.search.evaluators.loaded import LoadedEvaluator
from infersim.search.plan import PlanQuestion, _layouts, candidates, check_question, context_for
from infersim.search.plan_check import aggregated_scenario, check_point


def test_wide_ep_layouts_only_for_moe_and_within_the_budget():
    h200 = get_device("h200")
    wide = [(tp, pp, ep, dpa) for tp, pp, ep, dpa in _layouts(get_model("deepseek-v3"), h200, 16) if tp > 8]
    assert wide == [(16, 1, 16, True)]  # 32 and 64 exceed the 16 GPUs
    assert (16, 1, 16, True) not in _layouts(get_model("deepseek-v3"), h200, 8)
    assert (32, 1, 32, True) in _layouts(get_model("deepseek-v3"), h200, 32)
    assert max(tp for tp, *_ in _layouts(get_model("llama-3.1-70b"), h200, 64)) == 8  # dense: TP in the domain
    # 128 experts split 64 ways is allowed; Mixtral's 8 experts cannot be split 16 ways
    assert (64, 1, 64, True) in _layouts(get_model("qwen3-30b-a3b"), h200, 64)
    assert not [tp for tp, *_ in _layouts(get_model("mixtral-8x7b"), h200, 16) if tp > 8]


@pytest.fixture(scope="module")
def dp16():
    q = PlanQuestion("qwen3-30b-a3b", "h100-sxm", 16, 1024, 128, 1.0, 0.050, precisions=("bf16",),
                     modes=("aggregated",), batch_caps=(256,), token_budgets=(4096,))
    model, device = check_question(q)
    (c,) = [c for c in candidates(q, model, device) if c["tp"] == 16]
    return q, c


def test_dp16_candidate_is_one_replica_of_sixteen_gpus(dp16):
    q, c = dp16
    assert (c["tp"], c["ep"], c["dp_attention"], c["replicas"], c["pp"]) == (16, 16, True, 1, 1)
    out = LoadedEvaluator(context_for(q)).evaluate([c]).outcome(0)
    assert out.status == "ok", out.error
    assert out.metrics["devices"] == 16
    assert out.metrics["goodput_tokens_per_s_per_device"] > 0


def test_simulated_check_runs_dp16_and_caches_sixteen_devices_of_kv(dp16):
    from infersim.perf.memory import activation_peak_bytes, weight_bytes_per_device
    from infersim.perf.parallel import Parallelism, Precision
    from infersim.serving import validate_scenario
    from infersim.serving.engine import prepare

    q, c = dp16
    sc = validate_scenario(aggregated_scenario(q, c, 1.0, 100), "<test>")
    dep = prepare(sc, max_context_tokens=q.input_tokens + q.output_tokens + 1)
    par = Parallelism(tp=16, ep=16, dp_attention=True)
    assert dep.parallel == par
    # one device's KV blocks (its usable memory less weights and activations, as the runtime sizes
    # it), times the 16 attention ranks
    per_device = dep.runtime.kv_capacity_bytes(
        dep.stm.device.memory_bytes, weight_bytes_per_device(get_model(c["model"]), par, Precision()).total,
        float(activation_peak_bytes(get_model(c["model"]), par, Precision(), sc.scheduler.max_num_batched_tokens,
                                    min(sc.scheduler.max_num_batched_tokens, sc.scheduler.max_num_seqs))),
        sc.scheduler.memory_utilization)
    assert dep.blocks_per_engine == 16 * int(per_device // (dep.kv_bytes_per_token * sc.scheduler.block_size))
    static = LoadedEvaluator(context_for(q)).evaluate([c]).outcome(0).metrics
    check = check_point(q, c, static)
    assert check.error is None
    assert check.capacity_rps > 0
    assert abs(check.disagreement) < 0.15  # static vs simulated SLO capacity
