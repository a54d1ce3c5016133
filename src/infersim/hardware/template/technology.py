"""The technology table: per-node, per-component and per-memory constants, each sourced in the YAML."""

from __future__ import annotations

import functools
from importlib import resources

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ...errors import ConfigError

_ORIGIN = "<builtin>/template/technology.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NodeConstants(_Strict):
    logic_mtr_per_mm2: float = Field(gt=0)
    sram_bitcell_um2: float = Field(gt=0)
    wafer_usd: float = Field(gt=0)
    defect_density_per_cm2: float = Field(ge=0)
    energy_scale: float = Field(gt=0)


class ComponentConstants(_Strict):
    per_core_overhead_mm2: float = Field(ge=0)
    per_lane_overhead_mm2: float = Field(ge=0)
    vector_lane_mm2: float = Field(ge=0)
    sram_mm2_per_bit: float = Field(gt=0)
    tensor_mac_mm2: float = Field(gt=0)
    tensor_mac_pj: float = Field(gt=0)
    vector_fma_pj: float = Field(gt=0)
    sram_pj_per_bit: float = Field(gt=0)
    static_w_per_mm2: float = Field(ge=0)


class MemoryTechnology(_Strict):
    """One unit of off-chip memory (an HBM stack, a GDDR device, an LPDDR package, a DDR sub-channel)."""

    unit: str = Field(min_length=3, description="what one unit (a template's 'stack') is")
    gbps_per_pin: float = Field(gt=0, description="data rate per pin, Gb/s")
    bus_bits: int = Field(gt=0, description="data pins of one unit")
    gib_per_stack: float = Field(gt=0)
    pj_per_bit: float = Field(gt=0)
    phy_mm2: float = Field(ge=0)
    controller_mm2: float = Field(ge=0)
    usd_per_gib: float = Field(gt=0)

    @property
    def gb_per_s_per_stack(self) -> float:
        """Peak bandwidth of one unit: pin rate x data pins / 8 (GB/s)."""
        return self.gbps_per_pin * self.bus_bits / 8.0


class Technology(_Strict):
    reference_node: str
    nodes: dict[str, NodeConstants]
    components: ComponentConstants
    memory: dict[str, MemoryTechnology]

    @property
    def reference(self) -> NodeConstants:
        return self.nodes[self.reference_node]


@functools.lru_cache(maxsize=1)
def technology() -> Technology:
    """The bundled technology table (validated once per process)."""
    text = resources.files(__package__).joinpath("data/technology.yaml").read_text()
    try:
        return Technology.model_validate(yaml.safe_load(text))
    except ValidationError as err:  # a packaging mistake, but say where
        raise ConfigError(_ORIGIN, ".".join(map(str, err.errors()[0]["loc"])), err.errors()[0]["msg"]) from None
