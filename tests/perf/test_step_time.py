"""The fast step-time model must equal the full operator graph, step for step."""

import numpy as np
import pytest

from infersim.hardware import get_device
from infersim.models import get_model
from infersim.perf.estimate import step_costs
from infersim.perf.parallel import Parallelism, Precision
from infersim.perf.shape import StepShape
from infersim.perf.step_time import StepTimeModel


def _random_batches(rng, trials: int, max_pre: int, max_dec: int, max_chunk: int, short_chunk: int | None = None):
    """(chunks, pasts, decode contexts) of random mixed batches; with ``short_chunk``, two batches in
    three have only chunks shorter than it (partial query tiles)."""
    for trial in range(trials):
        n_pre, n_dec = int(rng.integers(0, max_pre)), int(rng.integers(0, max_dec))
        chunks = rng.integers(1, short_chunk if short_chunk and trial % 3 else max_chunk, n_pre)
        pasts = rng.integers(0, 5000, n_pre)
        ctx = rng.integers(1, 12000, n_dec)
        if n_pre + n_dec:
            yield chunks, pasts, ctx


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
    for chunks, pasts, ctx in _random_batches(np.random.default_rng(1), 6, 4, 40, 700):
        n_pre, n_dec = len(chunks), len(ctx)
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


#: every per-thread-block, MLA, grouped-GEMM and split-K term of the efficiency model switched on
BLOCK_TERMS = dict(
    gemm_tiles=[(64, 64), (128, 128), (128, 256)], gemm_k_half=150.0, gemm_split_k=8, gemm_tile_intensity_half=12.0,
    decode_attention_parallel_half_by_dtype={"fp8": 40.0},
    # head size 128 (Llama) has no native bf16 kernel here; fp8-cache context attention in bf16
    attention_native_head_dims_by_dtype={"bf16": [64, 256]}, attention_fallback_fraction_by_dtype={"bf16": 0.3},
    fp8_kv_context_math="activation",
    attention_softmax_fraction=0.06, attention_query_tile=64, attention_cta_us=3.0,
    decode_attention_cta_us=2.0, decode_attention_cta_us_by_dtype={"fp8": 0.5}, decode_attention_head_cta_us=1.2,
    decode_attention_max_group=4, decode_attention_parallel_half=3.0, attention_parallel_half=40.0,
    decode_attention_parallel_sharpness_by_dtype={"fp8": 6.0}, decode_attention_head_cta_us_by_dtype={"fp8": 2.5},
    decode_attention_head_launch_us_by_dtype={"fp8": 4.0}, decode_attention_head_parallel_half=5.0,
    decode_attention_reread_bandwidth_ratio=3.0, decode_attention_reread_bandwidth_ratio_by_dtype={"fp8": 1.5},
    decode_attention_max_fraction=0.6,
    attention_query_bandwidth_fraction=0.4, decode_attention_query_bandwidth_fraction=0.2,
    attention_query_bandwidth_fraction_by_dtype={"fp8": 0.1}, decode_attention_memory_max_fraction_by_dtype={"fp8": 0.3},
    mla_overrides={"attention_overhead_us": 9.0, "attention_max_fraction_by_dtype.bf16": 0.45,
                   "attention_cta_us": 0.7, "decode_attention_cta_us": 25.0, "decode_attention_parallel_half": 20.0,
                   "decode_attention_parallel_sharpness": 3.0,
                   "decode_attention_memory_max_fraction": 0.5, "attention_parallel_half": 7.0,
                   "decode_attention_memory_max_fraction_by_dtype.bf16": 0.9,
                   "attention_query_bandwidth_fraction_by_dtype.bf16": 2.0},
    grouped_gemm_expert_tiles=True, grouped_gemm_act_bandwidth_fraction=0.3,
    grouped_gemm_memory_fraction_by_dtype={"bf16": 0.6, "fp8": 0.5},
)


@pytest.mark.parametrize("model,par,prec", [
    ("llama-3.1-8b", Parallelism(), Precision()),  # group 4: the grouped decode kernel
    ("llama-3.1-8b", Parallelism(), Precision(kv_cache="fp8")),  # grouped fp8 decode: a sharp parallelism ramp
    ("llama-3.1-70b", Parallelism(tp=2), Precision(kv_cache="fp8")),  # group 8 > 4: one block per query head
    ("llama-2-7b", Parallelism(), Precision()),  # MHA: the per-head kernel
    ("gemma-2-9b", Parallelism(tp=2), Precision()),  # sliding-window layers
    ("deepseek-v3", Parallelism(tp=8, ep=8), Precision(weight="fp8")),  # MLA overrides, split-K MLA GEMMs
    ("qwen3-30b-a3b", Parallelism(tp=4, ep=4, dp_attention=True), Precision()),  # fractional sequences
])
def test_step_time_equals_full_graph_with_block_terms(model, par, prec):
    import dataclasses

    base = get_device("h200")
    d = dataclasses.replace(base, efficiency=base.efficiency.model_copy(update=BLOCK_TERMS))
    m = get_model(model)
    fast = StepTimeModel(m, d, par, prec, initial_max_tokens=64)
    # many short chunks (partial query tiles), a few long ones, and decodes
    for chunks, pasts, ctx in _random_batches(np.random.default_rng(7), 8, 12, 60, 900, short_chunk=40):
        shape = StepShape.from_requests(m, chunks=chunks, pasts=pasts, decode_contexts=ctx)
        _, costs = step_costs(m, d, par, prec, shape)
        assert fast.step_time_for(chunks, pasts, ctx) == pytest.approx(costs.step_time_s[0], rel=1e-9)
    # the terms are on: the same batch costs more than on the device without them
    plain = StepTimeModel(m, base, par, prec)
    chunks, pasts, ctx = [17, 33, 5], [0, 100, 7], [900] * 24
    assert fast.step_time_for(chunks, pasts, ctx) != pytest.approx(plain.step_time_for(chunks, pasts, ctx), rel=1e-3)


def test_rows_gain_block_keys_only_when_the_device_sets_block_terms():
    # the serving simulator's fast path reads these row dicts; plain devices keep the old layout
    m = get_model("llama-3.1-8b")
    plain = StepTimeModel(m, get_device("h100-sxm", efficiency="spec"))  # no block terms in the spec model
    assert all("blocks" not in r and "split_k" not in r for r in plain._attention_rows)
    import dataclasses

    base = get_device("h100-sxm", efficiency="spec")
    d = dataclasses.replace(base, efficiency=base.efficiency.model_copy(update=BLOCK_TERMS))
    rows = StepTimeModel(m, d)._attention_rows
    assert any("blocks" in r for r in rows)
