"""The operator graph of one forward step of one model replica, per device.

Per decoder layer (grouped by identical layers, each op's ``count`` = layers in
the group): input norm, QKV projection (or the MLA projections), attention
(fused flash-style, or unfused logits / softmax / attend) with its KV-cache read
and write, output projection, the tensor-parallel all-reduce, post-attention
norm, then a gated MLP or a MoE block (router, routed experts, shared experts,
and the all-reduce or all-to-all its layout needs). Around the layers: the
embedding gather, final norm, LM head, the logits all-gather and the pipeline
send/recv between stages.

Sharding follows Megatron-LM tensor parallelism (Shoeybi et al., 2019). MLA
(DeepSeek-V2, Liu et al. 2024, section 2.1) runs prefill in the expanded form
and decode in the weight-absorbed form over the compressed latent cache, as
vLLM and SGLang do. MoE routed experts read only the experts that received
tokens: when each of ``T`` tokens picks ``k`` distinct experts of ``E`` uniformly,
an expert is missed by a token with probability ``1 - k/E``, so
``E (1 - (1 - k/E)^T)`` experts are expected to be active. The busiest device's load is the
mean times an imbalance factor: ``1 + sqrt(2 ln ep) * sigma / mu`` for the
maximum of ``ep`` binomial loads (Gumbel approximation), times a user factor. That is the
``uniform`` routing model; ``balanced`` and ``power_law_<alpha>`` (skewed routing, as
aiconfigurator-core measures and AIConfigurator assumes) are the others
(:mod:`infersim.perf.routing`, ``GraphOptions.moe_routing``).

Besides FLOPs and bytes, attention rows carry their sequences, query tokens, attention
scores (pairs x query heads) and query / KV heads, and the routed-expert GEMMs the number
of active local experts their rows are split over: the efficiency model
(:mod:`infersim.perf.roofline`) uses them for per-thread-block and per-expert costs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ..dtypes import bytes_per_element
from ..hardware.device import Device
from ..models.config import LayerGroup, ModelConfig
from .operators import Collective, OpBuilder, OpKind, OpTable
from .parallel import Parallelism, Precision
from .routing import DEFAULT_ROUTING, routing_model
from .shape import StepShape
from .transforms import apply_graph, bind_all, prepare


@dataclass(frozen=True)
class GraphOptions:
    attention_impl: str = "fused"  # "fused" (FlashAttention-style) or "unfused"
    moe_imbalance: float = 1.0  # extra factor on the busiest expert device's load
    # how the router spreads tokens over experts (:mod:`infersim.perf.routing`): uniform,
    # balanced or power_law_<alpha>
    moe_routing: str = DEFAULT_ROUTING
    include_lm_head: bool = True
    # compute dtype of context (prefill) attention over an fp8 KV cache with wider activations:
    # "fp8" (queries quantized, fp8 FMHA) or "activation" (FMHA in the activation dtype);
    # a device property (EfficiencySpec.fp8_kv_context_math), see options_for_device
    fp8_kv_context_math: str = "fp8"
    # software techniques applied to the model, dtypes and this graph (:mod:`infersim.perf.transforms`),
    # in order; bound to the device by options_for_device
    transforms: tuple = ()


def options_for_device(options: GraphOptions, device: Device) -> GraphOptions:
    """``options`` with the device's own graph-level choices (the context-attention math over
    an fp8 KV cache)."""
    math_dtype = device.efficiency.attention.fp8_kv_context_math
    if options.transforms:
        options = dataclasses.replace(options, transforms=bind_all(options.transforms, device))
    if options.fp8_kv_context_math == math_dtype:
        return options
    return dataclasses.replace(options, fp8_kv_context_math=math_dtype)


def context_attention_dtype(prec: Precision, options: GraphOptions) -> str:
    """Compute dtype of prefill attention: :attr:`Precision.attention_compute`, or the
    activation dtype where the device runs context attention over an fp8 cache in it."""
    if options.fp8_kv_context_math == "activation" and prec.kv_cache == "fp8":
        return prec.activation
    return prec.attention_compute


class _Dims:
    """Per-device sizes of one replica under a parallel layout."""

    def __init__(self, model: ModelConfig, par: Parallelism) -> None:
        tp = par.attention_tp
        self.tp = tp
        self.h = model.hidden_size
        self.q_heads = model.num_attention_heads / tp
        # KV heads are split over TP, replicated when tp > num_kv_heads
        self.kv_heads = max(model.num_kv_heads / tp, 1.0)
        self.head_dim = model.head_dim
        self.v_head_dim = model.v_head_dim


def build_step_graph(
    model: ModelConfig,
    par: Parallelism,
    prec: Precision,
    shape: StepShape,
    options: GraphOptions = GraphOptions(),
) -> OpTable:
    """All operators of one step (prefill chunks + decodes) on one device of the replica.

    ``shape`` is the whole replica's batch; under DP attention each device runs ``1/tp``
    of it (the expected share when requests are spread evenly).
    """
    if options.transforms:
        model, prec = prepare(model, prec, options.transforms)
    b = OpBuilder(shape.n_scenarios)
    ab = bytes_per_element(prec.activation)
    d = _Dims(model, par)
    if par.dp_attention:
        shape = shape.scaled(1.0 / par.tp)
    tokens = shape.tokens
    atp = par.attention_tp
    norms_per_layer = model.norms_per_layer

    if options.include_lm_head:
        b.add("embedding", OpKind.ELEMENTWISE, dtype=prec.activation,
              act_bytes=2.0 * tokens * d.h * ab)

    for group in model.layer_groups():
        _attention_block(b, model, par, prec, shape, group, d, options)
        b.add("norm", OpKind.ELEMENTWISE, count=group.count * norms_per_layer, dtype=prec.activation,
              kernels=1, flops=5.0 * tokens * d.h, act_bytes=3.0 * tokens * d.h * ab, weight_bytes=d.h * ab)
        if group.ffn == "dense":
            _dense_mlp(b, "mlp", model.intermediate_size, tokens, model, par, prec, group.count)
        else:
            _moe_block(b, model, par, prec, tokens, group.count, options)
        if atp > 1:
            b.add("allreduce.ffn", OpKind.COLLECTIVE, count=group.count, dtype=prec.activation,
                  collective=Collective.ALL_REDUCE, comm_bytes=tokens * d.h * ab, group_size=par.tp)

    if options.include_lm_head:
        logits = shape.logit_tokens
        b.add("final_norm", OpKind.ELEMENTWISE, dtype=prec.activation, flops=5.0 * tokens * d.h,
              act_bytes=2.0 * tokens * d.h * ab, weight_bytes=d.h * ab)
        vocab_local = model.vocab_size / atp
        # LM heads stay in 16-bit in FP8/INT4 deployments (vLLM, TensorRT-LLM default)
        b.gemm("lm_head", logits, vocab_local, d.h, weight_dtype_bytes=ab, act_dtype_bytes=ab,
               dtype=prec.activation)
        if atp > 1:
            b.add("allgather.logits", OpKind.COLLECTIVE, dtype=prec.activation,
                  collective=Collective.ALL_GATHER, comm_bytes=logits * model.vocab_size * ab, group_size=atp)
    if par.pp > 1:
        b.add("sendrecv.pipeline", OpKind.COLLECTIVE, count=par.pp - 1, dtype=prec.activation,
              collective=Collective.SEND_RECV, comm_bytes=tokens * d.h * ab, group_size=2)
    table = b.build()
    if options.transforms:
        table = apply_graph(table, options.transforms, model, par, prec)
    return table


def _attention_block(b: OpBuilder, model: ModelConfig, par: Parallelism, prec: Precision,
                     shape: StepShape, group: LayerGroup, d: _Dims, options: GraphOptions) -> None:
    ab = bytes_per_element(prec.activation)
    wb = bytes_per_element(prec.weight)
    kvb = bytes_per_element(prec.kv_cache)
    gdt = prec.gemm_compute
    adt = prec.attention_compute
    n = group.count
    tokens = shape.tokens
    load = shape.attention[group.window]
    h = d.h
    suffix = "" if group.window is None else f"[w={group.window}]"

    if model.attention == "mla":
        _mla_attention(b, model, par, prec, shape, load, n, suffix, options)
    else:
        qkv_n = d.q_heads * d.head_dim + d.kv_heads * (d.head_dim + d.v_head_dim)
        b.gemm("qkv_proj", tokens, qkv_n, h, weight_dtype_bytes=wb, act_dtype_bytes=ab, dtype=gdt, count=n)
        b.add("rope", OpKind.ELEMENTWISE, count=n, dtype=prec.activation,
              flops=3.0 * tokens * (d.q_heads + d.kv_heads) * d.head_dim,
              act_bytes=2.0 * tokens * (d.q_heads + d.kv_heads) * d.head_dim * ab)
        kv_per_token = d.kv_heads * (d.head_dim + d.v_head_dim) * kvb
        qo_bytes = tokens * d.q_heads * (d.head_dim + d.v_head_dim) * ab
        kv_write = tokens * kv_per_token
        if options.attention_impl == "unfused":
            _unfused_attention(b, n, adt, ab, d.q_heads, d.head_dim, d.v_head_dim,
                               load.prefill_rect_pairs + load.decode_pairs,
                               (load.prefill_kv_read_tokens + load.decode_pairs) * kv_per_token,
                               qo_bytes, kv_write, suffix)
        else:
            b.add("attention.prefill" + suffix, OpKind.ATTENTION, count=n, dtype=context_attention_dtype(prec, options),
                  flops=2.0 * load.prefill_pairs * d.q_heads * (d.head_dim + d.v_head_dim),
                  act_bytes=shape.prefill_tokens * d.q_heads * (d.head_dim + d.v_head_dim) * ab,
                  kv_bytes=load.prefill_kv_read_tokens * kv_per_token + shape.prefill_tokens * kv_per_token,
                  seqs=shape.prefill_seqs, query_tokens=shape.prefill_tokens,
                  scores=load.prefill_pairs * d.q_heads, heads=d.q_heads, kv_heads=d.kv_heads)
            b.add("attention.decode" + suffix, OpKind.ATTENTION, count=n, dtype=adt,
                  flops=2.0 * load.decode_pairs * d.q_heads * (d.head_dim + d.v_head_dim),
                  act_bytes=shape.decode_seqs * d.q_heads * (d.head_dim + d.v_head_dim) * ab,
                  kv_bytes=load.decode_pairs * kv_per_token + shape.decode_seqs * kv_per_token,
                  seqs=shape.decode_seqs, query_tokens=shape.decode_seqs,
                  scores=load.decode_pairs * d.q_heads, heads=d.q_heads, kv_heads=d.kv_heads)
        b.gemm("o_proj", tokens, h, d.q_heads * d.v_head_dim, weight_dtype_bytes=wb, act_dtype_bytes=ab,
               dtype=gdt, count=n)
    if par.attention_tp > 1:
        b.add("allreduce.attn", OpKind.COLLECTIVE, count=n, dtype=prec.activation,
              collective=Collective.ALL_REDUCE, comm_bytes=tokens * h * ab, group_size=par.tp)


def _unfused_attention(b: OpBuilder, n, dtype, ab, q_heads, qk_dim, v_dim, rect_pairs, kv_read_bytes,
                       qo_bytes, kv_write, suffix) -> None:
    """Logits GEMM, softmax, attend GEMM: the score matrix round-trips through memory."""
    score_bytes = rect_pairs * q_heads * ab
    b.add("attention.logits" + suffix, OpKind.ATTENTION, count=n, dtype=dtype,
          flops=2.0 * rect_pairs * q_heads * qk_dim, act_bytes=qo_bytes / 2 + score_bytes,
          kv_bytes=kv_read_bytes / 2 + kv_write)
    b.add("attention.softmax" + suffix, OpKind.ELEMENTWISE, count=n, dtype=dtype,
          flops=5.0 * rect_pairs * q_heads, act_bytes=2.0 * score_bytes)
    b.add("attention.attend" + suffix, OpKind.ATTENTION, count=n, dtype=dtype,
          flops=2.0 * rect_pairs * q_heads * v_dim, act_bytes=score_bytes + qo_bytes / 2,
          kv_bytes=kv_read_bytes / 2)


def _mla_attention(b: OpBuilder, model: ModelConfig, par: Parallelism, prec: Precision, shape: StepShape,
                   load, n, suffix, options: GraphOptions) -> None:
    """MLA projections and attention (DeepSeek-V2 paper, section 2.1; absorbed decode)."""
    ab = bytes_per_element(prec.activation)
    wb = bytes_per_element(prec.weight)
    kvb = bytes_per_element(prec.kv_cache)
    gdt = prec.gemm_compute
    h = model.hidden_size
    tokens = shape.tokens
    heads = model.num_attention_heads / par.attention_tp
    nope, rope = model.mla_qk_nope_head_dim, model.mla_qk_rope_head_dim
    qk = nope + rope
    v = model.v_head_dim
    lora = model.mla_kv_lora_rank
    if model.mla_q_lora_rank:
        # q_a and kv_a are replicated (not TP-sharded) in vLLM / SGLang
        b.gemm("mla.q_a_proj", tokens, model.mla_q_lora_rank, h, weight_dtype_bytes=wb, act_dtype_bytes=ab,
               dtype=gdt, count=n)
        b.gemm("mla.q_b_proj", tokens, heads * qk, model.mla_q_lora_rank, weight_dtype_bytes=wb,
               act_dtype_bytes=ab, dtype=gdt, count=n)
    else:
        b.gemm("mla.q_proj", tokens, heads * qk, h, weight_dtype_bytes=wb, act_dtype_bytes=ab, dtype=gdt, count=n)
    b.gemm("mla.kv_a_proj", tokens, lora + rope, h, weight_dtype_bytes=wb, act_dtype_bytes=ab, dtype=gdt, count=n)
    latent_bytes = (lora + rope) * kvb  # cached per token, replicated on every TP rank
    # prefill: expand the latent of the new tokens to per-head K (nope) and V, then MHA
    b.gemm("mla.kv_b_proj", shape.prefill_tokens, heads * (nope + v), lora, weight_dtype_bytes=wb,
           act_dtype_bytes=ab, dtype=gdt, count=n)
    b.add("attention.prefill" + suffix, OpKind.ATTENTION, count=n, dtype=context_attention_dtype(prec, options),
          flops=2.0 * load.prefill_pairs * heads * (qk + v),
          act_bytes=(shape.prefill_tokens * heads * (2 * qk + 2 * v)) * ab,
          kv_bytes=load.prefill_kv_read_tokens * heads * (qk + v) * ab + shape.prefill_tokens * latent_bytes,
          seqs=shape.prefill_seqs, query_tokens=shape.prefill_tokens, scores=load.prefill_pairs * heads,
          heads=heads, kv_heads=heads, mla=True)
    # decode: absorb W_UK into the query and W_UV after attention; attend over the latent
    dec = shape.decode_seqs
    # W_UK / W_UV are applied per head as one batched GEMM over the heads (vLLM / SGLang: torch.bmm
    # of [heads, seqs, .] by [heads, ., .]): ``seqs x heads`` rows, each head's rows their own tiles
    # (a bmm launches heads x tiles thread blocks), every head's weight read once
    b.gemm("mla.q_absorb", dec * heads, lora, nope, weight_dtype_bytes=wb, act_dtype_bytes=ab, dtype=gdt, count=n,
           weights_read=np.where(dec > 0, heads * lora * nope, 0.0), experts=np.where(dec > 0, heads, 0.0))
    b.add("attention.decode" + suffix, OpKind.ATTENTION, count=n, dtype=prec.attention_compute,
          flops=2.0 * load.decode_pairs * heads * ((lora + rope) + lora),
          act_bytes=dec * heads * (2 * lora + rope) * ab,
          kv_bytes=load.decode_pairs * latent_bytes + dec * latent_bytes,
          seqs=dec, query_tokens=dec, scores=load.decode_pairs * heads, heads=heads, kv_heads=1.0, mla=True)
    b.gemm("mla.v_absorb", dec * heads, v, lora, weight_dtype_bytes=wb, act_dtype_bytes=ab, dtype=gdt, count=n,
           weights_read=np.where(dec > 0, heads * v * lora, 0.0), experts=np.where(dec > 0, heads, 0.0))
    b.gemm("o_proj", tokens, h, heads * v, weight_dtype_bytes=wb, act_dtype_bytes=ab, dtype=gdt, count=n)


def _dense_mlp(b: OpBuilder, name: str, width: int, tokens, model: ModelConfig, par: Parallelism,
               prec: Precision, count: float, shard: int | None = None) -> None:
    """Gated (SwiGLU/GeGLU: gate+up fused, then down) or plain (up, down) MLP."""
    ab = bytes_per_element(prec.activation)
    wb = bytes_per_element(prec.weight)
    gdt = prec.gemm_compute
    h = model.hidden_size
    local = width / (par.attention_tp if shard is None else shard)
    up_n = (2 if model.gated_mlp else 1) * local
    b.gemm(f"{name}.gate_up", tokens, up_n, h, weight_dtype_bytes=wb, act_dtype_bytes=ab, dtype=gdt, count=count)
    b.add(f"{name}.act", OpKind.ELEMENTWISE, count=count, dtype=prec.activation,
          flops=4.0 * tokens * local, act_bytes=(up_n + local) * tokens * ab)
    b.gemm(f"{name}.down", tokens, h, local, weight_dtype_bytes=wb, act_dtype_bytes=ab, dtype=gdt, count=count)


def _moe_block(b: OpBuilder, model: ModelConfig, par: Parallelism, prec: Precision, tokens, count: float,
               options: GraphOptions) -> None:
    ab = bytes_per_element(prec.activation)
    wb = bytes_per_element(prec.weight)
    gdt = prec.gemm_compute
    h = model.hidden_size
    experts = model.num_experts
    topk = model.num_experts_per_token
    ep, moe_tp = par.ep, par.moe_tp
    # router: replicated, kept in 16-bit
    b.gemm("moe.router", tokens, experts, h, weight_dtype_bytes=ab, act_dtype_bytes=ab,
           dtype=prec.activation, count=count)
    # under DP attention ``tokens`` is this device's share; routing sees the whole replica's
    global_tokens = tokens * par.tp if par.dp_attention else tokens
    assignments = global_tokens * topk
    loads = routing_model(options.moe_routing).loads(global_tokens, topk, experts, ep)
    imbalance = loads.rank_factor * options.moe_imbalance
    local_assignments = np.minimum(assignments / ep * imbalance, assignments)
    local_experts = experts / ep
    active_local = loads.active_local
    if par.dp_attention:
        # each device sends its tokens' hidden states to their top-k experts, and back
        b.add("alltoall.dispatch", OpKind.COLLECTIVE, count=count, dtype=prec.activation,
              collective=Collective.ALL_TO_ALL, comm_bytes=tokens * topk * h * ab, group_size=ep)
    active_local = np.minimum(active_local, local_experts)
    inter = model.moe_intermediate_size / moe_tp
    up_n = (2 if model.gated_mlp else 1) * inter
    b.gemm("moe.experts.gate_up", local_assignments, up_n, h, weight_dtype_bytes=wb, act_dtype_bytes=ab,
           dtype=gdt, count=count, weights_read=active_local * up_n * h, experts=active_local)
    b.add("moe.experts.act", OpKind.ELEMENTWISE, count=count, dtype=prec.activation,
          flops=4.0 * local_assignments * inter, act_bytes=(up_n + inter) * local_assignments * ab)
    b.gemm("moe.experts.down", local_assignments, h, inter, weight_dtype_bytes=wb, act_dtype_bytes=ab,
           dtype=gdt, count=count, weights_read=active_local * h * inter, experts=active_local)
    if par.dp_attention:
        b.add("alltoall.combine", OpKind.COLLECTIVE, count=count, dtype=prec.activation,
              collective=Collective.ALL_TO_ALL, comm_bytes=tokens * topk * h * ab, group_size=ep)
    b.add("moe.combine", OpKind.ELEMENTWISE, count=count, dtype=prec.activation,
          flops=2.0 * assignments / ep * h, act_bytes=(assignments / ep + tokens) * h * ab)
    if model.num_shared_experts:
        width = model.num_shared_experts * model.shared_expert_intermediate_size
        _dense_mlp(b, "moe.shared", width, tokens, model, par, prec, count)
