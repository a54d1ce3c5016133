"""Parse a Hugging Face ``config.json`` (already loaded as a dict) into a :class:`ModelConfig`.

Known ``model_type`` values: llama, mistral, mixtral, qwen2, qwen2_moe, qwen3, qwen3_moe,
deepseek_v2, deepseek_v3, gpt_oss, gemma2, bert. Any other ``model_type`` is read as a
llama-like decoder from the standard keys (``hidden_size``, ``num_hidden_layers``,
``num_attention_heads``, ``vocab_size``, ``intermediate_size`` ...) and says so in
``notes``. Unknown keys are ignored (HF configs carry many that cost nothing).

Per-family facts that the config.json leaves implicit (they live in the modeling code):

* qwen2 / qwen2_moe: q, k, v projections always have a bias, o_proj has none.
* qwen3 / qwen3_moe: per-head RMSNorm on q and k.
* llama, qwen3, gpt_oss, deepseek: ``attention_bias`` puts a bias on q, k, v *and* o.
* gemma2: four norms per layer, ``tie_word_embeddings`` defaults to true, layers
  alternate sliding (even) / global (odd) when ``layer_types`` is absent.
* gpt_oss: attention sinks, biases on the experts and the router, layers alternate
  sliding (even) / full (odd) when ``layer_types`` is absent.
* deepseek_v3: the router has a per-expert ``e_score_correction_bias``.
* bert (encoders such as all-MiniLM-L6-v2, bge-large-en-v1.5; Devlin et al., NAACL 2019): plain
  (ungated) GELU MLP, biases on q, k, v, o and on both MLP projections, two LayerNorms per layer.
  The model is read as the same stack of layers; attention is bidirectional, which the caller
  accounts for (an encoder runs prefill-only forwards). Position / token-type embeddings, LayerNorm
  biases and the pooler are not counted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import ConfigError
from .config import ModelConfig

KNOWN_MODEL_TYPES = (
    "llama",
    "mistral",
    "mixtral",
    "qwen2",
    "qwen2_moe",
    "qwen3",
    "qwen3_moe",
    "deepseek_v2",
    "deepseek_v3",
    "gpt_oss",
    "gemma2",
    "bert",
)

_QWEN = ("qwen2", "qwen2_moe", "qwen3", "qwen3_moe")
_DEEPSEEK = ("deepseek_v2", "deepseek_v3")
# families whose expert width is `intermediate_size` (they have no dense layers)
_EXPERT_WIDTH_IS_INTERMEDIATE = ("mixtral", "gpt_oss")

_MISSING = object()

#: upper bounds on a config's sizes, each far beyond any published model, so that a typo cannot make
#: the per-layer tables or the cost arrays hang or overflow (the largest published values are in
#: parentheses: Llama-3.1-405B config.json 126 layers and hidden 16384; Gemma-3 vocab 262,144;
#: Llama-4-Scout context 10M tokens; DeepSeek-V3 256 routed experts)
MAXIMA: dict[str, int] = {
    "num_hidden_layers": 4096,  # 32x (126)
    "hidden_size": 2**20,  # 64x (16384)
    "intermediate_size": 2**22,
    "moe_intermediate_size": 2**22,
    "shared_expert_intermediate_size": 2**22,
    "vocab_size": 2**24,  # 64x (262,144)
    "num_attention_heads": 2**14,
    "num_key_value_heads": 2**14,
    "head_dim": 2**14,
    "max_position_embeddings": 2**30,  # ~100x (10M)
    "sliding_window": 2**30,
    "num_local_experts": 2**16,  # 256x (256)
    "num_experts": 2**16,
    "n_routed_experts": 2**16,
    "n_shared_experts": 2**10,
    "kv_lora_rank": 2**16,
    "q_lora_rank": 2**16,
    "qk_nope_head_dim": 2**14,
    "qk_rope_head_dim": 2**14,
    "v_head_dim": 2**14,
}
#: families whose configs describe a mixture of experts
_MOE_TYPES = ("mixtral", "qwen2_moe", "qwen3_moe", "deepseek_v2", "deepseek_v3", "gpt_oss")


def _describe(value: Any) -> str:
    if value is _MISSING:
        return "nothing (the field is missing)"
    if value is None:
        return "null"
    text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{text} ({type(value).__name__})"


class _Reader:
    """Typed access to the fields of one config dict, raising ConfigError that names the field."""

    def __init__(self, data: Mapping[str, Any], origin: object) -> None:
        self.data = data
        self.origin = origin

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def error(self, key: str, problem: str) -> ConfigError:
        return ConfigError(self.origin, key, problem)

    def int_(self, key: str, default: Any = _MISSING, *, minimum: int = 1) -> int:
        """An integer >= minimum; ``default`` when the key is absent or null (required if no default)."""
        value = self.data.get(key, _MISSING)
        if value is None:
            value = _MISSING
        if value is _MISSING and default is not _MISSING:
            return default
        # JSON writes some integers as floats (e.g. 4096.0); accept those, reject true/false
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            kind = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
            raise self.error(key, f"expected {kind}, got {_describe(value)}")
        top = MAXIMA.get(key)
        if top is not None and value > top:
            raise self.error(key, f"expected at most {top:,} (far beyond any published model), got {value:,}")
        return value

    def bool_(self, key: str, default: bool) -> bool:
        value = self.data.get(key, _MISSING)
        if value is _MISSING or value is None:
            return default
        if not isinstance(value, bool):
            raise self.error(key, f"expected true or false, got {_describe(value)}")
        return value

    def int_list(self, key: str) -> list[int]:
        value = self.data.get(key, _MISSING)
        if value is _MISSING or value is None:
            return []
        if not isinstance(value, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value
        ):
            raise self.error(key, f"expected a list of layer indices, got {_describe(value)}")
        return value

    def first_int(self, keys: tuple[str, ...], default: int, *, minimum: int = 1) -> tuple[str, int]:
        """The first of ``keys`` that is set, and its value."""
        for key in keys:
            if self.has(key):
                return key, self.int_(key, minimum=minimum)
        return keys[0], default


def parse_hf_config(data: Mapping[str, Any], origin: object, name: str) -> ModelConfig:
    """A :class:`ModelConfig` from the dict of a HF ``config.json``; ``origin`` names the file in errors."""
    if not isinstance(data, Mapping):
        raise ConfigError(origin, None, f"expected a JSON object at the top level, got {type(data).__name__}")
    r = _Reader(data, origin)
    raw_type = data.get("model_type")
    if raw_type is not None and not isinstance(raw_type, str):
        raise r.error("model_type", f"expected a string, got {_describe(raw_type)}")
    model_type = (raw_type or "").lower()
    notes: list[str] = []
    if model_type not in KNOWN_MODEL_TYPES:
        shown = f"model_type '{raw_type}'" if raw_type else "no model_type"
        notes.append(f"{shown}: not a known family, read as a llama-like decoder from the standard keys")

    hidden = r.int_("hidden_size")
    layers = r.int_("num_hidden_layers")
    vocab = r.int_("vocab_size")
    heads = r.int_("num_attention_heads")
    kv_heads = r.int_("num_key_value_heads", heads)
    max_pos = r.int_("max_position_embeddings", 4096)

    # ---- attention ------------------------------------------------------------------
    mla = model_type in _DEEPSEEK or r.has("kv_lora_rank")
    mla_fields: dict[str, Any] = {}
    if mla:
        kv_lora = r.int_("kv_lora_rank")
        nope = r.int_("qk_nope_head_dim")
        rope = r.int_("qk_rope_head_dim")
        v_head = r.int_("v_head_dim")
        q_lora = r.int_("q_lora_rank", None)
        head_dim = nope + rope
        attention = "mla"
        mla_fields = dict(
            mla_q_lora_rank=q_lora,
            mla_kv_lora_rank=kv_lora,
            mla_qk_nope_head_dim=nope,
            mla_qk_rope_head_dim=rope,
        )
    else:
        default_head_dim = {"gemma2": 256, "gpt_oss": 64}.get(model_type)
        if default_head_dim is None and not r.has("head_dim"):
            if hidden % heads:
                raise r.error(
                    "head_dim",
                    f"not given, and hidden_size {hidden} is not a multiple of num_attention_heads {heads}",
                )
            default_head_dim = hidden // heads
        head_dim = r.int_("head_dim", default_head_dim)
        v_head = head_dim
        if heads % kv_heads:
            raise r.error(
                "num_key_value_heads",
                f"expected a divisor of num_attention_heads ({heads}), got {kv_heads}",
            )
        if kv_heads == heads:
            attention = "mha"
        elif kv_heads == 1:
            attention = "mqa"
        else:
            attention = "gqa"

    if model_type in ("qwen2", "qwen2_moe"):
        qkv_bias, out_bias = True, False  # hard-wired in Qwen2Attention
    elif model_type in ("mistral", "mixtral"):
        qkv_bias = out_bias = False  # hard-wired bias=False in MistralAttention / MixtralAttention
    elif model_type == "bert":
        qkv_bias = out_bias = True  # BertSelfAttention / BertSelfOutput: nn.Linear with bias
    else:
        qkv_bias = out_bias = r.bool_("attention_bias", model_type == "gpt_oss")

    # ---- MoE ------------------------------------------------------------------------
    expert_key, num_experts = r.first_int(
        ("num_local_experts", "num_experts", "n_routed_experts"), 0, minimum=0
    )
    topk = moe_width = shared = shared_width = first_dense = 0
    if not num_experts and r.has(expert_key) and (model_type in _MOE_TYPES or r.has("num_experts_per_tok")):
        raise r.error(expert_key, "a mixture-of-experts config needs at least 1 expert, got 0 "
                                  "(for a dense model, drop the MoE keys and use a dense model_type)")
    if num_experts:
        # gpt-oss writes both spellings; a missing top-k is reported as num_experts_per_tok
        only_alt = r.has("experts_per_token") and not r.has("num_experts_per_tok")
        topk_key = "experts_per_token" if only_alt else "num_experts_per_tok"
        topk = r.int_(topk_key)
        if topk > num_experts:
            raise r.error("num_experts_per_tok", f"expected at most {expert_key} ({num_experts}), got {topk}")
        if model_type in _EXPERT_WIDTH_IS_INTERMEDIATE:
            moe_width = r.int_("intermediate_size")
        elif model_type in ("qwen2_moe", "qwen3_moe") or model_type in _DEEPSEEK:
            moe_width = r.int_("moe_intermediate_size")
        else:
            moe_width = r.int_("moe_intermediate_size", 0) or r.int_("intermediate_size")
        if model_type in _DEEPSEEK:
            shared = r.int_("n_shared_experts", 0, minimum=0)
            shared_width = moe_width if shared else 0
        else:
            shared_width = r.int_("shared_expert_intermediate_size", 0, minimum=0)
            shared = r.int_("n_shared_experts", 1 if shared_width else 0, minimum=0)
            if shared and not shared_width:
                shared_width = moe_width
        first_dense = _first_dense_layers(r, model_type, layers)

    dense_layers_exist = not num_experts or first_dense > 0
    intermediate = r.int_("intermediate_size") if dense_layers_exist else 0

    # ---- sliding windows --------------------------------------------------------------
    windows = _layer_windows(r, model_type, layers)

    # ---- everything else --------------------------------------------------------------
    tie = r.bool_("tie_word_embeddings", model_type in ("gemma2", "bert"))
    mlp_bias = True if model_type in ("gpt_oss", "bert") else r.bool_("mlp_bias", False)
    if model_type == "bert":
        notes.append("encoder: bidirectional attention; position / token-type embeddings, LayerNorm biases "
                     "and the pooler are not modeled")
    if model_type == "deepseek_v3":
        router_bias = True
    elif model_type == "deepseek_v2":
        router_bias = data.get("topk_method") == "noaux_tc"
    else:
        router_bias = model_type == "gpt_oss"

    if model_type == "deepseek_v3" or r.has("num_nextn_predict_layers"):
        mtp = r.int_("num_nextn_predict_layers", 0, minimum=0)
        if mtp:
            notes.append(
                f"{mtp} multi-token-prediction module(s) (num_nextn_predict_layers) ship in the checkpoint "
                "and are not modeled (not in the parameter counts)"
            )
    quant = data.get("quantization_config")
    if isinstance(quant, Mapping) and quant.get("quant_method"):
        notes.append(f"published checkpoint is quantized ({quant['quant_method']})")

    return ModelConfig(
        name=name,
        model_type=model_type or "unknown",
        hidden_size=hidden,
        num_layers=layers,
        vocab_size=vocab,
        num_attention_heads=heads,
        num_kv_heads=kv_heads,
        head_dim=head_dim,
        v_head_dim=v_head,
        attention=attention,  # type: ignore[arg-type]
        intermediate_size=intermediate,
        gated_mlp=model_type != "bert",
        attention_bias=qkv_bias,
        tie_word_embeddings=tie,
        max_position_embeddings=max_pos,
        num_experts=num_experts,
        num_experts_per_token=topk,
        moe_intermediate_size=moe_width,
        num_shared_experts=shared,
        shared_expert_intermediate_size=shared_width,
        first_dense_layers=first_dense,
        layer_windows=windows,
        notes="; ".join(notes),
        attention_out_bias=out_bias,
        attention_sinks=model_type == "gpt_oss",
        qk_norm=model_type in ("qwen3", "qwen3_moe"),
        norms_per_layer=4 if model_type == "gemma2" else 2,
        mlp_bias=mlp_bias,
        router_bias=router_bias,
        shared_expert_gate=model_type == "qwen2_moe" and shared > 0,
        **mla_fields,
    )


def _first_dense_layers(r: _Reader, model_type: str, layers: int) -> int:
    """How many leading layers use the dense MLP; other dense/MoE layouts are refused."""
    if model_type in _DEEPSEEK or r.has("first_k_dense_replace"):
        first = r.int_("first_k_dense_replace", 0, minimum=0)
        freq = r.int_("moe_layer_freq", 1)
        if freq != 1:
            raise r.error(
                "moe_layer_freq",
                f"only 1 is supported (MoE in every layer after the first dense ones), got {freq}",
            )
        return min(first, layers)
    step = r.int_("decoder_sparse_step", 1)
    mlp_only = set(r.int_list("mlp_only_layers"))
    moe = [(i not in mlp_only) and (i + 1) % step == 0 for i in range(layers)]
    first = moe.index(True) if True in moe else layers
    if not all(moe[first:]):
        field = "decoder_sparse_step" if step != 1 else "mlp_only_layers"
        raise r.error(
            field,
            "this layout of dense and MoE layers is not supported: infersim models dense layers "
            "only as a leading block followed by MoE layers",
        )
    return first


def _layer_windows(r: _Reader, model_type: str, layers: int) -> tuple[int | None, ...]:
    """Per-layer sliding-window sizes (None = full attention); () when every layer is full."""
    data = r.data
    windows: list[int | None]
    layer_types = data.get("layer_types")
    if layer_types is not None:
        if not isinstance(layer_types, list) or len(layer_types) != layers:
            raise r.error(
                "layer_types",
                f"expected a list of {layers} entries (one per layer), got {_describe(layer_types)}",
            )
        windows = []
        for kind in layer_types:
            if kind == "full_attention":
                windows.append(None)
            elif kind == "sliding_attention":
                windows.append(r.int_("sliding_window"))
            else:
                raise r.error(
                    "layer_types",
                    f"expected 'sliding_attention' or 'full_attention' entries, got {kind!r}",
                )
    elif model_type in ("gemma2", "gpt_oss"):
        # Gemma2: even layers slide (HF Gemma2DecoderLayer: is_sliding = not layer_idx % 2);
        # gpt-oss publishes layer_types, but the documented pattern is the same.
        size = r.int_("sliding_window", 4096 if model_type == "gemma2" else 128)
        windows = [size if i % 2 == 0 else None for i in range(layers)]
    elif model_type in _QWEN:
        # Qwen2/3: only with use_sliding_window, and only layers >= max_window_layers
        if not r.bool_("use_sliding_window", False) or not r.has("sliding_window"):
            return ()
        size = r.int_("sliding_window")
        first = r.int_("max_window_layers", layers, minimum=0)
        windows = [size if i >= first else None for i in range(layers)]
    elif model_type in _DEEPSEEK:
        return ()
    else:
        # mistral / mixtral / generic: one global window for every layer (null = none);
        # a config that carries use_sliding_window=false means the window is off
        if not r.has("sliding_window") or not r.bool_("use_sliding_window", True):
            return ()
        size = r.int_("sliding_window")
        windows = [size] * layers
    if all(w is None for w in windows):
        return ()
    return tuple(windows)
