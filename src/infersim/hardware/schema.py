"""The hardware file format (YAML, one device per file), validated by pydantic.

Units are in the field names: ``tflops`` (10^12 FLOP/s), ``gb`` (10^9 bytes),
``gb_per_s`` (10^9 bytes/s, one direction), ``us`` (microseconds), ``w`` (watts).
Every section has a required ``source`` naming the spec sheet, paper or
measurement its numbers come from; the loader rejects a section without one.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..dtypes import DTYPE_BYTES

Source = str


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_dtype_keys(value: dict[str, float]) -> dict[str, float]:
    for key, number in value.items():
        if key not in DTYPE_BYTES:
            raise ValueError(f"unknown dtype '{key}'; expected one of {', '.join(DTYPE_BYTES)}")
        if number <= 0:
            raise ValueError(f"peak for '{key}' must be > 0, got {number}")
    return value


class ComputeSpec(_Strict):
    """Peak math throughput of one device (one GPU / one TPU chip / one CPU socket)."""

    dense_tflops: dict[str, float] = Field(description="dense peak per dtype, TFLOP/s")
    sparse_tflops: dict[str, float] = Field(
        default_factory=dict, description="2:4 structured-sparse peak per dtype, TFLOP/s"
    )
    compute_units: int | None = Field(
        default=None, gt=0, description="SMs / CUs / TensorCores / cores that tile work (wave quantization)"
    )
    clock_ghz: float | None = Field(default=None, gt=0)
    source: Source = Field(min_length=3)

    _dense = field_validator("dense_tflops")(_check_dtype_keys)
    _sparse = field_validator("sparse_tflops")(_check_dtype_keys)

    @field_validator("dense_tflops")
    @classmethod
    def _not_empty(cls, value: dict[str, float]) -> dict[str, float]:
        if not value:
            raise ValueError("at least one dtype peak is required")
        return value


class MemorySpec(_Strict):
    """Device memory (HBM / GDDR / DDR) and on-chip SRAM."""

    capacity_gb: float = Field(gt=0)
    bandwidth_gb_per_s: float = Field(gt=0)
    sram_mb: float = Field(default=0.0, ge=0, description="on-chip SRAM (L2 + shared/L1, or VMEM)")
    source: Source = Field(min_length=3)


class LinkSpec(_Strict):
    """An interconnect: scale-up (NVLink / ICI / Infinity Fabric) or scale-out (IB / Ethernet)."""

    name: str
    bandwidth_gb_per_s: float = Field(gt=0, description="per device, per direction")
    latency_us: float = Field(ge=0, description="one-hop software+wire latency (alpha)")
    domain_size: int = Field(default=1, ge=1, description="devices reachable over this link at full bandwidth")
    topology: Literal["switch", "ring", "torus", "mesh", "pcie", "network"] = "switch"
    source: Source = Field(min_length=3)


class PowerSpec(_Strict):
    tdp_w: float = Field(gt=0)
    idle_w: float | None = Field(default=None, ge=0)
    source: Source = Field(min_length=3)


class CostSpec(_Strict):
    usd_per_hour: float = Field(gt=0, description="rental price of one device")
    source: Source = Field(min_length=3)


class EfficiencySpec(_Strict):
    """Achievable fractions of peak and fixed overheads (the calibratable part).

    The roofline in :mod:`infersim.perf.roofline` uses a saturating efficiency
    ``eff(x) = max_fraction * x / (x + half)``: a kernel doing little work runs far
    below peak (launch, pipeline fill, tail effects) and a large one approaches
    ``max_fraction``. ``x`` is FLOPs per compute unit for compute and bytes for
    memory. Defaults are generic; ``infersim calibrate`` fits them to measurements.
    """

    compute_max_fraction: float = Field(default=0.80, gt=0, le=1.0)
    compute_max_fraction_by_dtype: dict[str, float] = Field(
        default_factory=dict, description="per-dtype override of compute_max_fraction (e.g. fp8 GEMMs)")
    attention_max_fraction: float | None = Field(
        default=None, gt=0, le=1.0, description="fused attention kernels' achievable fraction (default: compute's)")
    compute_half_flops: float = Field(default=2.0e9, ge=0, description="FLOPs at which compute efficiency is half its max")
    memory_max_fraction: float = Field(default=0.85, gt=0, le=1.0)
    memory_half_bytes: float = Field(default=4.0e6, ge=0, description="bytes at which bandwidth efficiency is half its max")
    kernel_overhead_us: float = Field(default=4.0, ge=0, description="fixed cost per kernel launch")
    gemm_tile_m: int = Field(default=128, ge=1)
    gemm_tile_n: int = Field(default=128, ge=1)
    collective_bandwidth_fraction: float = Field(default=0.80, gt=0, le=1.0)
    source: Source = Field(default="infersim generic defaults (uncalibrated)", min_length=3)


    @field_validator("compute_max_fraction_by_dtype")
    @classmethod
    def _fractions(cls, value: dict[str, float]) -> dict[str, float]:
        for key, number in value.items():
            if key not in DTYPE_BYTES:
                raise ValueError(f"unknown dtype '{key}'; expected one of {', '.join(DTYPE_BYTES)}")
            if not 0 < number <= 1:
                raise ValueError(f"fraction for '{key}' must be in (0, 1], got {number}")
        return value

    def compute_fraction(self, dtype: str, attention: bool = False) -> float:
        """Achievable fraction of peak for matrix work in ``dtype`` (attention kernels apart)."""
        if attention and self.attention_max_fraction is not None:
            return self.attention_max_fraction
        return self.compute_max_fraction_by_dtype.get(dtype, self.compute_max_fraction)


class HardwareSpec(_Strict):
    """One device, as written in a hardware YAML file."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$", description="catalog key, lower-case")
    display_name: str
    vendor: str
    category: Literal["gpu", "tpu", "cpu", "npu", "accelerator"]
    compute: ComputeSpec
    memory: MemorySpec
    scale_up: LinkSpec
    scale_out: LinkSpec
    power: PowerSpec
    cost: CostSpec | None = None
    efficiency: EfficiencySpec = Field(default_factory=EfficiencySpec)
    notes: str | None = None
