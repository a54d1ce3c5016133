"""A BERT-style sentence encoder in numpy: the real weights of a packaged model, run on the CPU.

The forward pass is BERT's (Devlin et al., 2019): token + position + type embeddings, LayerNorm,
then per layer multi-head self-attention and a GELU MLP, each followed by a residual and a
post-LayerNorm; sentence embeddings are the attention-masked mean of the last hidden states,
L2-normalized (sentence-transformers' Pooling(mean) + Normalize, Reimers & Gurevych 2019).
The linear layers are the ones compression acts on; :func:`layer_inputs` captures their inputs.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
from scipy.special import erf

from .layered import LayeredWeights

#: the linear layers of one encoder layer, in the order a forward pass reaches them,
#: each with the name of the activation that feeds it
LINEARS: tuple[tuple[str, str], ...] = (
    ("attention.self.query", "attn_in"),
    ("attention.self.key", "attn_in"),
    ("attention.self.value", "attn_in"),
    ("attention.output.dense", "context"),
    ("intermediate.dense", "mlp_in"),
    ("output.dense", "mlp_hidden"),
)


@dataclass
class Encoder(LayeredWeights):
    """Weights (name -> float32 array, PyTorch layout: a linear's weight is ``(out, in)``) and shape."""

    weights: dict[str, np.ndarray]
    num_layers: int
    num_heads: int
    layer_norm_eps: float
    meta: dict = field(default_factory=dict)
    prefix: ClassVar[str] = "encoder.layer."
    linears: ClassVar[tuple[tuple[str, str], ...]] = LINEARS

    def embed(self, ids: np.ndarray) -> np.ndarray:
        return embed(self, ids)

    def layer(self, i: int, x: np.ndarray, mask: np.ndarray, capture: dict | None = None) -> np.ndarray:
        return encoder_layer(self, i, x, mask, capture)

    def copy(self) -> "Encoder":
        return Encoder({k: v.copy() for k, v in self.weights.items()}, self.num_layers, self.num_heads,
                       self.layer_norm_eps, dict(self.meta))

    def linear_names(self) -> list[str]:
        return [f"encoder.layer.{i}.{name}.weight" for i in range(self.num_layers) for name, _ in LINEARS]


def load_encoder(model_dir: Path) -> Encoder:
    from safetensors.numpy import load_file

    config = json.loads((model_dir / "config.json").read_text())
    weights = {k: v for k, v in load_file(str(model_dir / "model.safetensors")).items()
               if v.dtype == np.float32}
    return Encoder(weights, int(config["num_hidden_layers"]), int(config["num_attention_heads"]),
                   float(config.get("layer_norm_eps", 1e-12)), {"config": config})


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def _gelu(x: np.ndarray) -> np.ndarray:
    """BERT's exact GELU, x Phi(x) (Hendrycks & Gimpel 2016)."""
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def embed(enc: Encoder, ids: np.ndarray) -> np.ndarray:
    w = enc.weights
    seq = ids.shape[1]
    x = (w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:seq][None]
         + w["embeddings.token_type_embeddings.weight"][0][None, None])
    return _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], enc.layer_norm_eps)


def encoder_layer(enc: Encoder, i: int, x: np.ndarray, mask: np.ndarray,
                  capture: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """One encoder layer on ``x`` (batch, seq, hidden); ``capture`` receives each linear's input."""
    w = enc.weights
    p = f"encoder.layer.{i}."

    def lin(name: str, inp: np.ndarray) -> np.ndarray:
        # as one 2-d GEMM: numpy's stacked matmul against a transposed weight view is not BLAS-backed
        flat = inp.reshape(-1, inp.shape[-1]) @ w[p + name + ".weight"].T + w[p + name + ".bias"]
        return flat.reshape(*inp.shape[:-1], -1)

    b, s, h = x.shape
    heads = enc.num_heads
    d = h // heads
    # contiguous (batch, heads, seq, d) stacks: numpy's batched matmul is only fast on contiguous operands
    q, k, v = (np.ascontiguousarray(lin(n, x).reshape(b, s, heads, d).transpose(0, 2, 1, 3)) for n in
               ("attention.self.query", "attention.self.key", "attention.self.value"))
    bias = np.where(mask[:, None, None, :] > 0, 0.0, -1e9).astype(x.dtype)
    scores = q @ np.ascontiguousarray(k.transpose(0, 1, 3, 2)) / math.sqrt(d) + bias
    scores -= scores.max(-1, keepdims=True)
    probs = np.exp(scores)
    probs /= probs.sum(-1, keepdims=True)
    context = (probs @ v).transpose(0, 2, 1, 3).reshape(b, s, h)
    x1 = _layer_norm(x + lin("attention.output.dense", context), w[p + "attention.output.LayerNorm.weight"],
                     w[p + "attention.output.LayerNorm.bias"], enc.layer_norm_eps)
    hidden = _gelu(lin("intermediate.dense", x1))
    out = _layer_norm(x1 + lin("output.dense", hidden), w[p + "output.LayerNorm.weight"],
                      w[p + "output.LayerNorm.bias"], enc.layer_norm_eps)
    if capture is not None:
        keep = mask.reshape(-1) > 0  # padding rows are not calibration data
        for name, value in (("attn_in", x), ("context", context), ("mlp_in", x1), ("mlp_hidden", hidden)):
            capture[name] = value.reshape(-1, value.shape[-1])[keep]
    return out


def sentence_embeddings(enc: Encoder, ids: np.ndarray, mask: np.ndarray, batch: int = 64) -> np.ndarray:
    """Mean-pooled, L2-normalized last hidden states, (n, hidden)."""
    out = []
    for start in range(0, len(ids), batch):
        i, m = ids[start:start + batch], mask[start:start + batch]
        x = embed(enc, i)
        for layer in range(enc.num_layers):
            x = encoder_layer(enc, layer, x, m)
        pooled = (x * m[..., None]).sum(1) / np.maximum(m.sum(1, keepdims=True), 1)
        out.append(pooled / np.linalg.norm(pooled, axis=1, keepdims=True))
    return np.concatenate(out).astype(np.float32)
