"""Real compression of real weights: one-shot pruning, quantization and low-rank correction of a
packaged model, with the quality it keeps measured here (``infersim compress``)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from .data import split
from .encoder import load_encoder, sentence_embeddings
from .methods import METHODS, get_method
from .models import PACKAGED_MODELS, model_dir
from .pipeline import LayerResult, Quality, compress_encoder, evaluate
from .record import CompressionRecord, make_record, write_outputs
from .spec import CompressionSpec, parse_sparsity


@dataclass
class CompressionRun:
    record: CompressionRecord
    layers: list[LayerResult]
    encoder: object
    parts: dict


def run_compression(model: str, method: str, spec: CompressionSpec, calib: int = 128, evaluation: int = 256,
                    num_layers: int | None = None, on_layer=None) -> CompressionRun:
    """Compress ``model``'s linear layers with ``method`` on ``calib`` calibration passages and measure the
    quality kept on ``evaluation`` held-out passages. ``num_layers`` keeps only the first layers (tests)."""
    directory = model_dir(model)
    m = get_method(method)
    m.check(spec)
    cal, ev = split(directory, calib, evaluation)
    enc = load_encoder(directory)
    if num_layers is not None:
        enc.num_layers = min(num_layers, enc.num_layers)
    t0 = time.perf_counter()
    compressed, parts, layers = compress_encoder(enc, cal, m, spec, on_layer)
    seconds = time.perf_counter() - t0
    _, q = evaluate(enc, compressed, ev)
    return CompressionRun(make_record(model, method, spec, calib, evaluation, q, layers, parts, seconds), layers,
                          compressed, parts)


__all__ = ["METHODS", "PACKAGED_MODELS", "CompressionRecord", "CompressionRun", "CompressionSpec", "LayerResult",
           "Quality", "load_encoder", "parse_sparsity", "run_compression", "sentence_embeddings", "write_outputs"]
