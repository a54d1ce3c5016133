"""Wide expert parallelism (DP attention with EP spanning two 8-GPU nodes: DP16 EP16) against hand
counts: weights per device, the KV cache of the replica, the all-to-all bytes and their time over
NVLink and InfiniBand; and the MLA absorb GEMMs batched over heads."""

import numpy as np
import pytest

from infersim.errors import InfersimError
from infersim.hardware import get_device
from infersim.models import get_model
from infersim.perf.collectives import collective_time_s
from infersim.perf.graph import build_step_graph
from infersim.perf.memory import activation_peak_bytes, kv_bytes_per_token_per_device, weight_bytes_per_device
from infersim.perf.operators import Collective
from infersim.perf.parallel import Parallelism, Precision
from infersim.perf.roofline import collective_device, cost_ops
from infersim.perf.shape import StepShape
from infersim.serving.loaded import server_kv_tokens

DP16 = Parallelism(tp=16, ep=16, dp_attention=True)


@pytest.fixture(scope="module")
def qwen():
    m = get_model("qwen3-235b-a22b")
    # the config.json numbers the hand counts below use
    assert (m.hidden_size, m.num_layers, m.num_attention_heads, m.num_kv_heads, m.head_dim) == (4096, 94, 64, 4, 128)
    assert (m.num_experts, m.num_experts_per_token, m.moe_intermediate_size) == (128, 8, 1536)
    assert (m.vocab_size, m.tie_word_embeddings, m.num_shared_experts, m.qk_norm) == (151936, False, 0, True)
    assert all(m.layer_ffn(i) == "moe" for i in range(m.num_layers))
    return m


def test_dp16_ep16_weights_per_device_by_hand(qwen):
    w = weight_bytes_per_device(qwen, DP16, Precision())  # bf16: 2 bytes
    # attention whole on every device: q 4096x8192, k and v 4096x512 each, o 8192x4096
    attention = 4096 * 8192 + 2 * 4096 * 512 + 8192 * 4096
    # 128 / 16 = 8 experts per device, gate + up + down of 4096 x 1536 each
    experts = 8 * 3 * 4096 * 1536
    router, norms = 4096 * 128, 2 * 4096 + 2 * 128  # 16-bit: router, two RMSNorms, q/k norms
    embeddings = 2 * 151936 * 4096 + 4096  # untied embedding + LM head, whole; the final norm
    assert w.attention == 2 * 94 * attention
    assert w.experts == 2 * 94 * experts
    assert w.norms == 2 * 94 * (router + norms)
    assert w.embeddings == 2 * embeddings
    assert w.total == 2 * (94 * (attention + experts + router + norms) + embeddings)  # 44.38 GB
    # against DP8 EP8 on one node: the same replicated attention, half the experts
    w8 = weight_bytes_per_device(qwen, Parallelism(tp=8, ep=8, dp_attention=True), Precision())
    assert w8.attention == w.attention and w8.experts == 2 * w.experts


def test_dp16_kv_cache_is_sixteen_devices_worth(qwen):
    dev = get_device("h200")
    prec = Precision()
    # every device caches its own requests' KV with all 4 KV heads: K and V, 94 layers, bf16
    per_token = 94 * 2 * 4 * 128 * 2
    assert float(kv_bytes_per_token_per_device(qwen, DP16, prec).sum()) == per_token
    free = (dev.memory_bytes * 0.9 - weight_bytes_per_device(qwen, DP16, prec).total
            - activation_peak_bytes(qwen, DP16, prec, 2048.0, 256.0))
    kv = server_kv_tokens(qwen, dev, DP16, prec, token_budget=2048, max_batch=256, memory_utilization=0.9)
    assert float(kv) == pytest.approx(16 * free / per_token, rel=1e-12)


def test_dp16_all_to_all_bytes_and_time_over_two_nodes(qwen):
    dev = get_device("h200")  # 8-GPU NVLink domain, one 400 Gb/s InfiniBand NIC per GPU
    batch = 384  # the replica's decode batch: 24 sequences per device
    t = build_step_graph(qwen, DP16, Precision(), StepShape.uniform(qwen, decode_seqs=batch, decode_context=2048))
    costs = cost_ops(t, dev)
    assert not any(n.startswith("allreduce") for n in t.names)
    for name in ("alltoall.dispatch", "alltoall.combine"):
        (i,) = [j for j, n in enumerate(t.names) if n == name]
        assert t.count[i] == 94 and t.group_size[i] == 16
        n = 24 * 8 * 4096 * 2  # each device sends its 24 tokens' hidden states (bf16) to their 8 experts
        assert t.comm_bytes[i, 0] == n
        # of what a device sends, 7/16 goes to the 7 other GPUs of its node over NVLink and 8/16 to
        # the 8 GPUs of the other node over InfiniBand, the two at once (pairwise exchange per peer)
        view = collective_device(dev, Collective.ALL_TO_ALL)
        up, out, eff = view.scale_up, view.scale_out, view.efficiency
        frac = eff.collectives.bandwidth_fraction
        inside = 7 * up.latency_s + n * 7 / 16 / (up.bandwidth_bytes_per_s * frac * eff.collective_group_factor(8))
        outside = 8 * out.latency_s + n * 8 / 16 / (out.bandwidth_bytes_per_s * frac)
        assert costs.network_s[i, 0] == pytest.approx(max(inside, outside), rel=1e-12)
        assert outside > inside  # the InfiniBand half sets the time
    # the same bytes on one node (DP8 EP8, 48 per device for the same per-device share x 2) stay on NVLink
    one_node = collective_time_s(Collective.ALL_TO_ALL, 24 * 8 * 4096 * 2, 8, collective_device(dev, 4))
    assert float(one_node) < max(inside, outside)


def test_dp_attention_needs_no_head_split():
    # 32 query heads, 4 KV heads, 128 experts: DP64 EP64 runs whole heads on every device
    m = get_model("qwen3-30b-a3b")
    Parallelism(tp=64, ep=64, dp_attention=True).validate(m)
    with pytest.raises(InfersimError, match="attention heads"):
        Parallelism(tp=64, ep=64).validate(m)


def test_mla_absorb_is_one_gemm_batched_over_heads():
    # DeepSeek-V3 under DP8 attention: 128 heads per device, 24 decodes per device
    m = get_model("deepseek-v3")
    par = Parallelism(tp=8, ep=8, dp_attention=True)
    t = build_step_graph(m, par, Precision(weight="fp8"), StepShape.uniform(m, decode_seqs=192, decode_context=2048))
    for name, n, k in (("mla.q_absorb", 512, 128), ("mla.v_absorb", 128, 512)):
        found = [j for j, x in enumerate(t.names) if x == name]  # one row per layer group (dense, MoE)
        assert sum(t.count[j] for j in found) == 61
        i = found[0]
        assert (t.gemm_m[i, 0], t.gemm_n[i, 0], t.gemm_k[i, 0]) == (24 * 128, n, k)
        assert t.experts[i, 0] == 128  # each head's 24 rows are tiled apart
        assert t.flops[i, 0] == 2 * 24 * 128 * n * k
        assert t.weight_bytes[i, 0] == 128 * n * k * 1  # every head's fp8 matrix, read once
        assert t.act_bytes[i, 0] == 24 * 128 * (n + k) * 2
    # no decodes: no absorb work
    t0 = build_step_graph(m, par, Precision(), StepShape.uniform(m, prefill_seqs=1, chunk=64))
    i = t0.names.index("mla.q_absorb")
    assert t0.flops[i, 0] == 0 and t0.weight_bytes[i, 0] == 0


def test_mla_absorb_time_fills_the_gpu_with_heads():
    # 128 heads x 24 rows: the per-head tiles of one batched launch fill the SMs, so the absorb runs
    # within a few times its FLOPs at the dense peak, not 128 one-head GEMMs of 24 rows one after another
    m = get_model("deepseek-v3")
    dev = get_device("h200")
    par = Parallelism(tp=8, ep=8, dp_attention=True)
    t = build_step_graph(m, par, Precision(weight="fp8"), StepShape.uniform(m, decode_seqs=192, decode_context=2048))
    costs = cost_ops(t, dev)
    i = t.names.index("mla.q_absorb")
    at_peak = t.flops[i, 0] / dev.peak_flops("fp8")
    assert costs.compute_s[i, 0] < 20 * at_peak  # one-head tiles only: ~190x
    assert costs.time_s[i, 0] < 25e-6  # per layer, launch cost included; one-head tiles only: ~51 us
