"""Parameter counts and KV-cache sizes of a :class:`ModelConfig`.

Every weight tensor of the real checkpoint is counted, biases, norms, attention sinks
and router biases included, so totals match what the publishers count from their
checkpoints. Multi-token-prediction modules (DeepSeek-V3) are not part of a
ModelConfig and are not counted.
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import ModelConfig


@dataclass(frozen=True)
class ParamCounts:
    """Parameter counts (element counts), by component, summed over all layers."""

    embedding: int  # input token-embedding table
    lm_head: int  # output projection; 0 when tied to the embedding
    attention: int  # q/k/v/o projections (or the MLA projections), their biases, sinks
    dense_ffn: int  # dense MLPs of the dense layers
    moe_routed: int  # all routed experts of all MoE layers
    moe_shared: int  # shared experts
    router: int  # router weights (+ router bias, + shared-expert gate)
    norms: int  # every norm weight: per-layer, final, MLA latent norms, q/k norms
    total: int
    active_per_token: int  # top-k routed experts + shared + everything non-expert (embedding included)

    @property
    def non_embedding(self) -> int:
        """Total without the embedding table and the (untied) LM head."""
        return self.total - self.embedding - self.lm_head


def _mlp_params(hidden: int, width: int, gated: bool, bias: bool) -> int:
    """One MLP / expert: gate+up (or up) and down projections, optional biases."""
    up = (2 if gated else 1) * width
    return hidden * up + width * hidden + ((up + hidden) if bias else 0)


def attention_params_per_layer(cfg: ModelConfig) -> int:
    """Parameters of one attention block: projections, their biases, sinks (norms are counted apart)."""
    h, heads = cfg.hidden_size, cfg.num_attention_heads
    if cfg.attention == "mla":
        rope, lora = cfg.mla_qk_rope_head_dim, cfg.mla_kv_lora_rank
        q_out = heads * cfg.head_dim  # head_dim = nope + rope
        if cfg.mla_q_lora_rank:
            q = h * cfg.mla_q_lora_rank + cfg.mla_q_lora_rank * q_out
        else:
            q = h * q_out
        kv_a = h * (lora + rope)
        kv_b = lora * heads * (cfg.mla_qk_nope_head_dim + cfg.v_head_dim)
        o = heads * cfg.v_head_dim * h
        n = q + kv_a + kv_b + o
        if cfg.attention_bias:  # bias on the down projections (q_a_proj, kv_a_proj_with_mqa)
            n += (cfg.mla_q_lora_rank or 0) + lora + rope
    else:
        kv = cfg.num_kv_heads
        q_out, k_out, v_out = heads * cfg.head_dim, kv * cfg.head_dim, kv * cfg.v_head_dim
        n = h * (q_out + k_out + v_out) + heads * cfg.v_head_dim * h
        if cfg.attention_bias:
            n += q_out + k_out + v_out
    if cfg.attention_out_bias:
        n += h
    if cfg.attention_sinks:
        n += heads
    return n


def norm_params_per_layer(cfg: ModelConfig) -> int:
    n = cfg.norms_per_layer * cfg.hidden_size
    if cfg.attention == "mla":
        n += (cfg.mla_q_lora_rank or 0) + cfg.mla_kv_lora_rank  # q_a_layernorm, kv_a_layernorm
    if cfg.qk_norm:
        n += 2 * cfg.head_dim
    return n


def param_counts(cfg: ModelConfig) -> ParamCounts:
    """Parameter counts of ``cfg`` by component (see :class:`ParamCounts`)."""
    h = cfg.hidden_size
    moe_layers = sum(1 for i in range(cfg.num_layers) if cfg.layer_ffn(i) == "moe")
    dense_layers = cfg.num_layers - moe_layers

    embedding = cfg.vocab_size * h
    lm_head = 0 if cfg.tie_word_embeddings else cfg.vocab_size * h
    attention = cfg.num_layers * attention_params_per_layer(cfg)
    dense_ffn = dense_layers * _mlp_params(h, cfg.intermediate_size, cfg.gated_mlp, cfg.mlp_bias)

    expert = _mlp_params(h, cfg.moe_intermediate_size, cfg.gated_mlp, cfg.mlp_bias) if cfg.is_moe else 0
    moe_routed = moe_layers * cfg.num_experts * expert
    shared_one = (
        _mlp_params(h, cfg.shared_expert_intermediate_size, cfg.gated_mlp, cfg.mlp_bias)
        if cfg.num_shared_experts
        else 0
    )
    moe_shared = moe_layers * cfg.num_shared_experts * shared_one
    router_one = cfg.num_experts * h + (cfg.num_experts if cfg.router_bias else 0)
    if cfg.shared_expert_gate:
        router_one += h
    router = moe_layers * router_one if cfg.is_moe else 0
    norms = cfg.num_layers * norm_params_per_layer(cfg) + h  # + final norm

    total = embedding + lm_head + attention + dense_ffn + moe_routed + moe_shared + router + norms
    active_routed = moe_layers * cfg.num_experts_per_token * expert
    active = total - moe_routed + active_routed
    return ParamCounts(
        embedding=embedding,
        lm_head=lm_head,
        attention=attention,
        dense_ffn=dense_ffn,
        moe_routed=moe_routed,
        moe_shared=moe_shared,
        router=router,
        norms=norms,
        total=total,
        active_per_token=active,
    )


def kv_cache_elements_per_token_per_layer(cfg: ModelConfig) -> int:
    """Cached elements per token in one layer.

    MHA/GQA/MQA: K and V for every KV head. MLA: the compressed latent plus the shared
    rope key (DeepSeek-V2 paper, section 2.1.3): ``kv_lora_rank + qk_rope_head_dim``.
    """
    if cfg.attention == "mla":
        return cfg.mla_kv_lora_rank + cfg.mla_qk_rope_head_dim
    return cfg.num_kv_heads * (cfg.head_dim + cfg.v_head_dim)


def kv_cache_bytes_per_token(cfg: ModelConfig, kv_dtype_bytes: float) -> float:
    """KV-cache bytes one token adds, summed over all layers (sliding windows ignored)."""
    return kv_cache_elements_per_token_per_layer(cfg) * cfg.num_layers * kv_dtype_bytes


def kv_cache_bytes(cfg: ModelConfig, context_len: int, kv_dtype_bytes: float) -> float:
    """KV-cache bytes of one sequence of ``context_len`` tokens.

    A sliding-window layer keeps only its last ``window`` tokens: min(context, window) per layer.
    """
    if context_len < 0:
        raise ValueError(f"context_len must be >= 0, got {context_len}")
    per_token_layer = kv_cache_elements_per_token_per_layer(cfg) * kv_dtype_bytes
    tokens = 0
    for layer in range(cfg.num_layers):
        window = cfg.layer_window(layer)
        tokens += context_len if window is None else min(context_len, window)
    return per_token_layer * tokens
