"""The model description used by the rest of infersim (frozen, parsed from a HF config.json)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

AttentionKind = Literal["mha", "gqa", "mqa", "mla"]
FfnKind = Literal["dense", "moe"]


@dataclass(frozen=True)
class LayerGroup:
    """A run of identical decoder layers: same FFN kind and same attention window.

    The operator graph is built once per group and multiplied by ``count``.
    """

    count: int
    ffn: FfnKind
    window: int | None  # sliding-window size in tokens; None = full attention


@dataclass(frozen=True)
class ModelConfig:
    """A decoder-only transformer, as much of it as cost and memory depend on.

    All sizes are element counts (not bytes). For MLA models (DeepSeek-V2/V3) the
    ``mla_*`` fields are set and ``head_dim``/``v_head_dim`` are the per-head query
    /key (nope + rope) and value dims.
    """

    name: str
    model_type: str  # HF "model_type", e.g. "llama", "mixtral", "deepseek_v3"
    hidden_size: int
    num_layers: int
    vocab_size: int
    num_attention_heads: int
    num_kv_heads: int
    head_dim: int  # query/key dim per head
    v_head_dim: int  # value dim per head
    attention: AttentionKind
    intermediate_size: int  # dense MLP width (0 if no dense layers)
    gated_mlp: bool = True  # SwiGLU/GeGLU: 3 matrices; else up+down: 2
    attention_bias: bool = False  # bias on q/k/v projections (Qwen2)
    tie_word_embeddings: bool = False
    max_position_embeddings: int = 4096
    # --- MLA (multi-head latent attention), DeepSeek-V2 paper section 2.1 ---
    mla_q_lora_rank: int | None = None  # None: q is projected directly
    mla_kv_lora_rank: int = 0
    mla_qk_nope_head_dim: int = 0
    mla_qk_rope_head_dim: int = 0
    # --- MoE ---
    num_experts: int = 0  # routed experts (0 = dense model)
    num_experts_per_token: int = 0  # top-k
    moe_intermediate_size: int = 0  # width of one routed expert
    num_shared_experts: int = 0
    shared_expert_intermediate_size: int = 0  # width of one shared expert
    # layers 0..first_dense_layers-1 use the dense MLP (DeepSeek-V3: 3)
    first_dense_layers: int = 0
    # --- sliding window ---
    # per-layer window size (None = full attention); empty tuple = all layers full
    layer_windows: tuple[int | None, ...] = ()
    notes: str = ""
    # --- small tensors that only parameter counting needs (added for models/params.py) ---
    attention_out_bias: bool = False  # bias on the output projection (gpt-oss, Llama attention_bias)
    attention_sinks: bool = False  # one learned sink logit per query head per layer (gpt-oss)
    qk_norm: bool = False  # per-head RMSNorm on q and k, weight of head_dim each (Qwen3)
    norms_per_layer: int = 2  # RMSNorm/LayerNorm weights per decoder layer (Gemma-2: 4)
    mlp_bias: bool = False  # biases on the MLP / expert projections (gpt-oss experts)
    router_bias: bool = False  # one bias per routed expert (gpt-oss router, DeepSeek-V3 e_score_correction_bias)
    shared_expert_gate: bool = False  # Linear(hidden, 1) gating the shared expert (Qwen2-MoE)

    def context_problem(self, tokens: int) -> str | None:
        """Why a sequence of ``tokens`` (prompt + output) does not fit the model's context, or None.

        Positions past ``max_position_embeddings`` were never trained (RoPE / learned positions):
        a serving engine refuses such a request (vLLM: max_model_len defaults to it)."""
        if tokens > self.max_position_embeddings:
            return (f"{tokens:,} tokens (prompt + output) exceed {self.name}'s context of "
                    f"{self.max_position_embeddings:,} tokens (max_position_embeddings)")
        return None

    @property
    def is_moe(self) -> bool:
        return self.num_experts > 0

    def layer_ffn(self, layer: int) -> FfnKind:
        if not self.is_moe or layer < self.first_dense_layers:
            return "dense"
        return "moe"

    def layer_window(self, layer: int) -> int | None:
        return self.layer_windows[layer] if self.layer_windows else None

    def layer_groups(self) -> tuple[LayerGroup, ...]:
        """Identical layers grouped (order not preserved: costs add up the same)."""
        counts: dict[tuple[str, int | None], int] = {}
        for layer in range(self.num_layers):
            key = (self.layer_ffn(layer), self.layer_window(layer))
            counts[key] = counts.get(key, 0) + 1
        return tuple(LayerGroup(count=c, ffn=k[0], window=k[1]) for k, c in counts.items())
