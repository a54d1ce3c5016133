"""Sequential layer-by-layer compression of an encoder or a causal LM, and the quality it keeps.

As SparseGPT and GPTQ do: each layer's linear inputs are captured with every earlier layer
already compressed, the layer's linears are compressed against them, and the compressed layer's
output feeds the next layer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .data import Tokens
from .encoder import Encoder, sentence_embeddings
from .methods import Calibration, CompressedLinear, Method
from .spec import CompressionSpec

RETRIEVAL_K = 10


@dataclass(frozen=True)
class LayerResult:
    name: str
    shape: tuple[int, int]
    relative_error: float  # ||X W^T - X W_c^T|| / ||X W^T|| on the calibration inputs
    kept_fraction: float
    rank: int


@dataclass(frozen=True)
class Quality:
    """Encoder: embedding agreement with the dense model; causal LM: held-out perplexity before / after."""

    cosine_similarity: float | None = None  # mean cosine between dense and compressed sentence embeddings
    retrieval_agreement: float | None = None  # mean overlap of the top-k neighbours (k = RETRIEVAL_K)
    perplexity_dense: float | None = None
    perplexity_compressed: float | None = None


def compress_layers(model, x: np.ndarray, mask: np.ndarray | None, method: Method, spec: CompressionSpec,
                    on_layer: Callable[[int], None] | None = None) -> tuple[object, dict[str, CompressedLinear],
                                                                              list[LayerResult]]:
    """Sequential compression of ``model`` (an :class:`~.encoder.Encoder` or :class:`~.causal.CausalLM`)
    from its embedded calibration batch ``x``: the compressed copy, each linear's compressed form, and
    per-layer reconstruction errors."""
    out = model.copy()
    parts: dict[str, CompressedLinear] = {}
    results: list[LayerResult] = []
    for layer in range(model.num_layers):
        captured: dict[str, np.ndarray] = {}
        out.layer(layer, x, mask, capture=captured)
        stats = {name: Calibration(value) for name, value in captured.items()}
        for name, source in model.linears:
            w = out.linear(layer, name)
            c = method.compress(w, stats[source], spec)
            eff = c.effective
            xs = stats[source].x
            dense = xs @ w.T
            err = float(np.linalg.norm(dense - xs @ eff.T) / max(np.linalg.norm(dense), 1e-30))
            key = model.linear_key(layer, name)
            parts[key] = c
            results.append(LayerResult(key, w.shape, err, float(c.mask.mean()) if c.mask is not None else 1.0,
                                       0 if c.adapter_a is None else c.adapter_a.shape[1]))
            out.with_linear(layer, name, eff)
        x = out.layer(layer, x, mask)
        if on_layer is not None:
            on_layer(layer)
    return out, parts, results


def compress_encoder(enc: Encoder, calib: Tokens, method: Method, spec: CompressionSpec,
                     on_layer: Callable[[int], None] | None = None
                     ) -> tuple[Encoder, dict[str, CompressedLinear], list[LayerResult]]:
    """The compressed encoder, each linear's compressed form, and per-layer reconstruction errors."""
    return compress_layers(enc, enc.embed(calib.ids), calib.mask, method, spec, on_layer)


def quality(dense: np.ndarray, compressed: np.ndarray, k: int = RETRIEVAL_K) -> Quality:
    """Cosine similarity of paired embeddings and top-k neighbour agreement (self excluded)."""
    cos = float(np.mean(np.sum(dense * compressed, axis=1)))
    k = min(k, len(dense) - 1)

    def neighbours(e: np.ndarray) -> np.ndarray:
        sim = e @ e.T
        np.fill_diagonal(sim, -np.inf)
        return np.argsort(-sim, axis=1, kind="stable")[:, :k]

    a, b = neighbours(dense), neighbours(compressed)
    overlap = np.mean([len(set(x) & set(y)) / k for x, y in zip(a.tolist(), b.tolist())])
    return Quality(cos, float(overlap))


def evaluate(enc: Encoder, compressed: Encoder, evaluation: Tokens) -> tuple[np.ndarray, Quality]:
    dense = sentence_embeddings(enc, evaluation.ids, evaluation.mask)
    return dense, quality(dense, sentence_embeddings(compressed, evaluation.ids, evaluation.mask))
