"""What to do to each linear layer: sparsity (unstructured fraction or N:M), bits, group size, low-rank."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import InfersimError

SUPPORTED_BITS = (2, 3, 4, 8)


@dataclass(frozen=True)
class CompressionSpec:
    sparsity: float = 0.0  # unstructured fraction pruned, in [0, 1)
    n: int | None = None  # N:M: keep n of every m consecutive input weights
    m: int | None = None
    bits: int | None = None  # uniform quantization; None: keep fp32
    group_size: int = 128  # input columns sharing one scale and zero point
    lowrank: float = 0.0  # adapter rank as a fraction of min(out, in) (SLiM)

    def __post_init__(self) -> None:
        if not 0.0 <= self.sparsity < 1.0:
            raise InfersimError(f"sparsity must be in [0, 1), got {self.sparsity}")
        if (self.n is None) != (self.m is None):
            raise InfersimError("N:M sparsity needs both N and M")
        if self.n is not None and not 0 < self.n < self.m:
            raise InfersimError(f"N:M sparsity needs 0 < N < M, got {self.n}:{self.m}")
        if self.bits is not None and self.bits not in SUPPORTED_BITS:
            raise InfersimError(f"bits must be one of {', '.join(map(str, SUPPORTED_BITS))}, got {self.bits}")
        if self.group_size < 1:
            raise InfersimError(f"group size must be >= 1, got {self.group_size}")
        if not 0.0 <= self.lowrank < 1.0:
            raise InfersimError(f"low-rank fraction must be in [0, 1), got {self.lowrank}")

    @property
    def prunes(self) -> bool:
        return self.n is not None or self.sparsity > 0

    @property
    def pruned_fraction(self) -> float:
        return 1.0 - self.n / self.m if self.n is not None else self.sparsity

    def label(self) -> str:
        parts = [f"{self.n}:{self.m}" if self.n is not None else (f"{self.sparsity:.0%}" if self.sparsity else "dense")]
        if self.bits:
            parts.append(f"int{self.bits} g{self.group_size}")
        if self.lowrank:
            parts.append(f"rank {self.lowrank:.0%}")
        return " + ".join(parts)


def parse_sparsity(text: str) -> tuple[float, int | None, int | None]:
    """``"0.5"`` or ``"50%"`` (unstructured) or ``"2:4"`` (N:M) -> (fraction, n, m)."""
    text = text.strip()
    nm = re.fullmatch(r"(\d+):(\d+)", text)
    if nm:
        n, m = int(nm.group(1)), int(nm.group(2))
        if not 0 < n < m:
            raise InfersimError(f"sparsity '{text}': N:M needs 0 < N < M")
        return 0.0, n, m
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise InfersimError(f"sparsity '{text}': expected a fraction in [0, 1), a percentage or N:M") from None
    if not 0.0 <= value < 1.0:
        raise InfersimError(f"sparsity '{text}': must be in [0, 1)")
    return value, None, None
