"""Template -> device: peaks, bandwidths, die area, power and manufacturing cost.

Every formula is a pure function with its source; :func:`derive` composes them and returns the
catalog :class:`~infersim.hardware.schema.HardwareSpec` (so a template works wherever a catalog
device does) together with a :class:`ChipReport` of area, power and cost.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from ...errors import ConfigError
from ..schema import HardwareSpec
from .spec import AcceleratorTemplate
from .technology import NodeConstants, Technology, technology

WAFER_DIAMETER_MM = 300.0
#: negative-binomial clustering parameter (Stapper's model; alpha = 3 is the usual choice for logic,
#: e.g. Cunningham, "The use and evaluation of yield models in integrated circuit manufacturing", 1990)
YIELD_CLUSTERING_ALPHA = 3.0
GIB = 2**30
#: the lithography field: 26 x 33 mm = 858 mm2 (ASML NXT/NXE scanners); a larger monolithic die cannot be printed
RETICLE_LIMIT_MM2 = 26.0 * 33.0


def peak_flops_per_s(macs_per_cycle: float, clock_hz: float) -> float:
    """Peak FLOP/s = 2 FLOP per MAC x MACs per cycle x clock (a MAC is a multiply and an add)."""
    return 2.0 * macs_per_cycle * clock_hz


def dies_per_wafer(die_area_mm2: float, wafer_diameter_mm: float = WAFER_DIAMETER_MM) -> float:
    """Gross dies per wafer: ``pi (d/2)^2 / A - pi d / sqrt(2 A)``.

    The wafer area over the die area, less the partial dies along the edge (the standard
    first-order formula, e.g. de Vries, "Investigating the yield of wafer-scale ICs", and the
    dies-per-wafer estimators of the foundries' calculators).
    """
    if die_area_mm2 <= 0:
        raise ValueError("die area must be > 0")
    radius = wafer_diameter_mm / 2.0
    return max(0.0, math.pi * radius**2 / die_area_mm2 - math.pi * wafer_diameter_mm / math.sqrt(2.0 * die_area_mm2))


def die_yield(die_area_mm2: float, defect_density_per_cm2: float, alpha: float = YIELD_CLUSTERING_ALPHA) -> float:
    """Negative-binomial yield ``(1 + A D0 / alpha)^-alpha`` (Stapper 1976), A in cm^2."""
    return (1.0 + die_area_mm2 / 100.0 * defect_density_per_cm2 / alpha) ** (-alpha)


def systolic_fold_cycles(rows: int, cols: int, temporal: int) -> int:
    """Cycles of one fold of a systolic array: ``2 R + C + T - 2``.

    SCALE-Sim (Samajdar et al., "A systematic methodology for characterizing scalability of DNN
    accelerators using SCALE-Sim", ISPASS 2020): filling the array takes R (operand skew) + C
    (partial sums) cycles, streaming T rows of the temporal operand takes T, and the last result
    drains after R more, less the 2 overlapping cycles.
    """
    return 2 * rows + cols + temporal - 2


def gemm_cycles_output_stationary(m: int, k: int, n: int, rows: int, cols: int) -> tuple[int, float]:
    """Cycles and utilization of an ``m x k @ k x n`` GEMM on one output-stationary R x C array.

    The ``m x n`` output is cut into ``ceil(m / R) * ceil(n / C)`` tiles; each accumulates over the
    depth ``k`` in one fold of :func:`systolic_fold_cycles` (T = k; SCALE-Sim's output-stationary
    dataflow). Utilization is the useful MACs over ``cycles * R * C``. The cost model charges template
    devices exactly this, spread over their arrays in waves (:func:`array_efficiency`).
    """
    tiles = math.ceil(m / rows) * math.ceil(n / cols)
    cycles = tiles * systolic_fold_cycles(rows, cols, k)
    return cycles, (m * k * n) / (cycles * rows * cols)


def fused_attention_footprint_bytes(rows: int, seq_len: int, head_dim: int, kv_tile: int,
                                    bytes_per_element: float) -> float:
    """On-chip bytes of one row-granularity fused-attention tile (FLAT, Kao et al., ASPLOS 2023).

    A tile of ``rows`` queries keeps its Q block and its output block (``rows x d`` each), its
    row of logits (``rows x N``) and a double-buffered K/V tile (``2 x kv_tile x d``): linear in
    the sequence length N, where the unfused kernel materializes the ``N x N`` logits.
    """
    return bytes_per_element * (2 * rows * head_dim + rows * seq_len + 2 * kv_tile * head_dim)


@dataclass(frozen=True)
class ChipReport:
    """What a template costs: area by component, power, and $ per good die plus memory."""

    name: str
    process_node: str
    area_mm2: dict[str, float]
    die_area_mm2: float
    dies_per_wafer: float
    yield_fraction: float
    die_usd: float
    memory_usd: float
    tdp_w: float
    idle_w: float
    pj_per_flop: dict[str, float]
    pj_per_dram_byte: float
    peak_tflops: dict[str, float]
    memory_gb_per_s: float
    memory_gib: float
    violations: tuple[str, ...]

    @property
    def total_usd(self) -> float:
        return self.die_usd + self.memory_usd

    def to_dict(self) -> dict:
        return {**asdict(self), "total_usd": self.total_usd}


def _node(tech: Technology, template: AcceleratorTemplate, origin: object) -> NodeConstants:
    try:
        return tech.nodes[template.process_node]
    except KeyError:
        raise ConfigError(origin, "template.process_node",
                          f"no technology constants for node '{template.process_node}'; "
                          f"known: {', '.join(sorted(tech.nodes))}") from None


def derive(template: AcceleratorTemplate, origin: object = "<template>") -> tuple[HardwareSpec, ChipReport]:
    """The catalog spec and the chip report of ``template`` (see the module docstring)."""
    tech = technology()
    node = _node(tech, template, origin)
    if template.memory.technology not in tech.memory:
        raise ConfigError(origin, "template.memory.technology",
                          f"unknown memory technology '{template.memory.technology}'; "
                          f"known: {', '.join(sorted(tech.memory))}")
    mem = tech.memory[template.memory.technology]
    comp = tech.components
    ref = tech.reference
    logic_scale = ref.logic_mtr_per_mm2 / node.logic_mtr_per_mm2
    sram_scale = node.sram_bitcell_um2 / ref.sram_bitcell_um2
    cores = template.cores
    enabled = cores.enabled or cores.count
    clock_hz = template.clock_ghz * 1e9
    cells = cores.lanes * cores.array_rows * cores.array_cols  # fp16 MACs per cycle per core

    peaks = {dtype: peak_flops_per_s(enabled * cells * rate, clock_hz) for dtype, rate in cores.dtype_rate.items()}
    if "fp32" not in peaks and cores.vector_lanes:
        peaks["fp32"] = peak_flops_per_s(enabled * cores.vector_lanes, clock_hz)

    stacks = template.memory.enabled or template.memory.stacks
    bandwidth_gb_per_s = stacks * mem.gb_per_s_per_stack * template.memory.speed_fraction
    gib = stacks * (template.memory.gib_per_stack or mem.gib_per_stack)

    sram_bits = cores.count * (cores.register_file_kib + cores.local_sram_kib) * 1024 * 8 \
        + template.global_buffer_mib * GIB / 1024 * 8
    area = {
        "matrix units": cores.count * cells * comp.tensor_mac_mm2 * logic_scale,
        "vector lanes": cores.count * cores.vector_lanes * comp.vector_lane_mm2 * logic_scale,
        "core overhead": cores.count * (comp.per_core_overhead_mm2 + cores.lanes * comp.per_lane_overhead_mm2)
        * logic_scale,
        "sram": sram_bits * comp.sram_mm2_per_bit * sram_scale,
        "memory phy+ctrl": template.memory.stacks * (mem.phy_mm2 + mem.controller_mm2 * logic_scale),
        "io": template.io_area_mm2,
    }
    die_mm2 = sum(area.values())
    gross = dies_per_wafer(die_mm2)
    good = die_yield(die_mm2, node.defect_density_per_cm2)
    die_usd = node.wafer_usd / (gross * good) if gross >= 1 else math.inf
    memory_usd = gib * mem.usd_per_gib

    mac_pj = comp.tensor_mac_pj * node.energy_scale
    tensor_w = enabled * cells * clock_hz * mac_pj * 1e-12
    vector_w = enabled * cores.vector_lanes * clock_hz * comp.vector_fma_pj * node.energy_scale * 1e-12
    dram_w = bandwidth_gb_per_s * 1e9 * 8 * mem.pj_per_bit * 1e-12
    idle_w = comp.static_w_per_mm2 * die_mm2  # static power: leakage, clocks, uncore
    tdp_w = idle_w + max(tensor_w, vector_w) + dram_w
    # a MAC in a dtype at `rate` MACs per cell-cycle spends the cell's energy over `rate` MACs
    pj_per_flop = {dtype: mac_pj / rate / 2.0 for dtype, rate in cores.dtype_rate.items()}

    violations = []
    if die_mm2 > RETICLE_LIMIT_MM2:
        violations.append(f"die area {die_mm2:,.0f} mm2 > the {RETICLE_LIMIT_MM2:.0f} mm2 reticle (26 x 33 mm)")
    budget = template.budget
    if budget.max_area_mm2 is not None and die_mm2 > budget.max_area_mm2:
        violations.append(f"die area {die_mm2:,.0f} mm2 > budget {budget.max_area_mm2:,.0f} mm2")
    if budget.max_tdp_w is not None and tdp_w > budget.max_tdp_w:
        violations.append(f"TDP {tdp_w:,.0f} W > budget {budget.max_tdp_w:,.0f} W")
    if budget.max_usd is not None and die_usd + memory_usd > budget.max_usd:
        violations.append(f"cost ${die_usd + memory_usd:,.0f} > budget ${budget.max_usd:,.0f}")

    report = ChipReport(
        name=template.name, process_node=template.process_node, area_mm2=area, die_area_mm2=die_mm2,
        dies_per_wafer=gross, yield_fraction=good, die_usd=die_usd, memory_usd=memory_usd, tdp_w=tdp_w,
        idle_w=idle_w, pj_per_flop=pj_per_flop, pj_per_dram_byte=8 * mem.pj_per_bit,
        peak_tflops={k: v / 1e12 for k, v in peaks.items()}, memory_gb_per_s=bandwidth_gb_per_s,
        memory_gib=gib, violations=tuple(violations))
    return _hardware_spec(template, report, enabled), report


def array_efficiency(rows: int, cols: int) -> dict:
    """The efficiency section of a template device: GEMMs run on its R x C arrays, output-stationary.

    Each array computes an R x C output tile over the reduction depth k in ``2 R + C + k - 2`` cycles
    (:func:`systolic_fold_cycles` with T = k), i.e. at ``k / (k + 2 R + C - 2)`` of its peak; output
    tiles are spread over the arrays in waves, the last one partly idle (SCALE-Sim's fold model,
    Samajdar et al. ISPASS 2020). That is the cost model's padded-tile GEMM model with one candidate
    tile ``(R, C)``, one unit per array and ``gemm_k_half = 2 R + C - 2``; a busy array runs at its
    full peak (``compute_max_fraction`` 1, no generic ramp). The off-chip traffic of tiles the SRAM
    cannot hold and FLAT's unfused attention are charged from the device's ``array`` section
    (:mod:`infersim.perf.array_mapping`); memory ramps keep the generic curves (no measured template
    device exists to fit them).
    """
    return {"gemm_tiles": [[rows, cols]], "gemm_k_half": float(2 * rows + cols - 2),
            "compute_max_fraction": 1.0, "compute_half_flops": 0.0,
            # batched / grouped GEMMs: each problem's rows fill their own tiles on an array
            "grouped_gemm_expert_tiles": True,
            "source": f"systolic fold model of {rows} x {cols} arrays (SCALE-Sim, Samajdar et al. 2020) with "
                      "SRAM-limited tiling and FLAT attention (array section); "
                      "memory ramps: infersim generic defaults (uncalibrated)"}


def _hardware_spec(t: AcceleratorTemplate, r: ChipReport, enabled_cores: int) -> HardwareSpec:
    """The catalog form of a derived chip (sources say which formula gave each section)."""
    derived = f"derived from accelerator template '{t.name}' ({t.process_node}); {t.source}"
    sram_mb = (enabled_cores * (t.cores.register_file_kib + t.cores.local_sram_kib) * 1024
               + t.global_buffer_mib * 2**20) / 1e6
    link_gb = max(t.scale_up.links, 1) * t.scale_up.gb_per_s_per_link
    return HardwareSpec.model_validate({
        "name": t.name,
        "display_name": t.display_name or t.name,
        "vendor": "template",
        "category": "accelerator",
        "compute": {"dense_tflops": r.peak_tflops, "compute_units": enabled_cores * t.cores.lanes,
                    "clock_ghz": t.clock_ghz,
                    "source": derived + ": peak = 2 x cores x lanes x rows x cols x dtype rate x clock"},
        "memory": {"capacity_gb": r.memory_gib * GIB / 1e9, "bandwidth_gb_per_s": r.memory_gb_per_s,
                   "sram_mb": sram_mb,
                   "source": derived + ": stacks x per-stack bandwidth and capacity (technology table)"},
        "scale_up": {"name": t.scale_up.name, "bandwidth_gb_per_s": link_gb, "latency_us": t.scale_up.latency_us,
                     "domain_size": t.scale_up.domain_size, "topology": "switch",
                     "source": derived + ": links x per-link bandwidth"},
        "scale_out": {"name": "InfiniBand NDR 400 (assumed)", "bandwidth_gb_per_s": 50.0, "latency_us": 5.0,
                      "domain_size": 1024, "topology": "network",
                      "source": "not part of the template; one 400 Gb/s NIC per chip as on the catalog GPUs"},
        "power": {"tdp_w": r.tdp_w, "idle_w": r.idle_w,
                  "source": derived + ": static W per mm2 + full-load MAC energy + DRAM pJ/bit (technology table)"},
        "efficiency": array_efficiency(t.cores.array_rows, t.cores.array_cols),
        "array": {"rows": t.cores.array_rows, "cols": t.cores.array_cols, "cores": enabled_cores,
                  "lanes": t.cores.lanes, "local_sram_kib": t.cores.local_sram_kib,
                  "global_buffer_mib": t.global_buffer_mib,
                  "source": derived + ": cores, arrays and SRAM of the template"},
        "cost": ({"usd_per_hour": t.usd_per_hour, "source": "rental price stated in the template"}
                 if t.usd_per_hour else None),
    })
