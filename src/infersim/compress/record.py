"""What a compression run leaves behind: the compressed weights (safetensors) and its measured record.

The record is the measured quality delta of (model, method, setting), labelled "measured here", that
studies and transforms can read next to published accuracy figures.
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..errors import InfersimError
from .methods import CompressedLinear
from .pipeline import LayerResult, Quality
from .spec import CompressionSpec

FP16_BYTES = 2
#: 2:4 metadata: a 2-bit index per kept value (NVIDIA Ampere sparse tensor cores, Mishra et al. 2021);
#: other patterns: a 1-bit-per-weight bitmap
NM_INDEX_BITS = 2


def linear_bytes(parts: dict[str, CompressedLinear], spec: CompressionSpec) -> tuple[float, float]:
    """(dense fp16 bytes, compressed bytes) of the linear layers.

    Compressed: kept values at ``bits`` (fp16 without quantization), sparsity metadata (a 2-bit index
    per kept value for N:M, else a bitmap), an fp16 scale and zero point per group and row, and fp16
    adapters.
    """
    dense = compressed = 0.0
    for c in parts.values():
        out_dim, in_dim = c.weight.shape
        n = out_dim * in_dim
        dense += n * FP16_BYTES
        kept = float(c.mask.sum()) if c.mask is not None else float(n)
        value_bits = spec.bits or 16
        meta_bits = (kept * NM_INDEX_BITS if spec.n is not None else n) if c.mask is not None else 0.0
        groups = out_dim * -(-in_dim // spec.group_size) if spec.bits else 0
        adapters = (c.adapter_a.size + c.adapter_b.size) * FP16_BYTES if c.adapter_a is not None else 0
        compressed += kept * value_bits / 8 + meta_bits / 8 + groups * 2 * FP16_BYTES + adapters
    return dense, compressed


@dataclass(frozen=True)
class CompressionRecord:
    model: str
    method: str
    setting: str
    sparsity: float
    bits: int | None
    group_size: int
    lowrank: float
    calibration_passages: int  # encoder: passages of 128 tokens; causal LM: windows of 256 tokens
    evaluation_passages: int
    mean_relative_error: float
    dense_linear_bytes: float
    compressed_linear_bytes: float
    seconds: float
    date: str
    n: int | None = None  # N:M pattern, None when unstructured or dense
    m: int | None = None
    kind: str = "encoder"
    cosine_similarity: float | None = None
    retrieval_agreement_at_10: float | None = None
    perplexity_dense: float | None = None
    perplexity_compressed: float | None = None
    cpu_seconds: float | None = None  # CPU time of this process while compressing (all its threads)
    source: str = "measured here (infersim compress)"

    @property
    def quality_metric(self) -> str:
        if self.kind == "causal":
            return "perplexity increase, pydoc_data.topics held-out"
        return "1 - embedding cosine, pydoc_data.topics held-out"

    @property
    def quality_delta(self) -> float:
        """Quality lost, positive = worse: the perplexity increase for a causal LM, ``1 - cosine`` for
        an encoder (0 = none)."""
        if self.kind == "causal":
            return self.perplexity_compressed - self.perplexity_dense
        return 1.0 - self.cosine_similarity

    @property
    def pattern(self) -> str:
        """The sparsity pattern as the ``sparsity`` transform spells it."""
        if self.n is not None:
            return f"{self.n}:{self.m}"
        return "unstructured" if self.sparsity > 0 else "dense"

    def to_dict(self) -> dict:
        return {**asdict(self), "quality_metric": self.quality_metric, "quality_delta": self.quality_delta}


def make_record(model: str, method: str, spec: CompressionSpec, calib: int, evaluation: int, quality: Quality,
                layers: list[LayerResult], parts: dict[str, CompressedLinear], seconds: float,
                kind: str = "encoder", cpu_seconds: float | None = None) -> CompressionRecord:
    dense, compressed = linear_bytes(parts, spec)
    return CompressionRecord(
        model=model, method=method, setting=spec.label(), sparsity=spec.pruned_fraction, bits=spec.bits,
        group_size=spec.group_size, lowrank=spec.lowrank, calibration_passages=calib, evaluation_passages=evaluation,
        mean_relative_error=float(np.mean([r.relative_error for r in layers])), dense_linear_bytes=dense,
        compressed_linear_bytes=compressed, seconds=seconds, date=_dt.date.today().isoformat(), n=spec.n, m=spec.m,
        kind=kind, cosine_similarity=quality.cosine_similarity, retrieval_agreement_at_10=quality.retrieval_agreement,
        perplexity_dense=quality.perplexity_dense, perplexity_compressed=quality.perplexity_compressed,
        cpu_seconds=cpu_seconds)


def write_outputs(out_dir: Path, enc, parts: dict[str, CompressedLinear], record: CompressionRecord,
                  layers: list[LayerResult]) -> None:
    """``model.safetensors`` (the compressed weights under the model's own tensor names, plus each
    linear's ``.mask`` and ``.adapter_a/.adapter_b``), ``record.json`` and ``layers.csv``."""
    from safetensors.numpy import save_file

    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        tensors = {k: np.ascontiguousarray(v) for k, v in enc.weights.items()}
        for name, c in parts.items():
            tensors[name + ".weight"] = np.ascontiguousarray(c.effective)
            if c.mask is not None:
                tensors[name + ".mask"] = c.mask.astype(np.uint8)
            if c.adapter_a is not None:
                tensors[name + ".adapter_a"] = c.adapter_a
                tensors[name + ".adapter_b"] = c.adapter_b
        save_file(tensors, str(out_dir / "model.safetensors"), metadata={"infersim": json.dumps(record.to_dict())})
        (out_dir / "record.json").write_text(json.dumps(record.to_dict(), indent=2) + "\n")
        lines = ["layer,out,in,relative_error,kept_fraction,rank"]
        lines += [f"{r.name},{r.shape[0]},{r.shape[1]},{r.relative_error:.6g},{r.kept_fraction:.4f},{r.rank}"
                  for r in layers]
        (out_dir / "layers.csv").write_text("\n".join(lines) + "\n")
    except OSError as exc:
        raise InfersimError(f"cannot write the compressed model to {out_dir}: {exc.strerror or exc}") from None
