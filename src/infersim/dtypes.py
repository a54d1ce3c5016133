"""Numeric data types and their storage sizes.

``bytes_per_element`` is the storage cost used everywhere bytes are counted
(weights, activations, KV cache). Sub-byte types (fp4, int4) cost half a byte per
element; block-scale overheads (e.g. one fp8 scale per 16 fp4 values in NVFP4,
per the NVIDIA Blackwell architecture brief) are included as a fractional extra.
"""

from __future__ import annotations

from .errors import InfersimError

#: storage bytes per element; fp4/int4 include one 8-bit scale per 32-element block (0.5 + 1/32)
DTYPE_BYTES: dict[str, float] = {
    "fp32": 4.0,
    "tf32": 4.0,
    "bf16": 2.0,
    "fp16": 2.0,
    "fp8": 1.0,
    "int8": 1.0,
    "fp4": 0.5 + 1.0 / 32.0,
    "int4": 0.5 + 1.0 / 32.0,
}

#: where a device lacks a dtype's math units, the next wider dtype its kernels fall back to
#: (e.g. fp8 on A100 runs as bf16 after up-conversion, fp4 on H100 as fp8)
COMPUTE_FALLBACK: dict[str, str | None] = {
    "fp4": "fp8",
    "int4": "int8",
    "int8": "fp8",
    "fp8": "bf16",
    "bf16": "fp16",
    "fp16": "tf32",
    "tf32": "fp32",
    "fp32": None,
}


def bytes_per_element(dtype: str) -> float:
    """Storage bytes of one element of ``dtype`` (e.g. 2.0 for bf16)."""
    try:
        return DTYPE_BYTES[dtype]
    except KeyError:
        raise InfersimError(
            f"unknown dtype '{dtype}'; expected one of {', '.join(DTYPE_BYTES)}"
        ) from None


def check_dtype(dtype: str, what: str) -> str:
    """Validate a dtype name given for ``what`` (e.g. '--weight-dtype')."""
    if dtype not in DTYPE_BYTES:
        raise InfersimError(f"{what}: unknown dtype '{dtype}'; expected one of {', '.join(DTYPE_BYTES)}")
    return dtype
