"""The hardware file format (YAML, one device per file), validated by pydantic.

Units are in the field names: ``tflops`` (10^12 FLOP/s), ``gb`` (10^9 bytes),
``gib`` (2^30 bytes), ``mib`` (2^20 bytes), ``gb_per_s`` (10^9 bytes/s, one direction),
``us`` (microseconds), ``w`` (watts).
Every section has a required ``source`` naming the spec sheet, paper or
measurement its numbers come from; the loader rejects a section without one.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from ..dtypes import DTYPE_BYTES
from .efficiency import COLLECTIVE_KINDS, MLA_OVERRIDABLE, DecodeKernel, EfficiencySpec
from .sections import Source, _Strict

__all__ = ["COLLECTIVE_KINDS", "MLA_OVERRIDABLE", "ArraySpec", "ComputeSpec", "CostSpec", "DecodeKernel",
           "EfficiencySpec", "HardwareSpec", "LinkSpec", "MemorySpec", "PowerSpec"]


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


#: bytes per unit of the memory-capacity fields (exactly one is given)
CAPACITY_UNITS: dict[str, float] = {"capacity_mib": 2.0 ** 20, "capacity_gib": 2.0 ** 30, "capacity_gb": 1e9}


class MemorySpec(_Strict):
    """Device memory (HBM / GDDR / DDR) and on-chip SRAM.

    The capacity is given in the unit its source states, exactly one of: ``capacity_mib``
    (what the driver reports: ``nvidia-smi`` / ``rocm-smi`` / ``hl-smi`` print MiB),
    ``capacity_gib`` (a datasheet that writes GiB), ``capacity_gb`` (10^9 bytes). Vendors'
    "80 GB" of HBM are binary: the driver reports 81,920 MiB for an A100 80GB.
    """

    capacity_mib: float | None = Field(default=None, gt=0, description="usable memory, MiB (2^20 bytes)")
    capacity_gib: float | None = Field(default=None, gt=0, description="usable memory, GiB (2^30 bytes)")
    capacity_gb: float | None = Field(default=None, gt=0, description="usable memory, GB (10^9 bytes)")
    bandwidth_gb_per_s: float = Field(gt=0)
    sram_mb: float = Field(default=0.0, ge=0, description="on-chip SRAM (L2 + shared/L1, or VMEM)")
    source: Source = Field(min_length=3)

    @model_validator(mode="after")
    def _one_capacity(self) -> MemorySpec:
        given = [name for name in CAPACITY_UNITS if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError("give the capacity in exactly one unit: capacity_mib (driver-reported MiB), "
                             "capacity_gib (datasheet GiB) or capacity_gb (10^9 bytes)"
                             + (f"; got {', '.join(given)}" if given else ""))
        return self

    @property
    def capacity_bytes(self) -> float:
        """The capacity in bytes, from whichever unit the file gives."""
        for name, unit in CAPACITY_UNITS.items():
            value = getattr(self, name)
            if value is not None:
                return value * unit
        raise AssertionError("validated: one capacity field is set")  # pragma: no cover


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


class ArraySpec(_Strict):
    """The systolic-array mapping of an accelerator-template device (set by the template's derivation).

    When present, the cost model charges GEMMs and attention from the arrays and the SRAM
    (:mod:`infersim.perf.array_mapping`): the off-chip re-reads of GEMM operands that the on-chip
    SRAM cannot hold, and FLAT's unfused fallback for attention whose fused footprint does not fit
    a core's local SRAM. Catalog devices have none and keep their calibrated model.
    """

    rows: int = Field(gt=0, description="systolic array rows")
    cols: int = Field(gt=0, description="systolic array columns")
    cores: int = Field(gt=0, description="enabled cores")
    lanes: int = Field(default=1, gt=0, description="arrays per core")
    local_sram_kib: float = Field(ge=0, description="local SRAM per core (register file excluded)")
    global_buffer_mib: float = Field(default=0.0, ge=0, description="global buffer / L2 on the die")
    source: Source = Field(min_length=3)

    @property
    def local_sram_bytes(self) -> float:
        return self.local_sram_kib * 1024.0

    @property
    def onchip_sram_bytes(self) -> float:
        """Every byte of SRAM that can hold GEMM operand blocks: the global buffer and all local SRAM."""
        return self.global_buffer_mib * 2.0**20 + self.cores * self.local_sram_bytes


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
    array: ArraySpec | None = Field(default=None, description="systolic-array mapping (accelerator templates)")
    notes: str | None = None
