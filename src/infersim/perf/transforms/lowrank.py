"""Low-rank adapters: SLiM-style compression adapters and multi-LoRA serving.

* SLiM (Mozaffari et al. 2025, "SLiM: One-shot Quantization and Sparsity with Low-rank
  Approximation for LLM Weight Compression"): each compressed linear layer ``W`` (``k x n``)
  gets ``L`` (``k x r``) and ``R`` (``r x n``) at the activation dtype, ``r = ratio x min(k, n)``
  (the paper's default rank ratio is 0.1): two thin GEMMs ``m x k x r`` and ``m x r x n``
  beside the compressed weight's GEMM, and ``(k + n) r`` more weight elements. Combine with
  ``quant`` / ``sparsity`` for the compressed weight itself.
* Multi-LoRA (Punica, Chen et al. 2024, SGMV kernels; S-LoRA, Sheng et al. 2024): a batch
  spread over ``adapters`` distinct LoRA adapters of rank ``rank`` runs, per linear layer, a
  shrink (``m x k x r``) and an expand (``m x r x n``) grouped GEMM whose rows are split over
  the adapters (each adapter's rows form their own tiles; each adapter's weights are read).
  All ``adapters`` stay resident (S-LoRA pages them; here they are counted in memory).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ...dtypes import bytes_per_element
from ..operators import OpBuilder
from .base import AccuracyCost, Transform, TransformError, concat_ops, linear_rows
from .registry import register


def _adapter_rows(table, ctx, rank_of, adapters: float, prefix: str):
    """Shrink and expand GEMM rows for every linear row of ``table`` (same counts)."""
    rows = np.flatnonzero(linear_rows(table))
    if rows.size == 0:
        return table
    ab = bytes_per_element(ctx.prec.activation)
    b = OpBuilder(table.flops.shape[1])
    for i in rows:
        m, n, k = table.gemm_m[i], table.gemm_n[i], table.gemm_k[i]
        n0, k0 = float(n.max()), float(k.max())
        r = rank_of(k0, n0)
        if r <= 0:
            continue
        experts = table.experts[i]
        # routed-expert rows: adapters of the experts that ran (weights read scale with them)
        active = np.where(experts > 0, experts, 1.0) * adapters
        name = table.names[i]
        b.gemm(f"{name}.{prefix}.shrink", m, r, k, weight_dtype_bytes=ab, act_dtype_bytes=ab,
               dtype=ctx.prec.activation, count=float(table.count[i]), weights_read=active * r * k,
               experts=active if adapters > 1 or np.any(experts > 0) else 0.0)
        b.gemm(f"{name}.{prefix}.expand", m, n, r, weight_dtype_bytes=ab, act_dtype_bytes=ab,
               dtype=ctx.prec.activation, count=float(table.count[i]), weights_read=active * n * r,
               experts=active if adapters > 1 or np.any(experts > 0) else 0.0)
    if not b.rows:
        return table
    return concat_ops(table, b.build())


def _linear_shapes(model, par, prec):
    """(k, n, count, experts per device) of every linear layer of one device's step graph."""
    from ..graph import build_step_graph
    from ..shape import StepShape

    table = build_step_graph(model, par, prec, StepShape.uniform(model, decode_seqs=1, decode_context=1))
    out = []
    for i in np.flatnonzero(linear_rows(table)):
        experts = model.num_experts / par.ep if table.names[i].startswith("moe.experts") else 1.0
        out.append((float(table.gemm_k[i, 0]), float(table.gemm_n[i, 0]), float(table.count[i]), experts))
    return out


def _adapter_bytes(model, par, prec, rank_of, copies: float) -> float:
    ab = bytes_per_element(prec.activation)
    stage = math.ceil(model.num_layers / par.pp) / model.num_layers
    total = 0.0
    for k, n, count, experts in _linear_shapes(model, par, prec):
        total += (k + n) * rank_of(k, n) * count * experts * copies * ab
    return total * stage


@register
@dataclass(frozen=True)
class LowRankAdapters(Transform):
    """SLiM-style low-rank adapters beside compressed weights (module docstring)."""

    key = "lowrank"
    primary = "ratio"
    summary = "SLiM low-rank adapters: rank = ratio x min(k, n) per linear layer"
    ratio: float = 0.0

    @classmethod
    def identity(cls) -> LowRankAdapters:
        return cls(ratio=0.0)

    @classmethod
    def example(cls) -> LowRankAdapters:
        return cls(ratio=0.1)

    def validate(self) -> None:
        if not 0.0 <= self.ratio < 1.0:
            raise TransformError("ratio", f"must be in [0, 1), got {self.ratio}")

    def rank(self, k: float, n: float) -> float:
        return float(math.ceil(self.ratio * min(k, n)))

    def adjust_graph(self, table, ctx):
        if self.ratio == 0.0:
            return table
        return _adapter_rows(table, ctx, self.rank, 1.0, "lowrank")

    def extra_weight_bytes(self, model, par, prec) -> float:
        return 0.0 if self.ratio == 0.0 else _adapter_bytes(model, par, prec, self.rank, 1.0)

    def accuracy(self) -> AccuracyCost:
        if self.ratio == 0.0:
            return self.user_accuracy(AccuracyCost("none", 0.0, "any", "off"))
        return self.user_accuracy(AccuracyCost("accuracy", math.nan, "-",
                                               "adapters recover compression loss; no figure bundled"))


@register
@dataclass(frozen=True)
class MultiLoRA(Transform):
    """Multi-LoRA serving with grouped shrink / expand GEMMs (module docstring)."""

    key = "lora"
    primary = "adapters"
    summary = "multi-LoRA serving: adapters per batch, rank (Punica SGMV / S-LoRA)"
    adapters: int = 0
    rank: int = 16

    @classmethod
    def identity(cls) -> MultiLoRA:
        return cls(adapters=0)

    @classmethod
    def example(cls) -> MultiLoRA:
        return cls(adapters=4, rank=16)

    def validate(self) -> None:
        if self.adapters < 0:
            raise TransformError("adapters", f"must be >= 0 (0 = off), got {self.adapters}")
        if self.rank < 1:
            raise TransformError("rank", f"must be >= 1, got {self.rank}")

    def _rank(self, k: float, n: float) -> float:
        return float(min(self.rank, k, n))

    def adjust_graph(self, table, ctx):
        if self.adapters == 0:
            return table
        return _adapter_rows(table, ctx, self._rank, float(self.adapters), "lora")

    def extra_weight_bytes(self, model, par, prec) -> float:
        return 0.0 if self.adapters == 0 else _adapter_bytes(model, par, prec, self._rank, float(self.adapters))

    def accuracy(self) -> AccuracyCost:
        return self.user_accuracy(AccuracyCost("none", 0.0, "any", "adapters are the served models themselves"))
