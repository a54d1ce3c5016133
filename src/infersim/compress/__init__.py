"""Real compression of real weights: one-shot pruning, quantization and low-rank correction of a
packaged model, with the quality it keeps measured here (``infersim compress``)."""

from __future__ import annotations

import dataclasses
import functools
import time
from dataclasses import dataclass
from pathlib import Path

from .causal import bpe_tokenizer, load_causal_lm, perplexity
from .data import causal_split, split
from .encoder import load_encoder, sentence_embeddings
from .methods import METHODS, get_method
from .models import PACKAGED_MODELS, model_dir
from .pipeline import LayerResult, Quality, compress_encoder, compress_layers, evaluate
from .record import CompressionRecord, make_record, write_outputs
from .spec import CompressionSpec, parse_sparsity


@dataclass
class CompressionRun:
    record: CompressionRecord
    layers: list[LayerResult]
    encoder: object  # the compressed model (Encoder or CausalLM)
    parts: dict


def _run_encoder(model, directory, m, spec, calib, evaluation, num_layers, on_layer):
    cal, ev = split(directory, calib, evaluation)
    enc = load_encoder(directory)
    if num_layers is not None:
        enc.num_layers = min(num_layers, enc.num_layers)
    t0, c0 = time.perf_counter(), time.process_time()
    compressed, parts, layers = compress_encoder(enc, cal, m, spec, on_layer)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    _, q = evaluate(enc, compressed, ev)
    record = make_record(model, m.key, spec, calib, evaluation, q, layers, parts, seconds, cpu_seconds=cpu)
    return CompressionRun(record, layers, compressed, parts)


@functools.lru_cache(maxsize=1)
def _load_causal(path: str):
    lm, fields = load_causal_lm(Path(path))
    return lm, bpe_tokenizer(fields)


@functools.lru_cache(maxsize=2)
def dense_causal(path: str, calib: int, evaluation: int, num_layers: int | None):
    """(dense model, calibration ids, evaluation ids, dense perplexity), computed once per process and
    setting: a study compresses the same model many times."""
    lm, tokenizer = _load_causal(path)
    if num_layers is not None:
        lm = dataclasses.replace(lm, num_layers=min(num_layers, lm.num_layers))  # weights shared, never mutated
    cal, ev = causal_split(tokenizer, calib, evaluation)
    return lm, cal, ev, perplexity(lm, ev)


def _run_causal(model, directory, m, spec, calib, evaluation, num_layers, on_layer):
    lm, cal, ev, ppl_dense = dense_causal(str(directory / PACKAGED_MODELS[model].weights_file), calib, evaluation,
                                          num_layers)
    t0, c0 = time.perf_counter(), time.process_time()
    compressed, parts, layers = compress_layers(lm, lm.embed(cal), None, m, spec, on_layer)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    q = Quality(perplexity_dense=ppl_dense, perplexity_compressed=perplexity(compressed, ev))
    return CompressionRun(make_record(model, m.key, spec, calib, evaluation, q, layers, parts, seconds, "causal",
                                      cpu_seconds=cpu), layers, compressed, parts)


#: how each kind of packaged model is compressed and measured
RUNNERS = {"encoder": _run_encoder, "causal": _run_causal}


def run_compression(model: str, method: str, spec: CompressionSpec, calib: int = 128, evaluation: int = 256,
                    num_layers: int | None = None, on_layer=None) -> CompressionRun:
    """Compress ``model``'s linear layers with ``method`` on ``calib`` calibration passages (windows for a
    causal LM) and measure the quality kept on ``evaluation`` held-out ones. ``num_layers`` keeps only the
    first layers (tests)."""
    directory = model_dir(model)
    m = get_method(method)
    m.check(spec)
    return RUNNERS[PACKAGED_MODELS[model].kind](model, directory, m, spec, calib, evaluation, num_layers, on_layer)


__all__ = ["METHODS", "PACKAGED_MODELS", "CompressionRecord", "CompressionRun", "CompressionSpec", "LayerResult",
           "Quality", "load_encoder", "parse_sparsity", "run_compression", "sentence_embeddings", "write_outputs"]
