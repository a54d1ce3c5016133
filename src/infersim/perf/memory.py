"""Memory per device: weights under TP/PP/EP, KV cache, activation peak, and what fits.

Weights are counted tensor by tensor under the sharding of
:mod:`infersim.perf.graph` (Megatron-style TP, layers split evenly over PP
stages with the embedding on the first and the LM head on the last stage, routed
experts split over EP with each expert TP-sharded ``tp/ep`` ways). Linear layers
are stored in the weight dtype; embeddings, LM head, norms and the MoE router
stay in the activation dtype, as FP8/INT4 checkpoints ship them.

Usable memory is ``capacity * memory_utilization`` (vLLM's
``gpu_memory_utilization``, default 0.90, leaves the rest to the CUDA context,
NCCL buffers and allocator fragmentation).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..dtypes import bytes_per_element
from ..hardware.device import Device
from ..models.config import ModelConfig
from .parallel import Parallelism, Precision

DEFAULT_MEMORY_UTILIZATION = 0.90


@dataclass(frozen=True)
class WeightBytes:
    """Weight bytes on the most loaded device of the replica."""

    attention: float
    ffn: float
    experts: float
    embeddings: float
    norms: float
    extra: float = 0.0  # added by transforms (adapters, draft heads / models)

    @property
    def total(self) -> float:
        return self.attention + self.ffn + self.experts + self.embeddings + self.norms + self.extra


def _layer_weight_elements(model: ModelConfig, par: Parallelism) -> tuple[dict, dict]:
    """Per-device weight elements of one dense and one MoE layer: (linear, 16-bit) by component."""
    tp = par.attention_tp
    h = model.hidden_size
    if model.attention == "mla":
        heads = model.num_attention_heads / tp
        qk = model.mla_qk_nope_head_dim + model.mla_qk_rope_head_dim
        lora = model.mla_kv_lora_rank
        if model.mla_q_lora_rank:
            q = h * model.mla_q_lora_rank + model.mla_q_lora_rank * heads * qk
            q_norm = model.mla_q_lora_rank
        else:
            q, q_norm = h * heads * qk, 0
        attn = (q + h * (lora + model.mla_qk_rope_head_dim)
                + lora * heads * (model.mla_qk_nope_head_dim + model.v_head_dim)
                + heads * model.v_head_dim * h)
        attn_norms = q_norm + lora
    else:
        q_heads = model.num_attention_heads / tp
        kv_heads = max(model.num_kv_heads / tp, 1.0)
        qkv_out = q_heads * model.head_dim + kv_heads * (model.head_dim + model.v_head_dim)
        attn = h * qkv_out + q_heads * model.v_head_dim * h
        attn_norms = qkv_out if model.attention_bias else 0.0  # q/k/v biases (Qwen2) kept 16-bit
    # small 16-bit tensors: norms, biases, attention sinks, QK-norm weights (replicated on TP ranks)
    norms = model.norms_per_layer * h + attn_norms
    norms += h if model.attention_out_bias else 0.0
    norms += model.num_attention_heads / tp if model.attention_sinks else 0.0
    norms += 2 * model.head_dim if model.qk_norm else 0.0
    mats = 3 if model.gated_mlp else 2
    up = (2 if model.gated_mlp else 1)
    dense_ffn = mats * h * model.intermediate_size / tp
    dense_bias = (up * model.intermediate_size / tp + h) if model.mlp_bias else 0.0
    experts = 0.0
    shared = 0.0
    router = 0.0
    expert_bias = 0.0
    if model.is_moe:
        local_experts = model.num_experts / par.ep
        experts = local_experts * mats * h * model.moe_intermediate_size / par.moe_tp
        if model.mlp_bias:
            expert_bias = local_experts * (up * model.moe_intermediate_size / par.moe_tp + h)
        shared = model.num_shared_experts * mats * h * model.shared_expert_intermediate_size / tp
        router = h * model.num_experts + (model.num_experts if model.router_bias else 0)
        router += h if model.shared_expert_gate else 0
    dense = {"attention": attn, "ffn": dense_ffn, "experts": 0.0, "norms": norms + dense_bias}
    moe = {"attention": attn, "ffn": shared, "experts": experts, "norms": norms + router + expert_bias}
    return dense, moe


def weight_bytes_per_device(model: ModelConfig, par: Parallelism, prec: Precision,
                            transforms: tuple = ()) -> WeightBytes:
    """Weights on the most loaded device; ``transforms`` (already applied to ``model`` and
    ``prec``) scale the linear layers' stored bytes and add their own weights."""
    wb = bytes_per_element(prec.weight)
    if transforms:
        from .transforms import extra_weight_bytes, linear_weight_factor

        wb = wb * linear_weight_factor(transforms, prec)
    ab = bytes_per_element(prec.activation)
    dense, moe = _layer_weight_elements(model, par)
    n_moe = sum(1 for layer in range(model.num_layers) if model.layer_ffn(layer) == "moe")
    n_dense = model.num_layers - n_moe
    # the most loaded stage holds ceil(L/pp) layers; assume the MoE/dense mix is proportional
    stage_share = math.ceil(model.num_layers / par.pp) / model.num_layers
    comp = {k: stage_share * (n_dense * dense[k] + n_moe * moe[k]) for k in dense}
    vocab = model.vocab_size * model.hidden_size / par.attention_tp
    lm_head = 0.0 if model.tie_word_embeddings else vocab
    # pp == 1: both on one device; else embedding on stage 0, LM head on the last stage
    # (a tied head is duplicated on the last stage when pp > 1)
    if par.pp == 1:
        embeddings = vocab + lm_head + model.hidden_size  # + final norm
    else:
        embeddings = vocab
    return WeightBytes(
        attention=comp["attention"] * wb,
        ffn=comp["ffn"] * wb,
        experts=comp["experts"] * wb,
        embeddings=embeddings * ab,
        norms=comp["norms"] * ab,
        extra=extra_weight_bytes(transforms, model, par, prec) if transforms else 0.0,
    )


def kv_bytes_per_token_per_device(model: ModelConfig, par: Parallelism, prec: Precision) -> np.ndarray:
    """KV bytes one token adds on one device, per layer of the most loaded stage (array over layers)."""
    kvb = bytes_per_element(prec.kv_cache)
    if model.attention == "mla":
        per_layer = (model.mla_kv_lora_rank + model.mla_qk_rope_head_dim) * kvb  # replicated on TP ranks
    else:
        kv_heads = max(model.num_kv_heads / par.attention_tp, 1.0)
        per_layer = kv_heads * (model.head_dim + model.v_head_dim) * kvb
    stage_layers = math.ceil(model.num_layers / par.pp)
    return np.full(stage_layers, per_layer)


def kv_bytes_per_sequence(model: ModelConfig, par: Parallelism, prec: Precision, context) -> np.ndarray:
    """KV bytes of one sequence of ``context`` tokens on one device; sliding layers cap at their window."""
    ctx = np.asarray(context, dtype=np.float64)
    per_layer = kv_bytes_per_token_per_device(model, par, prec)
    stage_layers = per_layer.size
    windows = [model.layer_window(i) for i in range(stage_layers)]
    total = np.zeros_like(ctx)
    for bytes_per_token, window in zip(per_layer, windows):
        total = total + bytes_per_token * (ctx if window is None else np.minimum(ctx, window))
    return total


def activation_peak_bytes(model: ModelConfig, par: Parallelism, prec: Precision, tokens, logit_tokens,
                          attention_impl: str = "fused", chunk=None, context=None) -> np.ndarray:
    """Largest transient activation footprint of a step with ``tokens`` tokens on one device.

    The residual stream and its normed copy (2 T h) stay live while the widest
    intermediate exists: the QKV output, the MLP's gate/up output and activation,
    the MoE's dispatched tokens, or fp32 logits for sampling. Unfused attention
    also materializes a ``chunk x context x heads`` score matrix.
    """
    ab = bytes_per_element(prec.activation)
    share = 1.0 / par.tp if par.dp_attention else 1.0  # DP attention: a device holds 1/tp of the batch
    t = np.asarray(tokens, dtype=np.float64) * share
    h = model.hidden_size
    tp = par.attention_tp
    heads = model.num_attention_heads / tp
    qkv = heads * model.head_dim + max(model.num_kv_heads / tp, 1) * (model.head_dim + model.v_head_dim)
    mats = 2 if model.gated_mlp else 1
    mlp = (mats + 1) * model.intermediate_size / tp if model.intermediate_size else 0.0
    moe = 0.0
    if model.is_moe:
        # expert rows a device computes per token it holds (all tokens arrive by all-to-all under DP)
        moe = (model.num_experts_per_token * (mats + 1) * model.moe_intermediate_size / par.moe_tp
               * (par.tp if par.dp_attention else 1) / par.ep)
    widest = t * max(qkv, mlp, moe, h) * ab
    logits = np.asarray(logit_tokens, dtype=np.float64) * share * model.vocab_size / tp * 4.0
    peak = 2.0 * t * h * ab + np.maximum(widest, logits)
    if attention_impl == "unfused" and chunk is not None and context is not None:
        peak = peak + np.asarray(chunk) * np.asarray(context) * heads * ab
    return peak


@dataclass(frozen=True)
class MemoryBreakdown:
    capacity_bytes: float
    usable_bytes: float
    weights_bytes: float
    kv_cache_bytes: float
    activation_bytes: float

    @property
    def used_bytes(self) -> float:
        return self.weights_bytes + self.kv_cache_bytes + self.activation_bytes

    @property
    def headroom_bytes(self) -> float:
        return self.usable_bytes - self.used_bytes

    @property
    def fits(self) -> bool:
        return self.headroom_bytes >= 0


def memory_breakdown(model: ModelConfig, device: Device, par: Parallelism, prec: Precision, *, batch: int,
                     context: int, prefill_tokens: int, attention_impl: str = "fused",
                     memory_utilization: float = DEFAULT_MEMORY_UTILIZATION,
                     transforms: tuple = ()) -> MemoryBreakdown:
    """Per-device memory of ``batch`` sequences of ``context`` tokens, prefilling ``prefill_tokens`` at once."""
    weights = weight_bytes_per_device(model, par, prec, transforms).total
    local_batch = batch / par.tp if par.dp_attention else batch
    kv = float(local_batch * kv_bytes_per_sequence(model, par, prec, context))
    act = float(activation_peak_bytes(model, par, prec, prefill_tokens, batch, attention_impl,
                                      chunk=prefill_tokens / max(batch, 1), context=context))
    return MemoryBreakdown(device.memory_bytes, device.memory_bytes * memory_utilization, weights, kv, act)


def max_batch_for_context(model: ModelConfig, device: Device, par: Parallelism, prec: Precision, context: int,
                          memory_utilization: float = DEFAULT_MEMORY_UTILIZATION, transforms: tuple = ()) -> int:
    """Largest number of sequences of ``context`` tokens whose KV cache fits beside the weights
    (activations of a one-sequence prefill reserved); ``transforms`` as in
    :func:`weight_bytes_per_device` (their model / dtype changes already applied)."""
    weights = weight_bytes_per_device(model, par, prec, transforms).total
    act = float(activation_peak_bytes(model, par, prec, context, 1))
    free = device.memory_bytes * memory_utilization - weights - act
    per_seq = float(kv_bytes_per_sequence(model, par, prec, context))
    if free <= 0 or per_seq <= 0:
        return 0
    return int(free // per_seq) * (par.tp if par.dp_attention else 1)
