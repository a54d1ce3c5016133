"""The fast step-time model must equal the full operator graph, step for step."""

import numpy as np
import pytest

from infersim.hardware import get_device
from infersim.models import get_model
from infersim.perf.estimate import step_costs
from infersim.perf.parallel import Parallelism, Precision
from infersim.perf.shape import StepShape
from infersim.perf.step_time import StepTimeModel


@pytest.mark.parametrize("model,par,prec", [
    ("llama-3.1-8b", Parallelism(), Precision()),
    ("llama-3.1-70b", Parallelism(tp=4), Precision(weight="fp8", kv_cache="fp8")),
    ("gemma-2-9b", Parallelism(tp=2), Precision()),
    ("deepseek-v3", Parallelism(tp=8, ep=8), Precision(weight="fp8")),
    ("mixtral-8x7b", Parallelism(tp=2, pp=2), Precision()),
    ("qwen3-30b-a3b", Parallelism(tp=4, ep=4, dp_attention=True), Precision(weight="fp8")),
])
def test_step_time_equals_full_graph_on_random_batches(model, par, prec):
    m = get_model(model)
    d = get_device("h200")
    fast = StepTimeModel(m, d, par, prec, initial_max_tokens=64)  # forces table growth
    rng = np.random.default_rng(1)
    for _ in range(6):
        n_pre, n_dec = rng.integers(0, 4), rng.integers(0, 40)
        chunks = rng.integers(1, 700, n_pre)
        pasts = rng.integers(0, 5000, n_pre)
        ctx = rng.integers(1, 12000, n_dec)
        if n_pre + n_dec == 0:
            continue
        shape = StepShape.from_requests(m, chunks=chunks, pasts=pasts, decode_contexts=ctx)
        table, costs = step_costs(m, d, par, prec, shape)
        assert fast.step_time_for(chunks, pasts, ctx) == pytest.approx(costs.step_time_s[0], rel=1e-9)
        flops, nbytes = fast.step_work(int(chunks.sum()), n_pre, n_dec, fast.loads_for(chunks, pasts, ctx))
        assert flops == pytest.approx(float((table.flops[:, 0] * table.count).sum()), rel=1e-9)
        assert nbytes == pytest.approx(float((table.total_bytes[:, 0] * table.count).sum()), rel=1e-9)


def test_empty_step_takes_no_time():
    m = get_model("llama-3.1-8b")
    fast = StepTimeModel(m, get_device("h100-sxm"))
    assert fast.step_time_for([], [], []) == 0.0


def test_step_time_grows_with_context_and_batch():
    m = get_model("llama-3.1-8b")
    fast = StepTimeModel(m, get_device("h100-sxm"))
    assert fast.step_time_for([], [], [1000] * 8) < fast.step_time_for([], [], [8000] * 8)
    assert fast.step_time_for([], [], [1000] * 8) < fast.step_time_for([], [], [1000] * 64)


def test_step_time_honours_per_dtype_and_attention_fractions():
    import dataclasses

    m = get_model("llama-3.1-8b")
    base = get_device("h100-sxm")
    eff = base.efficiency.model_copy(update=dict(compute_max_fraction_by_dtype={"fp8": 0.5},
                                                 attention_max_fraction=0.4))
    dev = dataclasses.replace(base, efficiency=eff)
    prec = Precision(weight="fp8", kv_cache="fp8")
    fast = StepTimeModel(m, dev, Parallelism(), prec)
    chunks, pasts, ctx = [4000], [2000], [3000] * 16
    _, costs = step_costs(m, dev, Parallelism(), prec,
                          StepShape.from_requests(m, chunks=chunks, pasts=pasts, decode_contexts=ctx))
    assert fast.step_time_for(chunks, pasts, ctx) == pytest.approx(costs.step_time_s[0], rel=1e-9)
    slower = StepTimeModel(m, base, Parallelism(), prec).step_time_for(chunks, pasts, ctx)
    assert fast.step_time_for(chunks, pasts, ctx) > slower  # lower fractions, longer compute-bound prefill
