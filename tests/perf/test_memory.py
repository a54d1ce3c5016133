import pytest

from infersim.hardware import get_device
from infersim.models import builtin_names, get_model, param_counts
from infersim.perf.estimate import estimate
from infersim.perf.memory import (kv_bytes_per_sequence, max_batch_for_context, memory_breakdown,
                                  weight_bytes_per_device)
from infersim.perf.parallel import Parallelism, Precision


@pytest.mark.parametrize("name", builtin_names())
def test_weight_bytes_equal_parameter_count_times_two_in_bf16(name):
    # memory.py and models/params.py count tensors independently; they must agree exactly
    m = get_model(name)
    assert weight_bytes_per_device(m, Parallelism(), Precision()).total == pytest.approx(
        2 * param_counts(m).total, rel=1e-9)


def test_tensor_parallel_divides_weights():
    m = get_model("llama-3.1-70b")
    full = weight_bytes_per_device(m, Parallelism(), Precision()).total
    tp8 = weight_bytes_per_device(m, Parallelism(tp=8), Precision()).total
    assert tp8 == pytest.approx(full / 8, rel=1e-3)  # only norms are replicated


def test_fp8_halves_linear_weights_but_not_embeddings():
    m = get_model("llama-3.1-8b")
    bf16 = weight_bytes_per_device(m, Parallelism(), Precision())
    fp8 = weight_bytes_per_device(m, Parallelism(), Precision(weight="fp8"))
    assert fp8.attention == bf16.attention / 2 and fp8.ffn == bf16.ffn / 2
    assert fp8.embeddings == bf16.embeddings


def test_pipeline_stage_holds_its_layers():
    m = get_model("llama-3.1-70b")
    w = weight_bytes_per_device(m, Parallelism(pp=4), Precision())
    per_layer = (param_counts(m).attention + param_counts(m).dense_ffn) / 80 * 2
    assert w.attention + w.ffn == pytest.approx(20 * per_layer)


def test_kv_bytes_hand_computation():
    m = get_model("llama-3.1-8b")
    assert kv_bytes_per_sequence(m, Parallelism(), Precision(), 1000) == 1000 * 2 * 8 * 128 * 2 * 32
    # tp=16 > 8 kv heads: each device still holds one full kv head per layer
    assert kv_bytes_per_sequence(m, Parallelism(tp=16), Precision(kv_cache="fp8"), 1000) == 1000 * 2 * 128 * 32
    g = get_model("gemma-2-9b")  # 21 sliding (4096) + 21 global layers, 8 kv heads x 256
    per = 2 * 8 * 256 * 2
    assert kv_bytes_per_sequence(g, Parallelism(), Precision(), 10000) == 21 * per * 4096 + 21 * per * 10000


def test_seventy_b_in_bf16_does_not_fit_one_h100_and_says_so():
    m, d = get_model("llama-3.1-70b"), get_device("h100-sxm")
    mem = memory_breakdown(m, d, Parallelism(), Precision(), batch=1, context=2048, prefill_tokens=2048)
    assert not mem.fits
    assert mem.weights_bytes > d.memory_bytes
    est = estimate(m, d, batch=1, input_tokens=1024, output_tokens=128)
    assert not est.fits and est.to_dict()["fits"] is False and "ttft_s" not in est.to_dict()


def test_max_batch_shrinks_with_context_and_grows_with_fp8_kv():
    m, d = get_model("llama-3.1-8b"), get_device("h100-sxm")
    short = max_batch_for_context(m, d, Parallelism(), Precision(), 1024)
    long = max_batch_for_context(m, d, Parallelism(), Precision(), 8192)
    fp8 = max_batch_for_context(m, d, Parallelism(), Precision(kv_cache="fp8"), 8192)
    assert short > long > 0
    assert fp8 == pytest.approx(2 * long, rel=0.02)
