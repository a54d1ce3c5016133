"""The operator graph against hand counts and the independent parameter counts."""

import numpy as np
import pytest

from infersim.models import get_model, param_counts
from infersim.perf.graph import build_step_graph
from infersim.perf.routing import expected_active_experts, expert_load_imbalance
from infersim.perf.memory import weight_bytes_per_device
from infersim.perf.operators import OpKind
from infersim.perf.parallel import Parallelism, Precision
from infersim.perf.shape import StepShape


def rows(table, prefix):
    return [i for i, n in enumerate(table.names) if n.startswith(prefix)]


def total(table, field, names, col=0):
    arr = getattr(table, field)
    return float(sum(arr[i, col] * table.count[i] for i in names))


def test_dense_linear_flops_are_two_per_parameter_per_token():
    m = get_model("llama-3.1-8b")
    p = param_counts(m)
    tokens = 4096
    t = build_step_graph(m, Parallelism(), Precision(), StepShape.uniform(m, prefill_seqs=4, chunk=1024))
    linear = rows(t, "qkv_proj") + rows(t, "o_proj") + rows(t, "mlp.")
    gemm = [i for i in linear if t.kind[i] == OpKind.GEMM]
    assert total(t, "flops", gemm) == pytest.approx(2 * tokens * (p.attention + p.dense_ffn))
    # LM head: only the last token of each of the 4 prefills
    assert total(t, "flops", rows(t, "lm_head")) == 2 * 4 * m.vocab_size * m.hidden_size


def test_causal_attention_flops_hand_count():
    m = get_model("llama-3.1-8b")
    n = 2048
    t = build_step_graph(m, Parallelism(), Precision(), StepShape.uniform(m, prefill_seqs=1, chunk=n))
    # QK^T and PV: 2 FLOPs per MAC, head dim 128 each, n(n+1)/2 causal pairs, 32 heads, 32 layers
    expected = 2 * (n * (n + 1) / 2) * 32 * (128 + 128) * 32
    assert total(t, "flops", rows(t, "attention.prefill")) == pytest.approx(expected)


def test_decode_reads_every_weight_once_and_the_kv_cache():
    m = get_model("llama-3.1-8b")
    prec = Precision()
    ctx, batch = 3000, 8
    t = build_step_graph(m, Parallelism(), prec, StepShape.uniform(m, decode_seqs=batch, decode_context=ctx))
    read = float((t.weight_bytes[:, 0] * t.count).sum())
    w = weight_bytes_per_device(m, Parallelism(), prec)
    # the embedding table is gathered (only the batch's rows), everything else is streamed once
    assert read == pytest.approx(w.total - m.vocab_size * m.hidden_size * 2, rel=1e-12)
    kv = float((t.kv_bytes[:, 0] * t.count).sum())
    per_token = 2 * 8 * 128 * 2 * 32  # K and V, 8 kv heads, dim 128, bf16, 32 layers
    assert kv == pytest.approx(batch * (ctx + 1) * per_token)


def test_mla_decode_reads_the_compressed_latent():
    m = get_model("deepseek-v3")
    prec = Precision(kv_cache="fp8")
    ctx = 10000
    t = build_step_graph(m, Parallelism(tp=8, ep=8), prec, StepShape.uniform(m, decode_seqs=1, decode_context=ctx))
    kv = total(t, "kv_bytes", rows(t, "attention.decode"))
    assert kv == pytest.approx((ctx + 1) * (512 + 64) * 1 * 61)


def test_tensor_parallel_splits_flops_and_adds_two_all_reduces_per_layer():
    m = get_model("llama-3.1-70b")
    shape = StepShape.uniform(m, prefill_seqs=2, chunk=512)
    t1 = build_step_graph(m, Parallelism(tp=1), Precision(), shape)
    t8 = build_step_graph(m, Parallelism(tp=8), Precision(), shape)
    g1 = [i for i in range(len(t1.names)) if t1.kind[i] == OpKind.GEMM and t1.names[i] != "lm_head"]
    g8 = [i for i in range(len(t8.names)) if t8.kind[i] == OpKind.GEMM and t8.names[i] != "lm_head"]
    assert total(t8, "flops", g8) * 8 == pytest.approx(total(t1, "flops", g1))
    ar = [i for i, n in enumerate(t8.names) if n.startswith("allreduce")]
    assert sum(t8.count[i] for i in ar) == 2 * 80
    assert all(t8.comm_bytes[i, 0] == 1024 * 8192 * 2 for i in ar)
    assert not any(n.startswith("allreduce") for n in t1.names)


def test_moe_reads_only_active_experts_in_decode_and_all_in_prefill():
    m = get_model("mixtral-8x7b")
    prec = Precision()
    expert_bytes = 3 * m.hidden_size * m.moe_intermediate_size * 2
    t = build_step_graph(m, Parallelism(), prec, StepShape.uniform(m, decode_seqs=1, decode_context=100))
    read = total(t, "weight_bytes", rows(t, "moe.experts"))
    assert read == pytest.approx(2 * expert_bytes * m.num_layers)  # one token, top-2: two experts
    t = build_step_graph(m, Parallelism(), prec, StepShape.uniform(m, prefill_seqs=1, chunk=4096))
    read = total(t, "weight_bytes", rows(t, "moe.experts"))
    assert read == pytest.approx(8 * expert_bytes * m.num_layers, rel=1e-6)


def test_expected_active_experts_matches_enumeration():
    import itertools
    # 4 experts, top-1, 2 tokens: both pick the same expert with probability 1/4
    assert expected_active_experts(2, 1, 4) == pytest.approx(1 * 0.25 + 2 * 0.75)
    # 4 experts, top-2, 2 tokens: enumerate the 6 x 6 equally likely pairs of expert sets
    sets = list(itertools.combinations(range(4), 2))
    mean = sum(len(set(a) | set(b)) for a in sets for b in sets) / len(sets) ** 2
    assert expected_active_experts(2, 2, 4) == pytest.approx(mean)
    assert expected_active_experts(1, 8, 256) == pytest.approx(8.0)
    assert expected_active_experts(1e6, 8, 256) == pytest.approx(256.0)


def test_expert_imbalance_grows_with_groups_and_vanishes_with_tokens():
    assert expert_load_imbalance(1000, 1) == 1.0
    small, large = expert_load_imbalance(np.array([64.0, 1e7]), 8)
    assert small > 1.2 and large == pytest.approx(1.0, abs=0.01)
    assert expert_load_imbalance(64, 8) < expert_load_imbalance(64, 32)


def test_pipeline_adds_stage_sends():
    m = get_model("llama-3.1-70b")
    t = build_step_graph(m, Parallelism(pp=4), Precision(), StepShape.uniform(m, decode_seqs=4, decode_context=10))
    send = rows(t, "sendrecv")
    assert len(send) == 1 and t.count[send[0]] == 3
    assert t.comm_bytes[send[0], 0] == 4 * 8192 * 2


def test_sliding_window_layers_cap_attention():
    m = get_model("gemma-2-9b")
    t = build_step_graph(m, Parallelism(), Precision(), StepShape.uniform(m, decode_seqs=1, decode_context=10000))
    windowed = [i for i in rows(t, "attention.decode") if "w=" in t.names[i]]
    full = [i for i in rows(t, "attention.decode") if "w=" not in t.names[i]]
    kv_per_token_layer = 2 * 8 * 256 * 2
    assert total(t, "kv_bytes", windowed) == pytest.approx(21 * (4096 + 1) * kv_per_token_layer)
    assert total(t, "kv_bytes", full) == pytest.approx(21 * (10000 + 1) * kv_per_token_layer)


def test_unfused_attention_moves_the_score_matrix():
    m = get_model("llama-3.1-8b")
    shape = StepShape.uniform(m, prefill_seqs=1, chunk=4096)
    from infersim.perf.graph import GraphOptions
    fused = build_step_graph(m, Parallelism(), Precision(), shape)
    unfused = build_step_graph(m, Parallelism(), Precision(), shape, GraphOptions(attention_impl="unfused"))
    f = total(fused, "act_bytes", rows(fused, "attention"))
    u = total(unfused, "act_bytes", rows(unfused, "attention"))
    scores = 4096 * 4096 * 32 * 2 * 32  # chunk x context x heads x bf16 x layers
    assert u - f >= 3 * scores * 0.99  # written, read+written by softmax, read


def test_dp_attention_uses_all_to_all_for_experts_and_no_all_reduce():
    m = get_model("deepseek-v3")
    par = Parallelism(tp=8, ep=8, dp_attention=True)
    batch = 64  # the replica's batch: 8 sequences per device
    t = build_step_graph(m, par, Precision(), StepShape.uniform(m, decode_seqs=batch, decode_context=1000))
    assert not any(n.startswith("allreduce") for n in t.names)
    for name in ("alltoall.dispatch", "alltoall.combine"):
        (i,) = rows(t, name)
        assert t.count[i] == 58  # MoE layers (61 - 3 dense)
        assert t.group_size[i] == 8
        # each device sends its 8 tokens' hidden states (7168 x bf16) to their 8 experts
        assert t.comm_bytes[i, 0] == pytest.approx(8 * 8 * 7168 * 2)
    # attention is not sharded: a device computes all 128 heads for its own 8 sequences
    kv = total(t, "kv_bytes", rows(t, "attention.decode"))
    assert kv == pytest.approx(8 * 1001 * (512 + 64) * 2 * 61)


def test_dp_attention_weights_replicate_attention_and_split_experts():
    m = get_model("deepseek-v3")
    p = param_counts(m)
    dp = weight_bytes_per_device(m, Parallelism(tp=8, ep=8, dp_attention=True), Precision())
    assert dp.experts == pytest.approx(p.moe_routed / 8 * 2)
    assert dp.attention == pytest.approx(p.attention * 2)
    assert dp.ffn == pytest.approx((p.dense_ffn + p.moe_shared) * 2)


def test_dp_attention_needs_moe_and_full_expert_parallelism():
    from infersim.errors import InfersimError

    with pytest.raises(InfersimError, match="--dp-attention needs a MoE model"):
        Parallelism(tp=8, ep=8, dp_attention=True).validate(get_model("llama-3.1-70b"))
    with pytest.raises(InfersimError, match="--ep equal to --tp"):
        Parallelism(tp=8, ep=4, dp_attention=True).validate(get_model("deepseek-v3"))


def test_attention_and_expert_rows_carry_their_counts():
    m = get_model("llama-3.1-70b")  # 64 query heads, 8 KV heads
    shape = StepShape.from_requests(m, chunks=[100, 30], pasts=[0, 50], decode_contexts=[10, 20, 30])
    t = build_step_graph(m, Parallelism(tp=4), Precision(), shape)
    (pre,), (dec,) = rows(t, "attention.prefill"), rows(t, "attention.decode")
    assert (t.seqs[pre, 0], t.query_tokens[pre, 0], t.heads[pre, 0], t.kv_heads[pre, 0]) == (2, 130, 16, 2)
    assert t.scores[pre, 0] == 16 * (100 * 101 / 2 + 30 * 50 + 30 * 31 / 2)  # causal pairs x query heads
    assert (t.seqs[dec, 0], t.query_tokens[dec, 0], t.scores[dec, 0]) == (3, 3, 16 * 60)
    assert not t.mla.any() and not t.experts.any()
    q = get_model("qwen3-30b-a3b")  # 128 experts, top-8
    t = build_step_graph(q, Parallelism(tp=4, ep=4), Precision(), StepShape.uniform(q, decode_seqs=5, decode_context=9))
    for i in rows(t, "moe.experts.gate_up") + rows(t, "moe.experts.down"):
        assert t.experts[i, 0] == pytest.approx(128 * (1 - (1 - 8 / 128) ** 5) / 4)
    d = get_model("deepseek-v3")
    t = build_step_graph(d, Parallelism(tp=8), Precision(), StepShape.uniform(d, decode_seqs=2, decode_context=9))
    for i in rows(t, "attention.decode"):  # one per layer group (dense and MoE layers)
        assert t.mla[i] and (t.heads[i, 0], t.kv_heads[i, 0]) == (16, 1)


def test_context_attention_math_over_an_fp8_cache_follows_the_device():
    """bf16 activations over an fp8 KV cache: fp8 context attention by default (Hopper's
    TensorRT-LLM), bf16 on a device whose kernels keep the activation dtype (the L40S); decode
    attention keeps the graph's rule either way."""
    from infersim.hardware import get_device
    from infersim.perf.graph import GraphOptions, options_for_device

    m = get_model("llama-3.1-8b")
    prec = Precision(kv_cache="fp8")
    shape = StepShape.from_requests(m, chunks=[512], pasts=[0], decode_contexts=[1000])

    def attention_dtypes(options):
        t = build_step_graph(m, Parallelism(), prec, shape, options)
        return {n.split("[")[0]: d for n, d in zip(t.names, t.dtype) if n.startswith("attention.")}

    assert attention_dtypes(GraphOptions()) == {"attention.prefill": "fp8", "attention.decode": "fp8"}
    l40s = get_device("l40s", efficiency="spec")
    l40s_bf16 = l40s.efficiency.model_copy(update={"fp8_kv_context_math": "activation"})
    import dataclasses
    options = options_for_device(GraphOptions(), dataclasses.replace(l40s, efficiency=l40s_bf16))
    assert options.fp8_kv_context_math == "activation"
    assert attention_dtypes(options) == {"attention.prefill": "bf16", "attention.decode": "fp8"}
    assert options_for_device(GraphOptions(), l40s) == GraphOptions()  # the spec-sheet default: fp8
    # the shipped profile read the L40S's choice from aiconfigurator-core's rows: bf16 FMHA
    assert get_device("l40s").efficiency.fp8_kv_context_math == "activation"
