"""Weight sparsity: N:M structured (2:4 on sparse tensor cores) and unstructured.

* N:M (``sparsity=2:4``; Mishra et al. 2021, "Accelerating Sparse Deep Neural Networks",
  NVIDIA Ampere sparse tensor cores; cuSPARSELt): of every ``M`` consecutive weights ``N`` are
  kept, stored compressed with ``ceil(log2 M)`` bits of position metadata per kept value, so a
  weight element costs ``N/M x (bytes + ceil(log2 M) / 8)`` (2:4 bf16: ``0.5 x 2.25 = 1.125``
  bytes). On a device that declares a 2:4 sparse peak for the GEMM's dtype (hardware
  ``compute.sparse_tflops``) the sparse GEMMs' math runs at that peak: their FLOPs are charged
  at ``dense / sparse`` (1/2 on Ampere / Hopper) of the dense count. Only weights (linear
  layers) are sparse; attention, the LM head and the router are not. Where the speed-up
  does not apply: a GEMM whose time is its weight stream (small ``m``, memory-bound decode)
  gains only the bytes; patterns other than 2:4, and devices without a sparse peak, keep dense
  math (``kernel=auto`` states the fallback; ``kernel=tensor-core`` refuses to run).
* Unstructured (``sparsity=unstructured,density=0.5``; Flash-LLM, Xia et al. 2023:
  "load-as-sparse, compute-as-dense"): only the non-zeros plus a one-bit-per-element bitmap
  are stored and streamed; the math stays dense.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from ...dtypes import DTYPE_BYTES, bytes_per_element
from .base import AccuracyCost, Transform, TransformError, copy_table, linear_rows
from .registry import register

_SPARSE_LLAMA = AccuracyCost(
    "Open LLM Leaderboard v1 average, % of dense lost", 2.0, "Llama-3.1-8B (2:4, sparse fine-tuned)",
    "Neural Magic, '2:4 Sparse Llama: Smaller Models for Efficient GPU Inference', 2024-11-25: 98% recovery")


def nm_metadata_bits(m: int) -> int:
    """Position bits per kept value in an N:M group of ``m`` (2 for 2:4, as cuSPARSELt stores)."""
    return max(1, math.ceil(math.log2(m)))


def nm_bytes_per_element(n: int, m: int, dtype_bytes: float) -> float:
    """Stored bytes per dense weight element under N:M sparsity with metadata."""
    return n / m * (dtype_bytes + nm_metadata_bits(m) / 8.0)


@register
@dataclass(frozen=True)
class Sparsity(Transform):
    """N:M structured or unstructured weight sparsity (module docstring has the sources)."""

    key = "sparsity"
    primary = "pattern"
    summary = "weight sparsity: N:M (2:4 on sparse tensor cores) or unstructured,density=..."
    pattern: str = "dense"
    density: float = 0.5  # unstructured: kept fraction
    kernel: str = "auto"  # auto | tensor-core (must run on sparse tensor cores) | none (memory only)
    # bound: per dtype, dense / sparse peak of the device (1.0: no sparse math for it)
    flop_factor: tuple = ()

    @classmethod
    def identity(cls) -> Sparsity:
        return cls(pattern="dense")

    @classmethod
    def example(cls) -> Sparsity:
        return cls(pattern="2:4")

    @property
    def nm(self) -> tuple[int, int] | None:
        if self.pattern in ("dense", "unstructured"):
            return None
        n, _, m = self.pattern.partition(":")
        return int(n), int(m)

    def validate(self) -> None:
        if self.pattern not in ("dense", "unstructured"):
            n, sep, m = self.pattern.partition(":")
            if not sep or not n.strip().isdigit() or not m.strip().isdigit():
                raise TransformError("pattern", f"expected N:M (e.g. 2:4), unstructured or dense, got '{self.pattern}'")
            if not 0 < int(n) < int(m):
                raise TransformError("pattern", f"N:M needs 0 < N < M, got {self.pattern}")
        if not 0.0 < self.density <= 1.0:
            raise TransformError("density", f"must be in (0, 1], got {self.density}")
        if self.kernel not in ("auto", "tensor-core", "none"):
            raise TransformError("kernel", f"expected auto, tensor-core or none, got '{self.kernel}'")

    @property
    def hardware_pattern(self) -> bool:
        return self.nm == (2, 4) and self.kernel != "none"

    def bind(self, device) -> Sparsity:
        factors = tuple((d, device.peak_flops(d) / device.peak_flops(d, sparse=True)) for d in sorted(DTYPE_BYTES)
                        if d != "fp32")
        if self.kernel == "tensor-core":
            if self.nm != (2, 4):
                raise TransformError("kernel", f"sparse tensor cores run 2:4 only, not {self.pattern}")
            if not device.sparse_flops_per_s:
                raise TransformError("kernel", f"device '{device.name}' declares no 2:4 sparse peak "
                                     "(hardware compute.sparse_tflops); use kernel=auto for memory savings only")
        return dataclasses.replace(self, flop_factor=factors)

    def stored_bytes_per_element(self, dtype_bytes: float) -> float:
        if self.pattern == "dense":
            return dtype_bytes
        if self.pattern == "unstructured":
            return self.density * dtype_bytes + 1.0 / 8.0  # values + bitmap
        n, m = self.nm
        return nm_bytes_per_element(n, m, dtype_bytes)

    def linear_weight_factor(self, prec) -> float:
        b = bytes_per_element(prec.weight)
        return self.stored_bytes_per_element(b) / b

    def adjust_graph(self, table, ctx):
        if self.pattern == "dense":
            return table
        rows = linear_rows(table)
        factor = self.linear_weight_factor(ctx.prec)
        weight_bytes = np.where(rows[:, None], table.weight_bytes * factor, table.weight_bytes)
        flops = table.flops
        if self.hardware_pattern and self.flop_factor:
            per_dtype = dict(self.flop_factor)
            f = np.array([per_dtype.get(d, 1.0) for d in table.dtype])[:, None]
            flops = np.where(rows[:, None], flops * f, flops)
        return copy_table(table, weight_bytes=weight_bytes, flops=flops)

    def notes(self, device, prec) -> list[str]:
        if self.pattern == "dense":
            return []
        if self.pattern == "unstructured":
            return [f"{self.key}=unstructured: memory and weight bytes only ({self.density:g} kept + 1-bit "
                    "bitmap); GEMM math stays dense (Flash-LLM style)"]
        if not self.hardware_pattern:
            return [f"{self.key}={self.pattern}: no sparse tensor-core kernel for this pattern; weight bytes "
                    f"x{self.linear_weight_factor(prec):.4f}, math dense"]
        if not device.sparse_flops_per_s:
            return [f"{self.key}=2:4: {device.name} declares no sparse peak; weight bytes only, math dense"]
        return []

    def accuracy(self) -> AccuracyCost:
        if self.pattern == "dense":
            return self.user_accuracy(AccuracyCost("none", 0.0, "any", "no change"))
        if self.nm == (2, 4):
            return self.user_accuracy(_SPARSE_LLAMA)
        return self.user_accuracy(AccuracyCost("accuracy", math.nan, "-", "no published figure bundled; "
                                               "give accuracy_delta="))
