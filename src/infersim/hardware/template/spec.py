"""The accelerator template file format: a chip described by its architecture, not its spec sheet.

A template names a process node, a clock, cores made of matrix units (systolic arrays), vector lanes
and SRAM, a global buffer, off-chip memory stacks and links. :mod:`.derive` turns it into a catalog
device (peaks, bandwidths, capacity) plus a chip report (area, power, cost).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ...dtypes import DTYPE_BYTES


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CoreSpec(_Strict):
    """One core (an SM, a TensorCore, a CU): ``lanes`` sub-cores, each with one matrix unit."""

    count: int = Field(gt=0, description="cores on the die")
    enabled: int | None = Field(default=None, gt=0, description="cores enabled in the product (binning); default all")
    lanes: int = Field(default=1, gt=0, description="sub-cores per core, each with one matrix unit")
    array_rows: int = Field(gt=0, description="matrix unit rows (systolic array height)")
    array_cols: int = Field(gt=0, description="matrix unit columns (systolic array width)")
    vector_lanes: int = Field(default=0, ge=0, description="fp32 FMA lanes per core")
    register_file_kib: float = Field(default=0.0, ge=0, description="register file per core")
    local_sram_kib: float = Field(default=0.0, ge=0, description="shared memory / L1 / local buffer per core")
    dtype_rate: dict[str, float] = Field(
        default_factory=lambda: {"bf16": 1.0, "fp16": 1.0},
        description="matrix-unit MACs per cycle per array cell, by dtype (fp16 = 1)")

    @model_validator(mode="after")
    def _check(self) -> "CoreSpec":
        if self.enabled is not None and self.enabled > self.count:
            raise ValueError(f"enabled ({self.enabled}) cannot exceed count ({self.count})")
        for key, rate in self.dtype_rate.items():
            if key not in DTYPE_BYTES:
                raise ValueError(f"unknown dtype '{key}' in dtype_rate; expected one of {', '.join(DTYPE_BYTES)}")
            if not 0 < rate <= 64:
                raise ValueError(f"dtype_rate for '{key}' must be in (0, 64], got {rate}")
        if not self.dtype_rate:
            raise ValueError("dtype_rate needs at least one dtype")
        return self


class MemoryStacks(_Strict):
    technology: str = Field(description="off-chip memory technology (hbm2e, hbm3, hbm3e, gddr7, lpddr5x, ddr5)")
    stacks: int = Field(gt=0,
                        description="units on the die: HBM stacks, GDDR devices, LPDDR packages, DDR sub-channels")
    enabled: int | None = Field(default=None, gt=0, description="stacks populated in the product; default all")
    speed_fraction: float = Field(default=1.0, gt=0, le=1.0, description="pin rate as a fraction of the JEDEC top rate")
    gib_per_stack: float | None = Field(default=None, gt=0, description="overrides the technology's capacity")

    @model_validator(mode="after")
    def _check(self) -> "MemoryStacks":
        if self.enabled is not None and self.enabled > self.stacks:
            raise ValueError(f"enabled ({self.enabled}) cannot exceed stacks ({self.stacks})")
        return self


class LinkTemplate(_Strict):
    name: str = "scale-up link"
    links: int = Field(default=0, ge=0)
    gb_per_s_per_link: float = Field(default=25.0, gt=0, description="per direction")
    latency_us: float = Field(default=2.0, ge=0)
    domain_size: int = Field(default=8, ge=1)


class Budget(_Strict):
    """Design limits a derived chip must respect (checked before any evaluation)."""

    max_area_mm2: float | None = Field(default=None, gt=0)
    max_tdp_w: float | None = Field(default=None, gt=0)
    max_usd: float | None = Field(default=None, gt=0, description="die + memory cost")


class AcceleratorTemplate(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    display_name: str | None = None
    process_node: str = Field(description="a node of the technology table (n12, n7, n5, n4, n3)")
    clock_ghz: float = Field(gt=0, le=10)
    cores: CoreSpec
    global_buffer_mib: float = Field(default=0.0, ge=0, description="L2 / global buffer on the die")
    memory: MemoryStacks
    scale_up: LinkTemplate = Field(default_factory=LinkTemplate)
    io_area_mm2: float = Field(default=0.0, ge=0, description="area of PCIe, link PHYs and other I/O, as stated")
    io_area_source: str | None = None
    usd_per_hour: float | None = Field(default=None, gt=0, description="rental price, if one is assumed")
    budget: Budget = Field(default_factory=Budget)
    source: str = Field(min_length=3, description="where the architecture figures come from")
