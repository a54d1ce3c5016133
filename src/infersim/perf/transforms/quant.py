"""Quantization schemes: weight-only int4/int8 with group scales, W8A8 (int8 / fp8), MXFP4 /
NVFP4 block-scaled W4A4, and a quantized KV cache.

* Weight-only (``quant=w4a16`` / ``w8a16``; GPTQ, Frantar et al. 2023; AWQ, Lin et al.
  2024): a weight element costs ``bits / 8 + (scale_bytes [+ zero point]) / group`` bytes
  (int4, group 128, fp16 scales: ``0.5 + 2 / 128 = 0.515625``); the GEMM runs at the
  activation dtype after dequantization in registers (Marlin, Frantar & Alistarh 2024), whose
  vector work (``dequant_ops`` per weight element, once per 64-row tile of ``m``; Marlin's
  lop3-based int4 -> fp16 conversion plus the scale multiply) is charged to the GEMM's compute
  side at the ratio of the tensor-core to the half2 vector peak.
* W8A8 (``quant=w8a8,dtype=int8|fp8``; SmoothQuant, Xiao et al. 2023; FP8 formats,
  Micikevicius et al. 2022): 1-byte weights with per-tensor or per-output-channel fp32 scales,
  GEMMs in int8 / fp8, and activations quantized before each GEMM (per-tensor static or
  per-token dynamic scales): the GEMM reads 1-byte inputs and a quantize pass writes them.
* MXFP4 / NVFP4 (``quant=mxfp4|nvfp4``; OCP Microscaling spec v1.0, 2023: one E8M0 scale per 32
  elements; NVIDIA Blackwell NVFP4: one E4M3 scale per 16): fp4 weights and activations, fp4
  GEMMs; a device without fp4 math falls back to its next wider dtype (stated in the notes).
* KV cache (``kvquant=fp8|int8|int4``; KIVI, Liu et al. 2024 for int4): the KV dtype changes,
  so KV capacity (the batch that fits) and attention bytes follow.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from ...dtypes import COMPUTE_FALLBACK, DTYPE_BYTES, bytes_per_element
from ..operators import OpKind
from .base import AccuracyCost, Transform, TransformError, append_row, copy_table, linear_rows, phase_rows
from .registry import register

#: published accuracy costs (published, not measured here)
_GPTQ_W4_G128 = AccuracyCost(
    "WikiText-2 perplexity", 3.21 - 3.12, "Llama-2-70B",
    "GPTQ int4 g128 via Marlin: Wiki2 ppl 3.12 (FP16) -> 3.21 (INT4), IST-DASLab/marlin README")
_FP8_W8A8 = AccuracyCost(
    "Open LLM Leaderboard v1 average, % of dense lost", (73.79 - 73.44) / 73.79 * 100.0, "Llama-3.1-8B-Instruct",
    "Neural Magic, Meta-Llama-3.1-8B-Instruct-FP8 model card (per-tensor FP8 weights and activations): "
    "OpenLLM v1 average 73.44 vs 73.79 unquantized")
_UNKNOWN = "no published figure bundled; give accuracy_delta="

#: rows of a GEMM whose weights are dequantized once per this many rows of m (Marlin's
#: 16-row MMA fragments x 4 warps along m: one dequantization serves a 64-row slice)
DEQUANT_ROWS_PER_TILE = 64.0

_SCHEMES = ("none", "w4a16", "w8a16", "w8a8", "mxfp4", "nvfp4")


def group_scale_bytes_per_element(group: int, scale_bytes: float, zero_point_bits: float = 0.0) -> float:
    """Bytes of scale (and zero point) metadata per weight element under group-wise quantization."""
    return (scale_bytes + zero_point_bits / 8.0) / group


@register
@dataclass(frozen=True)
class Quantization(Transform):
    """Weight / activation quantization schemes (see the module docstring for sources)."""

    key = "quant"
    primary = "scheme"
    summary = "quantization: w4a16/w8a16 (group scales), w8a8 int8|fp8, mxfp4, nvfp4"
    scheme: str = "none"
    group: int = 128  # weight-only: elements sharing one scale (GPTQ/AWQ default 128)
    scale_bytes: float = 2.0  # weight-only: fp16 scales
    zero_points: bool = False  # weight-only: asymmetric (AWQ) adds a zero point per group, packed like the weights
    dtype: str = "int8"  # w8a8: int8 or fp8
    weight_scales: str = "channel"  # w8a8: tensor | channel (one fp32 scale per output channel)
    act_scales: str = "token"  # w8a8 / fp4: tensor (static) | token (dynamic, per token)
    dequant_ops: float = 2.0  # weight-only: vector ops per weight element dequantized (lop3 + fma, scale)
    # bound: per GEMM dtype, tensor-core peak / (2 x fp32 vector peak: half2 SIMD)
    matrix_to_vector: tuple = ()

    @classmethod
    def identity(cls) -> Quantization:
        return cls(scheme="none")

    @classmethod
    def example(cls) -> Quantization:
        return cls(scheme="w4a16", group=128)

    def validate(self) -> None:
        if self.scheme not in _SCHEMES:
            raise TransformError("scheme", f"expected one of {', '.join(_SCHEMES)}, got '{self.scheme}'")
        if self.group < 1:
            raise TransformError("group", f"must be >= 1, got {self.group}")
        if self.scale_bytes < 0:
            raise TransformError("scale_bytes", f"must be >= 0, got {self.scale_bytes}")
        if self.dtype not in ("int8", "fp8"):
            raise TransformError("dtype", f"expected int8 or fp8, got '{self.dtype}'")
        if self.weight_scales not in ("tensor", "channel"):
            raise TransformError("weight_scales", f"expected tensor or channel, got '{self.weight_scales}'")
        if self.act_scales not in ("tensor", "token"):
            raise TransformError("act_scales", f"expected tensor or token, got '{self.act_scales}'")
        if self.dequant_ops < 0:
            raise TransformError("dequant_ops", f"must be >= 0, got {self.dequant_ops}")

    # ----- what the scheme stores and computes in ----------------------------------------
    @property
    def weight_only(self) -> bool:
        return self.scheme in ("w4a16", "w8a16")

    @property
    def gemm_dtype(self) -> str | None:
        return {"w8a8": self.dtype, "mxfp4": "fp4", "nvfp4": "fp4"}.get(self.scheme)

    def weight_bytes_per_element(self, prec) -> float:
        """Stored bytes per linear-weight element (scales included; per-channel / per-tensor fp32
        scales of W8A8 are one per output channel: below 0.1 % at k >= 4096, not counted)."""
        if self.scheme == "none":
            return bytes_per_element(prec.weight)
        if self.weight_only:
            bits = 4 if self.scheme == "w4a16" else 8
            return bits / 8.0 + group_scale_bytes_per_element(self.group, self.scale_bytes,
                                                               bits if self.zero_points else 0.0)
        if self.scheme == "w8a8":
            return 1.0
        if self.scheme == "mxfp4":
            return 0.5 + 1.0 / 32.0  # one E8M0 byte per 32 (OCP MX v1.0)
        return 0.5 + 1.0 / 16.0  # NVFP4: one E4M3 byte per 16

    def linear_weight_factor(self, prec) -> float:
        if self.scheme == "none":
            return 1.0
        return self.weight_bytes_per_element(prec) / bytes_per_element(prec.weight)

    def bind(self, device) -> Quantization:
        vector = 2.0 * device.peak_flops("fp32")
        ratios = tuple((d, device.peak_flops(d) / vector) for d in sorted(DTYPE_BYTES))
        return dataclasses.replace(self, matrix_to_vector=ratios)

    def adjust_graph(self, table, ctx):
        if self.scheme == "none":
            return table
        rows = linear_rows(table)
        if not rows.any():
            return table
        ab = bytes_per_element(ctx.prec.activation)
        wb = bytes_per_element(ctx.prec.weight)
        elems = table.weight_bytes / wb
        weight_bytes = np.where(rows[:, None], elems * self.weight_bytes_per_element(ctx.prec), table.weight_bytes)
        flops, act_bytes, dtypes = table.flops, table.act_bytes, list(table.dtype)
        if self.weight_only:
            ratio = dict(self.matrix_to_vector)
            factor = np.array([ratio.get(d, 1.0) for d in table.dtype])[:, None]
            # whole 64-row tiles; rows the step model keeps linear in m (MLA's per-phase
            # projections) pay m / 64, the same work without the rounding
            tiles = np.where(phase_rows(table)[:, None], table.gemm_m / DEQUANT_ROWS_PER_TILE,
                             np.ceil(table.gemm_m / DEQUANT_ROWS_PER_TILE))
            flops = np.where(rows[:, None], flops + self.dequant_ops * elems * tiles * factor, flops)
            return copy_table(table, weight_bytes=weight_bytes, flops=flops)
        # W8A8 / FP4: narrow GEMM inputs, and a quantize pass over them
        qb = 1.0 if self.scheme == "w8a8" else weight_bytes_per_fp4_act(self.scheme)
        mk = table.gemm_m * table.gemm_k
        act_bytes = np.where(rows[:, None], act_bytes - mk * (ab - qb), act_bytes)
        for i in np.flatnonzero(rows):
            dtypes[i] = self.gemm_dtype
        ops_per_elem = 3.0 if self.act_scales == "token" else 1.0  # |x|, max-reduce, scale vs scale only
        out = copy_table(table, weight_bytes=weight_bytes, act_bytes=act_bytes, dtype=dtypes)
        # one quantize pass per class of rows the step model tells apart (token-count rows; per-phase rows)
        phase = phase_rows(table)
        for name, group in (("quant.act", rows & ~phase), ("attention.quant_act", rows & phase)):
            if group.any():
                counted = table.count[group][:, None]
                out = append_row(out, name, OpKind.ELEMENTWISE, ctx.prec.activation,
                                 flops=(ops_per_elem * mk[group] * counted).sum(axis=0),
                                 act_bytes=(qb * mk[group] * counted).sum(axis=0))
        return out

    def notes(self, device, prec) -> list[str]:
        d = self.gemm_dtype
        if d is None or d in device.dense_flops_per_s:
            return []
        fallback = d
        while fallback is not None and fallback not in device.dense_flops_per_s:
            fallback = COMPUTE_FALLBACK[fallback]
        return [f"{self.key}={self.scheme}: {device.name} has no {d} math; its GEMMs run at the {fallback} "
                f"peak ({device.peak_flops(d) / 1e12:,.0f} TFLOP/s) after up-conversion, weights stay "
                f"{self.weight_bytes_per_element(prec):g} bytes/element"]

    def accuracy(self) -> AccuracyCost:
        if self.scheme == "none":
            return self.user_accuracy(AccuracyCost("none", 0.0, "any", "no change"))
        if self.scheme == "w4a16" and self.group == 128:
            return self.user_accuracy(_GPTQ_W4_G128)
        if self.scheme == "w8a8" and self.dtype == "fp8":
            return self.user_accuracy(_FP8_W8A8)
        return self.user_accuracy(AccuracyCost("accuracy", math.nan, "-", _UNKNOWN))


def weight_bytes_per_fp4_act(scheme: str) -> float:
    """Bytes per fp4 activation element with its block scale (MX: 1/32, NV: 1/16)."""
    return 0.5 + (1.0 / 32.0 if scheme == "mxfp4" else 1.0 / 16.0)


_KV_DTYPES = ("none", "fp8", "int8", "int4")


@register
@dataclass(frozen=True)
class KVQuantization(Transform):
    """A quantized KV cache (FP8: Micikevicius et al. 2022 / vLLM ``kv_cache_dtype``; int4 with
    per-group scales: KIVI, Liu et al. 2024): the KV dtype changes, and with it the KV bytes per
    token (capacity: the batch that fits) and the attention bytes read per step."""

    key = "kvquant"
    primary = "dtype"
    summary = "quantized KV cache: fp8 | int8 | int4"
    dtype: str = "none"

    @classmethod
    def identity(cls) -> KVQuantization:
        return cls(dtype="none")

    @classmethod
    def example(cls) -> KVQuantization:
        return cls(dtype="fp8")

    def validate(self) -> None:
        if self.dtype not in _KV_DTYPES:
            raise TransformError("dtype", f"expected one of {', '.join(_KV_DTYPES)}, got '{self.dtype}'")

    def adjust_precision(self, prec):
        if self.dtype == "none" or prec.kv_cache == self.dtype:
            return prec
        return dataclasses.replace(prec, kv_cache=self.dtype)

    def notes(self, device, prec) -> list[str]:
        if self.dtype == "fp8" and "fp8" not in device.dense_flops_per_s:
            return [f"{self.key}=fp8: {device.name} has no fp8 math; attention over the fp8 cache runs at the "
                    f"{prec.activation} peak after up-conversion (KV bytes and capacity still fp8)"]
        return []

    def accuracy(self) -> AccuracyCost:
        if self.dtype == "none":
            return self.user_accuracy(AccuracyCost("none", 0.0, "any", "no change"))
        return self.user_accuracy(AccuracyCost("accuracy", math.nan, "-", _UNKNOWN))
