"""The hot-path view of a device: SI units, plain floats, frozen."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..dtypes import COMPUTE_FALLBACK
from ..errors import InfersimError
from .schema import EfficiencySpec, HardwareSpec

TERA = 1e12
GIGA = 1e9
MICRO = 1e-6


@dataclass(frozen=True)
class Link:
    name: str
    bandwidth_bytes_per_s: float
    latency_s: float
    domain_size: int
    topology: str


@dataclass(frozen=True)
class Device:
    """A device in SI units; built from a :class:`HardwareSpec` by :func:`device_from_spec`."""

    name: str
    display_name: str
    category: str
    dense_flops_per_s: dict[str, float]
    sparse_flops_per_s: dict[str, float]
    compute_units: int
    memory_bytes: float
    memory_bandwidth_bytes_per_s: float
    sram_bytes: float
    scale_up: Link
    scale_out: Link
    tdp_w: float
    idle_w: float
    usd_per_hour: float | None
    efficiency: EfficiencySpec
    spec: HardwareSpec = field(repr=False, compare=False)
    #: what the efficiency numbers rest on: "calibrated on <data> <version> (N rows, DATE)",
    #: "transferred from <device>", "spec sheet only" or "device file <path>"
    basis: str = "spec sheet only"

    def peak_flops(self, dtype: str, sparse: bool = False) -> float:
        """Peak FLOP/s for a matmul in ``dtype``.

        A dtype the part lacks runs in the next wider dtype it has (e.g. fp8 on an
        A100 runs as bf16/fp16 after up-conversion, which is what frameworks do).
        """
        table = self.sparse_flops_per_s if sparse and self.sparse_flops_per_s else self.dense_flops_per_s
        if dtype not in COMPUTE_FALLBACK:
            raise InfersimError(f"unknown compute dtype '{dtype}'")
        current: str | None = dtype
        while current is not None:
            if current in table:
                return table[current]
            current = COMPUTE_FALLBACK[current]
        raise InfersimError(f"device '{self.name}' has no peak for dtype '{dtype}' or any wider type")

    def supports(self, dtype: str) -> bool:
        return dtype in self.dense_flops_per_s


def device_from_spec(spec: HardwareSpec, basis: str = "spec sheet only") -> Device:
    def link(s) -> Link:
        return Link(s.name, s.bandwidth_gb_per_s * GIGA, s.latency_us * MICRO, s.domain_size, s.topology)

    return Device(
        name=spec.name,
        display_name=spec.display_name,
        category=spec.category,
        dense_flops_per_s={k: v * TERA for k, v in spec.compute.dense_tflops.items()},
        sparse_flops_per_s={k: v * TERA for k, v in spec.compute.sparse_tflops.items()},
        compute_units=spec.compute.compute_units or 1,
        memory_bytes=spec.memory.capacity_bytes,
        memory_bandwidth_bytes_per_s=spec.memory.bandwidth_gb_per_s * GIGA,
        sram_bytes=spec.memory.sram_mb * 1e6,
        scale_up=link(spec.scale_up),
        scale_out=link(spec.scale_out),
        tdp_w=spec.power.tdp_w,
        idle_w=spec.power.idle_w if spec.power.idle_w is not None else 0.3 * spec.power.tdp_w,
        usd_per_hour=spec.cost.usd_per_hour if spec.cost else None,
        efficiency=spec.efficiency,
        spec=spec,
        basis=basis,
    )
