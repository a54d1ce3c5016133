"""A Llama-architecture causal LM in numpy: SmolLM2-135M-Instruct's real weights, read from its GGUF.

The file is read with the ``gguf`` package (``GGUFReader``) and every tensor dequantized to float32
with ``gguf.quants.dequantize``. The packaged file is quantized (Q4_1 linear layers, a Q8_0 token
embedding), so the "dense" model here is the 4-bit checkpoint dequantized: compression acts on
weights that already lost 4-bit rounding.

The forward pass is Llama's (Touvron et al., 2023): RMSNorm (Zhang & Sennrich 2019) before
attention and before the MLP, rotary position embeddings (Su et al., RoFormer 2021) on adjacent
pairs of each head's dimensions (the GGUF converter permutes Q and K rows for that layout,
llama.cpp's ``LLAMA_ROPE_TYPE_NORM``), grouped-query attention (Ainslie et al. 2023; ``head_count``
query heads share ``head_count_kv`` key/value heads), a SwiGLU MLP (Shazeer 2020), a final
RMSNorm and an LM head tied to the token embedding (the file carries no ``output.weight``).
Every hyperparameter comes from the GGUF metadata (``llama.*``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np

from ..errors import InfersimError
from .layered import LayeredWeights

#: the linear layers of one decoder layer, in forward order, each with the activation feeding it
LINEARS: tuple[tuple[str, str], ...] = (
    ("attn_q", "attn_in"),
    ("attn_k", "attn_in"),
    ("attn_v", "attn_in"),
    ("attn_output", "context"),
    ("ffn_gate", "mlp_in"),
    ("ffn_up", "mlp_in"),
    ("ffn_down", "mlp_hidden"),
)


def _field(reader, key: str):
    f = reader.fields.get(key)
    if f is None:
        raise InfersimError(f"GGUF file has no metadata field '{key}'")
    return f.contents()


@dataclass
class CausalLM(LayeredWeights):
    """Weights (GGUF tensor name -> float32 array, a linear's weight ``(out, in)``) and shape."""

    weights: dict[str, np.ndarray]
    num_layers: int
    num_heads: int
    num_kv_heads: int
    rope_base: float
    rms_eps: float
    meta: dict = field(default_factory=dict)
    prefix: ClassVar[str] = "blk."
    linears: ClassVar[tuple[tuple[str, str], ...]] = LINEARS

    def copy(self) -> CausalLM:
        return CausalLM({k: v.copy() for k, v in self.weights.items()}, self.num_layers, self.num_heads,
                        self.num_kv_heads, self.rope_base, self.rms_eps, dict(self.meta))

    @property
    def hidden(self) -> int:
        return self.weights["token_embd.weight"].shape[1]

    def embed(self, ids: np.ndarray) -> np.ndarray:
        return self.weights["token_embd.weight"][ids]

    def layer(self, i: int, x: np.ndarray, mask: np.ndarray | None = None,
              capture: dict[str, np.ndarray] | None = None) -> np.ndarray:
        """Decoder layer ``i`` on ``x`` (batch, seq, hidden); ``capture`` receives each linear's input.
        ``mask`` is unused (every window is full: no padding)."""
        return decoder_layer(self, i, x, capture)


def load_causal_lm(path: Path) -> tuple[CausalLM, dict]:
    """The model and its tokenizer fields (``tokens``, ``merges``) from a llama-architecture GGUF file."""
    from gguf import GGUFReader
    from gguf.quants import dequantize

    reader = GGUFReader(str(path))
    arch = _field(reader, "general.architecture")
    if arch != "llama":
        raise InfersimError(f"{path}: general.architecture is '{arch}', expected 'llama'")
    weights = {}
    for t in reader.tensors:
        w = dequantize(t.data, t.tensor_type).astype(np.float32)
        weights[t.name] = w.reshape([int(d) for d in reversed(t.shape)])  # GGUF lists ne0 (the input) first
    num_layers = int(_field(reader, "llama.block_count"))
    heads = int(_field(reader, "llama.attention.head_count"))
    model = CausalLM(weights, num_layers, heads, int(_field(reader, "llama.attention.head_count_kv")),
                     float(_field(reader, "llama.rope.freq_base")),
                     float(_field(reader, "llama.attention.layer_norm_rms_epsilon")),
                     {"name": _field(reader, "general.name"),
                      "tensor_types": sorted({t.tensor_type.name for t in reader.tensors})})
    if model.hidden % heads or int(_field(reader, "llama.rope.dimension_count")) != model.hidden // heads:
        raise InfersimError(f"{path}: rope dimension is not the head dimension; only full-head RoPE is supported")
    tokenizer = {"tokens": list(_field(reader, "tokenizer.ggml.tokens")),
                 "merges": list(_field(reader, "tokenizer.ggml.merges")),
                 "model": _field(reader, "tokenizer.ggml.model")}
    return model, tokenizer


def bpe_tokenizer(fields: dict):
    """A ``tokenizers`` byte-level BPE built from the vocabulary and merges the GGUF carries.

    Pre-tokenization as SmolLM2's own tokenizer (and llama.cpp's ``smollm`` pre-tokenizer): every digit
    on its own, then GPT-2's byte-level regex split, no prefix space."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    if fields["model"] != "gpt2":
        raise InfersimError(f"tokenizer.ggml.model is '{fields['model']}', expected 'gpt2' (byte-level BPE)")
    vocab = {tok: i for i, tok in enumerate(fields["tokens"])}
    merges = [tuple(m.split(" ", 1)) for m in fields["merges"]]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                 pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    tok.decoder = decoders.ByteLevel()
    return tok


def rms_norm(x: np.ndarray, weight: np.ndarray, eps: float) -> np.ndarray:
    """``x / sqrt(mean(x^2) + eps) * weight`` (Zhang & Sennrich 2019)."""
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * weight


def rope(x: np.ndarray, base: float) -> np.ndarray:
    """Rotate adjacent pairs ``(x_2i, x_2i+1)`` of ``x`` (batch, heads, seq, d) by ``pos * base^(-2i/d)``."""
    d = x.shape[-1]
    inv = base ** (-np.arange(0, d, 2, dtype=np.float64) / d)
    angle = np.arange(x.shape[-2], dtype=np.float64)[:, None] * inv[None, :]
    cos, sin = np.cos(angle).astype(np.float32), np.sin(angle).astype(np.float32)
    even, odd = x[..., 0::2], x[..., 1::2]
    out = np.empty_like(x)
    out[..., 0::2] = even * cos - odd * sin
    out[..., 1::2] = even * sin + odd * cos
    return out


def _silu(x: np.ndarray) -> np.ndarray:
    return x / (1.0 + np.exp(-x))


def decoder_layer(lm: CausalLM, i: int, x: np.ndarray, capture: dict[str, np.ndarray] | None = None) -> np.ndarray:
    w = lm.weights
    p = f"blk.{i}."

    def lin(name: str, inp: np.ndarray) -> np.ndarray:
        flat = inp.reshape(-1, inp.shape[-1]) @ w[p + name + ".weight"].T
        return flat.reshape(*inp.shape[:-1], -1)

    b, s, h = x.shape
    heads, kv = lm.num_heads, lm.num_kv_heads
    d = h // heads
    a_in = rms_norm(x, w[p + "attn_norm.weight"], lm.rms_eps)
    q = rope(np.ascontiguousarray(lin("attn_q", a_in).reshape(b, s, heads, d).transpose(0, 2, 1, 3)), lm.rope_base)
    k = rope(np.ascontiguousarray(lin("attn_k", a_in).reshape(b, s, kv, d).transpose(0, 2, 1, 3)), lm.rope_base)
    v = np.ascontiguousarray(lin("attn_v", a_in).reshape(b, s, kv, d).transpose(0, 2, 1, 3))
    k, v = np.repeat(k, heads // kv, axis=1), np.repeat(v, heads // kv, axis=1)  # query head j reads kv head j // g
    scores = q @ np.ascontiguousarray(k.transpose(0, 1, 3, 2)) / np.float32(math.sqrt(d))
    scores += np.triu(np.full((s, s), -np.inf, dtype=np.float32), 1)
    scores -= scores.max(-1, keepdims=True)
    probs = np.exp(scores)
    probs /= probs.sum(-1, keepdims=True)
    context = (probs @ v).transpose(0, 2, 1, 3).reshape(b, s, h)
    x1 = x + lin("attn_output", context)
    m_in = rms_norm(x1, w[p + "ffn_norm.weight"], lm.rms_eps)
    hidden = _silu(lin("ffn_gate", m_in)) * lin("ffn_up", m_in)
    out = x1 + lin("ffn_down", hidden)
    if capture is not None:
        for name, value in (("attn_in", a_in), ("context", context), ("mlp_in", m_in), ("mlp_hidden", hidden)):
            capture[name] = value.reshape(-1, value.shape[-1])
    return out


def token_nll(lm: CausalLM, ids: np.ndarray, batch: int = 8) -> np.ndarray:
    """Negative log-likelihood (nats) of every next token of ``ids`` (n, seq): ``(n, seq - 1)``."""
    out = []
    head = lm.weights["token_embd.weight"]
    for start in range(0, len(ids), batch):
        chunk = ids[start:start + batch]
        x = lm.embed(chunk)
        for layer in range(lm.num_layers):
            x = lm.layer(layer, x)
        x = rms_norm(x, lm.weights["output_norm.weight"], lm.rms_eps)[:, :-1]
        for row, hidden in enumerate(x):  # one window's logits at a time: (seq, vocab) float32
            logits = hidden @ head.T
            top = logits.max(axis=1, keepdims=True)
            logz = np.log(np.exp(logits - top).sum(axis=1, dtype=np.float64)) + top[:, 0]
            target = chunk[row, 1:]
            out.append(logz - logits[np.arange(len(target)), target])
    return np.stack(out)


def perplexity(lm: CausalLM, ids: np.ndarray) -> float:
    """``exp(mean NLL)`` over every predicted token of the windows ``ids``."""
    return float(np.exp(token_nll(lm, ids).mean()))
