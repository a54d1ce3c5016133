"""parse_hf_config: per-family details and error messages."""

from __future__ import annotations

import pytest

from infersim.errors import ConfigError
from infersim.models import get_model, parse_hf_config, raw_config

LLAMA_LIKE = {
    "model_type": "llama",
    "hidden_size": 1024,
    "num_hidden_layers": 4,
    "num_attention_heads": 16,
    "num_key_value_heads": 4,
    "intermediate_size": 4096,
    "vocab_size": 1000,
}


def parse(**changes):
    data = {**LLAMA_LIKE, **changes}
    data = {k: v for k, v in data.items() if v is not ...}
    return parse_hf_config(data, "cfg.json", "test")


# ---- bundled families ---------------------------------------------------------------------


def test_llama_3_1_8b():
    m = get_model("llama-3.1-8b")
    assert (m.model_type, m.attention, m.hidden_size, m.num_layers) == ("llama", "gqa", 4096, 32)
    assert (m.num_attention_heads, m.num_kv_heads, m.head_dim, m.v_head_dim) == (32, 8, 128, 128)
    assert (m.intermediate_size, m.vocab_size, m.max_position_embeddings) == (14336, 128256, 131072)
    assert not m.is_moe and not m.tie_word_embeddings and m.gated_mlp
    assert m.layer_windows == ()


def test_attention_kinds():
    assert get_model("llama-2-7b").attention == "mha"
    assert get_model("llama-2-70b").attention == "gqa"
    assert get_model("deepseek-v3").attention == "mla"
    assert parse(num_key_value_heads=1).attention == "mqa"
    assert parse(num_key_value_heads=...).attention == "mha"  # absent: one KV head per query head


def test_deepseek_v3_mla_and_moe():
    m = get_model("deepseek-v3")
    assert (m.mla_q_lora_rank, m.mla_kv_lora_rank) == (1536, 512)
    assert (m.mla_qk_nope_head_dim, m.mla_qk_rope_head_dim) == (128, 64)
    assert (m.head_dim, m.v_head_dim) == (128 + 64, 128)
    assert (m.num_experts, m.num_experts_per_token, m.moe_intermediate_size) == (256, 8, 2048)
    assert (m.num_shared_experts, m.shared_expert_intermediate_size) == (1, 2048)
    assert (m.first_dense_layers, m.intermediate_size, m.num_layers, m.vocab_size) == (3, 18432, 61, 129280)
    assert m.router_bias
    groups = {(g.ffn, g.window): g.count for g in m.layer_groups()}
    assert groups == {("dense", None): 3, ("moe", None): 58}
    assert [m.layer_ffn(i) for i in (0, 2, 3, 60)] == ["dense", "dense", "moe", "moe"]
    assert "multi-token-prediction" in m.notes


def test_deepseek_v2_without_q_lora():
    data = {k: v for k, v in raw_config("deepseek-v3").items()}
    data.update(model_type="deepseek_v2", q_lora_rank=None, topk_method="greedy")
    m = parse_hf_config(data, "v2.json", "v2")
    assert m.attention == "mla" and m.mla_q_lora_rank is None and not m.router_bias


def test_gemma2_alternation_and_family_details():
    m = get_model("gemma-2-9b")
    assert m.layer_windows == tuple(4096 if i % 2 == 0 else None for i in range(42))
    assert m.layer_window(0) == 4096 and m.layer_window(1) is None
    assert {(g.window, g.count) for g in m.layer_groups()} == {(4096, 21), (None, 21)}
    assert (m.head_dim, m.num_attention_heads, m.num_kv_heads) == (256, 16, 8)
    assert m.tie_word_embeddings  # absent from config.json: Gemma2Config default
    assert m.norms_per_layer == 4 and m.gated_mlp


def test_gemma2_honours_layer_types_when_given():
    data = raw_config("gemma-2-9b")
    data["layer_types"] = ["full_attention"] * 42
    assert parse_hf_config(data, "g.json", "g").layer_windows == ()


def test_gpt_oss():
    m = get_model("gpt-oss-20b")
    assert m.layer_windows == tuple(128 if i % 2 == 0 else None for i in range(24))
    assert (m.num_experts, m.num_experts_per_token, m.moe_intermediate_size) == (32, 4, 2880)
    assert (m.head_dim, m.hidden_size, m.vocab_size, m.intermediate_size) == (64, 2880, 201088, 0)
    assert m.attention_sinks and m.attention_bias and m.attention_out_bias
    assert m.mlp_bias and m.router_bias
    assert get_model("gpt-oss-120b").num_experts == 128
    # without layer_types the documented pattern (even layers slide) applies
    data = raw_config("gpt-oss-120b")
    del data["layer_types"]
    assert parse_hf_config(data, "o.json", "o").layer_windows == get_model("gpt-oss-120b").layer_windows


def test_mistral_global_window_and_mixtral_none():
    assert get_model("mistral-7b").layer_windows == (4096,) * 32
    assert get_model("mixtral-8x7b").layer_windows == ()  # sliding_window: null
    assert parse(model_type="mistral", sliding_window=None).layer_windows == ()


def test_mixtral_experts_use_intermediate_size():
    m = get_model("mixtral-8x22b")
    assert (m.num_experts, m.num_experts_per_token, m.moe_intermediate_size) == (8, 2, 16384)
    assert m.intermediate_size == 0 and m.first_dense_layers == 0
    assert [(g.ffn, g.count) for g in m.layer_groups()] == [("moe", 56)]


def test_qwen_families():
    q2 = get_model("qwen2.5-7b")
    assert q2.attention_bias and not q2.attention_out_bias and not q2.qk_norm
    assert q2.layer_windows == ()  # use_sliding_window: false
    q3 = get_model("qwen3-30b-a3b")
    assert q3.qk_norm and not q3.attention_bias
    assert (q3.num_experts, q3.num_experts_per_token, q3.moe_intermediate_size) == (128, 8, 768)
    assert (q3.head_dim, q3.num_shared_experts, q3.intermediate_size) == (128, 0, 0)


def test_qwen_sliding_window_applies_from_max_window_layers():
    data = raw_config("qwen2.5-7b")
    data.update(use_sliding_window=True, sliding_window=4096, max_window_layers=20)
    m = parse_hf_config(data, "q.json", "q")
    assert m.layer_windows == (None,) * 20 + (4096,) * 8


def test_qwen2_moe_shared_expert_and_dense_prefix():
    data = raw_config("qwen3-30b-a3b")
    data.update(
        model_type="qwen2_moe",
        shared_expert_intermediate_size=5632,
        mlp_only_layers=[0, 1],
    )
    m = parse_hf_config(data, "q.json", "q")
    assert (m.num_shared_experts, m.shared_expert_intermediate_size, m.shared_expert_gate) == (1, 5632, True)
    assert m.first_dense_layers == 2 and m.intermediate_size == 6144
    assert m.attention_bias and not m.qk_norm


def test_unsupported_dense_moe_interleaving_is_refused():
    data = raw_config("qwen3-30b-a3b")
    data["decoder_sparse_step"] = 2
    with pytest.raises(ConfigError) as err:
        parse_hf_config(data, "q.json", "q")
    assert err.value.field == "decoder_sparse_step"


def test_generic_llama_like_fallback():
    m = parse(model_type="some_new_llama", head_dim=128, tie_word_embeddings=True, sliding_window=2048)
    assert m.model_type == "some_new_llama" and m.head_dim == 128 and m.tie_word_embeddings
    assert m.layer_windows == (2048,) * 4
    assert "not a known family" in m.notes
    moe = parse(model_type="new_moe", num_experts=16, num_experts_per_tok=2, moe_intermediate_size=512)
    assert (moe.num_experts, moe.num_experts_per_token, moe.moe_intermediate_size) == (16, 2, 512)
    assert moe.intermediate_size == 0


def test_head_dim_defaults_to_hidden_over_heads():
    assert parse().head_dim == 1024 // 16
    # an explicit head_dim need not divide hidden_size (Gemma, Qwen3 ...)
    assert parse(hidden_size=1000, head_dim=80).head_dim == 80
    with pytest.raises(ConfigError) as err:
        parse(hidden_size=1000)
    assert err.value.field == "head_dim"


# ---- errors -------------------------------------------------------------------------------


def test_missing_required_field_names_file_and_field():
    with pytest.raises(ConfigError) as err:
        parse(hidden_size=...)
    assert err.value.field == "hidden_size"
    assert "cfg.json" in str(err.value) and "hidden_size" in str(err.value)
    assert "expected a positive integer, got nothing" in str(err.value)


@pytest.mark.parametrize(
    "field, value, shown",
    [
        ("num_hidden_layers", "32", "'32' (str)"),
        ("vocab_size", 0, "0 (int)"),
        ("num_attention_heads", True, "True (bool)"),
        ("intermediate_size", 14336.5, "14336.5 (float)"),
    ],
)
def test_wrongly_typed_field(field, value, shown):
    with pytest.raises(ConfigError) as err:
        parse(**{field: value})
    assert err.value.field == field
    assert f"expected a positive integer, got {shown}" in str(err.value)


def test_moe_without_top_k_names_the_field():
    with pytest.raises(ConfigError) as err:
        parse(num_local_experts=8)
    assert err.value.field == "num_experts_per_tok"


def test_bad_layer_types():
    with pytest.raises(ConfigError) as err:
        parse(layer_types=["full_attention"] * 3, sliding_window=8)
    assert err.value.field == "layer_types"
    with pytest.raises(ConfigError) as err:
        parse(layer_types=["chunked_attention"] * 4, sliding_window=8)
    assert "chunked_attention" in str(err.value)


def test_kv_heads_must_divide_heads():
    with pytest.raises(ConfigError) as err:
        parse(num_key_value_heads=5)
    assert err.value.field == "num_key_value_heads"


def test_top_level_must_be_an_object():
    with pytest.raises(ConfigError):
        parse_hf_config([1, 2], "x.json", "x")  # type: ignore[arg-type]
