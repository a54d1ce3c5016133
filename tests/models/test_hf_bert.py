"""The bert branch of the HF config parser (encoders for embedding / rerank stages)."""

from pathlib import Path

from infersim.models import get_model, param_counts

MINILM = Path(__file__).resolve().parents[2] / "examples" / "disagg" / "models" / "all-MiniLM-L6-v2.json"


def test_minilm_is_read_as_an_ungated_encoder_with_biases():
    m = get_model(MINILM)
    assert (m.model_type, m.hidden_size, m.num_layers, m.num_attention_heads, m.head_dim) == ("bert", 384, 6, 12, 32)
    assert m.attention == "mha" and not m.gated_mlp
    assert m.attention_bias and m.attention_out_bias and m.mlp_bias and m.tie_word_embeddings
    assert "bidirectional" in m.notes


def test_minilm_parameter_count_by_hand():
    c = param_counts(get_model(MINILM))
    h, inter, layers, vocab = 384, 1536, 6, 30522
    attention = layers * (4 * h * h + 4 * h)  # q, k, v, o with biases
    mlp = layers * (2 * h * inter + inter + h)  # up and down with biases, no gate
    norms = layers * 2 * h + h  # two LayerNorm weights per layer + the final one
    assert c.attention == attention == 3_548_160
    assert c.dense_ffn == mlp == 7_089_408
    assert c.embedding == vocab * h and c.lm_head == 0
    assert c.total == attention + mlp + norms + vocab * h == 22_363_008
    # the published 22.7M also counts position / token-type embeddings, LayerNorm biases and the pooler
