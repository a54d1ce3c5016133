"""Parameter counts against published figures, and KV-cache sizes computed by hand."""

from __future__ import annotations

from decimal import Decimal

import pytest

from infersim.models import (
    builtin_names,
    get_model,
    kv_cache_bytes,
    kv_cache_bytes_per_token,
    model_metadata,
    param_counts,
)

B = 1e9


def _rel(a: float, b: float) -> float:
    return abs(a - b) / b


# ---------------------------------------------------------------------------------------
# totals: every bundled model within 1% of the published total
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", builtin_names())
def test_total_params_within_1pct_of_published(name):
    published = model_metadata(name)["published_params_b"] * B
    total = param_counts(get_model(name)).total
    assert _rel(total, published) < 0.01, f"{name}: {total / B:.3f}B vs published {published / B}B"


def test_expected_published_totals_are_recorded():
    # the figures the catalog is held to (model cards / papers / HF Hub), in billions
    expected = {
        "llama-2-7b": 6.74, "llama-2-13b": 13.02, "llama-2-70b": 68.98,
        "llama-3.1-8b": 8.03, "llama-3.1-70b": 70.6, "llama-3.1-405b": 405,
        "mistral-7b": 7.24, "mixtral-8x7b": 46.7, "mixtral-8x22b": 141,
        "qwen2.5-7b": 7.61, "qwen2.5-72b": 72.7, "qwen3-30b-a3b": 30.5, "qwen3-235b-a22b": 235,
        "deepseek-v3": 671, "gpt-oss-20b": 20.91, "gpt-oss-120b": 116.83, "gemma-2-9b": 9.24,
    }  # fmt: skip
    assert sorted(expected) == builtin_names()
    for name, value in expected.items():
        assert model_metadata(name)["published_params_b"] == value, name


def test_exact_totals_computed_by_hand():
    # Llama-3.1-8B: 32 x (attn 4096*(4096+1024+1024) + 4096*4096  + mlp 3*4096*14336 + 2*4096)
    #               + 2 * 128256*4096 + 4096
    layer = 4096 * (4096 + 1024 + 1024) + 4096 * 4096 + 3 * 4096 * 14336 + 2 * 4096
    assert param_counts(get_model("llama-3.1-8b")).total == 32 * layer + 2 * 128256 * 4096 + 4096
    assert param_counts(get_model("llama-3.1-8b")).total == 8_030_261_248
    assert param_counts(get_model("llama-2-7b")).total == 6_738_415_616
    assert param_counts(get_model("mixtral-8x7b")).total == 46_702_792_704


# ---------------------------------------------------------------------------------------
# active parameters of the MoE models
#
# infersim's active_per_token counts everything a token touches: top-k routed experts,
# shared experts, routers, attention, norms, the LM head AND the input-embedding table.
# The publishers' conventions differ; each model is tested against the count that
# matches its publisher's convention (the `source` text in the JSON says the same):
#   "all":       the publisher counts like infersim           -> within 1%
#   "truncated": the publisher truncates the figure to its last digit (Qwen3-30B-A3B 3.353B
#                -> "3.3B", DeepSeek-V3 37.55B -> "37B")     -> published <= exact < published + 1 unit
#   "no_input_embedding": the gpt-oss card counts the unembedding but not the embedding
#                table                                        -> active - embedding within 1%
# ---------------------------------------------------------------------------------------

ACTIVE_CONVENTION = {
    "mixtral-8x7b": "all",
    "mixtral-8x22b": "all",
    "qwen3-235b-a22b": "all",
    "qwen3-30b-a3b": "truncated",
    "deepseek-v3": "truncated",
    "gpt-oss-20b": "no_input_embedding",
    "gpt-oss-120b": "no_input_embedding",
}


def test_every_moe_model_has_a_published_active_count_and_a_convention():
    moe = sorted(n for n in builtin_names() if get_model(n).is_moe)
    assert moe == sorted(ACTIVE_CONVENTION)
    for name in moe:
        assert "published_active_params_b" in model_metadata(name), name
    for name in set(builtin_names()) - set(moe):
        assert "published_active_params_b" not in model_metadata(name), name


@pytest.mark.parametrize("name", sorted(ACTIVE_CONVENTION))
def test_active_params_match_published_under_its_convention(name):
    published_b = model_metadata(name)["published_active_params_b"]
    counts = param_counts(get_model(name))
    convention = ACTIVE_CONVENTION[name]
    if convention == "all":
        assert _rel(counts.active_per_token, published_b * B) < 0.01
    elif convention == "truncated":
        unit = 10.0 ** Decimal(str(published_b)).as_tuple().exponent
        exact_b = counts.active_per_token / B
        assert published_b <= exact_b < published_b + unit, f"{exact_b:.3f}B vs {published_b}B"
    else:
        assert _rel(counts.active_per_token - counts.embedding, published_b * B) < 0.01


def test_active_counts_by_hand():
    # Mixtral-8x7B: 2 of 8 experts (3*4096*14336 each) per layer
    c = param_counts(get_model("mixtral-8x7b"))
    assert c.active_per_token == c.total - 32 * 6 * 3 * 4096 * 14336
    # DeepSeek-V3: 58 MoE layers, 8 of 256 routed experts (3*7168*2048 each)
    d = param_counts(get_model("deepseek-v3"))
    assert d.active_per_token == d.total - 58 * (256 - 8) * 3 * 7168 * 2048
    assert d.moe_shared == 58 * 3 * 7168 * 2048
    assert d.router == 58 * (256 * 7168 + 256)  # gate weight + e_score_correction_bias


def test_dense_models_are_fully_active():
    for name in builtin_names():
        c = param_counts(get_model(name))
        if not get_model(name).is_moe:
            assert c.active_per_token == c.total
            assert c.moe_routed == c.moe_shared == c.router == 0


def test_components_add_up():
    for name in builtin_names():
        c = param_counts(get_model(name))
        parts = c.embedding + c.lm_head + c.attention + c.dense_ffn + c.moe_routed + c.moe_shared
        assert c.total == parts + c.router + c.norms, name


# ---------------------------------------------------------------------------------------
# component breakdowns that publishers give
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, mlp_b, attention_b, embed_unembed_b",
    [("gpt-oss-20b", 19.12, 0.64, 1.16), ("gpt-oss-120b", 114.71, 0.96, 1.16)],
)
def test_gpt_oss_breakdown_matches_model_card(name, mlp_b, attention_b, embed_unembed_b):
    # gpt-oss model card, Table 1 (two decimals); the card's "MLP" is experts + router
    c = param_counts(get_model(name))
    assert round((c.moe_routed + c.router) / B, 2) == mlp_b
    assert round(c.attention / B, 2) == attention_b
    assert round((c.embedding + c.lm_head) / B, 2) == embed_unembed_b


def test_gpt_oss_counts_biases_and_sinks():
    cfg = get_model("gpt-oss-20b")
    c = param_counts(cfg)
    h, q, kv = 2880, 64 * 64, 8 * 64
    attn_layer = h * (q + 2 * kv) + (q + 2 * kv) + q * h + h + 64  # weights, qkv bias, o bias, sinks
    assert c.attention == 24 * attn_layer
    expert = h * 2 * 2880 + 2 * 2880 + 2880 * h + h  # gate_up (+bias), down (+bias)
    assert c.moe_routed == 24 * 32 * expert
    assert c.router == 24 * (32 * h + 32)


def test_gemma2_matches_paper_table():
    # Gemma 2 paper, Table 2: 917,504,000 embedding + 8,324,201,984 non-embedding parameters
    c = param_counts(get_model("gemma-2-9b"))
    assert c.embedding == 917_504_000
    assert c.lm_head == 0  # tied
    assert c.non_embedding == 8_324_201_984
    assert c.norms == 42 * 4 * 3584 + 3584


@pytest.mark.parametrize("name", ["qwen2.5-7b", "qwen3-30b-a3b", "qwen3-235b-a22b"])
def test_qwen_non_embedding_counts(name):
    published = model_metadata(name)["published_non_embedding_params_b"] * B
    assert _rel(param_counts(get_model(name)).non_embedding, published) < 0.01


def test_qwen2_counts_qkv_bias_but_no_o_bias():
    c = param_counts(get_model("qwen2.5-7b"))
    h, q, kv = 3584, 28 * 128, 4 * 128
    assert c.attention == 28 * (h * (q + 2 * kv) + (q + 2 * kv) + q * h)


def test_deepseek_v3_mla_attention_by_hand():
    c = param_counts(get_model("deepseek-v3"))
    per_layer = (
        7168 * 1536  # q_a_proj
        + 1536 * 128 * (128 + 64)  # q_b_proj
        + 7168 * (512 + 64)  # kv_a_proj_with_mqa
        + 512 * 128 * (128 + 128)  # kv_b_proj
        + 128 * 128 * 7168  # o_proj
    )
    assert c.attention == 61 * per_layer
    assert c.norms == 61 * (2 * 7168 + 1536 + 512) + 7168  # + q_a_layernorm, kv_a_layernorm
    assert c.dense_ffn == 3 * 3 * 7168 * 18432


# ---------------------------------------------------------------------------------------
# KV cache
# ---------------------------------------------------------------------------------------


def test_kv_bytes_per_token_gqa_by_hand():
    # Llama-3.1-8B, bf16: K and V x 8 KV heads x head_dim 128 x 32 layers x 2 bytes
    assert kv_cache_bytes_per_token(get_model("llama-3.1-8b"), 2) == 2 * 8 * 128 * 32 * 2 == 131072
    # Llama-2-7B is MHA: 32 KV heads
    assert kv_cache_bytes_per_token(get_model("llama-2-7b"), 2) == 2 * 32 * 128 * 32 * 2
    # fp8 halves it
    assert kv_cache_bytes_per_token(get_model("llama-3.1-8b"), 1) == 65536


def test_kv_bytes_per_token_mla_by_hand():
    # DeepSeek-V3, bf16: (kv_lora_rank 512 + qk_rope_head_dim 64) x 61 layers x 2 bytes
    assert kv_cache_bytes_per_token(get_model("deepseek-v3"), 2) == (512 + 64) * 61 * 2 == 70272


def test_kv_cache_bytes_caps_sliding_layers():
    gemma = get_model("gemma-2-9b")
    per_layer_token = 2 * 8 * 256 * 2  # bf16
    # short context: no layer is capped
    assert kv_cache_bytes(gemma, 1000, 2) == 42 * 1000 * per_layer_token
    assert kv_cache_bytes(gemma, 1000, 2) == 1000 * kv_cache_bytes_per_token(gemma, 2)
    # 8192 tokens: 21 global layers keep 8192, 21 sliding layers keep 4096
    assert kv_cache_bytes(gemma, 8192, 2) == (21 * 8192 + 21 * 4096) * per_layer_token
    # Mistral-7B v0.1: every layer slides over 4096
    mistral = get_model("mistral-7b")
    assert kv_cache_bytes(mistral, 32768, 2) == 4096 * kv_cache_bytes_per_token(mistral, 2)
    # gpt-oss-120b: 18 layers x 128 tokens + 18 layers x full context
    oss = get_model("gpt-oss-120b")
    assert kv_cache_bytes(oss, 10000, 1) == (18 * 128 + 18 * 10000) * 2 * 8 * 64
    # full-attention model: linear in context
    llama = get_model("llama-3.1-8b")
    assert kv_cache_bytes(llama, 4096, 2) == 4096 * 131072
    assert kv_cache_bytes(llama, 0, 2) == 0
