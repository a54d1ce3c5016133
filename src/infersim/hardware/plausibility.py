"""Physical plausibility of a device file, beyond what each field's type says.

A device figure far outside anything built is almost always a typo or a unit slip (GB/s
written as B/s, microseconds as seconds); accepted, it yields a plausible-looking wrong
answer (0.0% utilization, $0.00 per token) or overflows to inf inside the cost model. The
ranges are keyed by the unit suffix of the field name (the schema puts units in names), so
they hold for every section, including fields added later. Each range spans several orders
of magnitude around the devices that exist; the reason is beside it.
"""

from __future__ import annotations

import math
from typing import Any

from ..errors import ConfigError

#: (suffix of the field name, lowest, highest, reason); the first matching suffix applies
RANGES: tuple[tuple[str, float, float, str], ...] = (
    # a 1 GFLOP/s microcontroller up to 1 EFLOP/s, 8x Cerebras WSE-3's 125 PFLOP/s sparse FP16
    # (cerebras.ai/product-chip, 2024)
    ("tflops", 1e-3, 1e6, "peaks from 1 GFLOP/s to 1 EFLOP/s per device"),
    # 1 MB/s up to 100 PB/s, ~5x WSE-3's 21 PB/s on-chip SRAM bandwidth (cerebras.ai, 2024)
    ("_gb_per_s", 1e-3, 1e8, "bandwidths from 1 MB/s to 100 PB/s"),
    # 1 MB up to 10 PB (the largest shared-memory systems hold tens of TB)
    ("_gb", 1e-3, 1e7, "capacities from 1 MB to 10 PB"),
    ("_gib", 1e-3, 1e7, "capacities from 1 MB to 10 PB"),
    # on-chip SRAM: 0 up to 1 TB (WSE-3 has 44 GB, cerebras.ai 2024)
    ("_mb", 0.0, 1e6, "on-chip memory up to 1 TB"),
    ("_mib", 0.0, 1e6, "on-chip memory up to 1 TB"),
    # half-points and cache sizes in bytes: up to 1 EB
    ("_bytes", 0.0, 1e18, "sizes up to 1 EB"),
    # FLOP half-points: up to 1e21 FLOPs (1000 s at 1 EFLOP/s)
    ("_flops", 0.0, 1e21, "up to 1e21 FLOPs"),
    # a latency or per-kernel overhead of more than one second is a unit slip (s written as us)
    ("_us", 0.0, 1e6, "latencies and overheads up to 1 s"),
    ("latency_s", 0.0, 1.0, "latencies up to 1 s"),
    # 0.1 W (an edge NPU) up to 100 kW (a WSE-3 system draws ~23 kW, cerebras.ai 2024)
    ("_w", 0.0, 1e5, "powers up to 100 kW per device"),
    # $0.0001 up to $10,000 per device-hour (an H100 rents for ~$2-$10/h)
    ("usd_per_hour", 1e-4, 1e4, "prices from $0.0001 to $10,000 per hour"),
    # clocks of 1 MHz to 100 GHz
    ("clock_ghz", 1e-3, 100.0, "clocks from 1 MHz to 100 GHz"),
)


def _rule(key: str) -> tuple[float, float, str] | None:
    for suffix, lo, hi, why in RANGES:
        if key.endswith(suffix):
            return lo, hi, why
    return None


def _walk(value: Any, where: str, rule, origin: object) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            key = str(k)
            _walk(v, f"{where}.{key}", _rule(key) or rule, origin)
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _walk(v, f"{where}.{i}", rule, origin)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise ConfigError(origin, where, f"must be a finite number, got {value}")
        if rule is not None:
            lo, hi, why = rule
            if not lo <= value <= hi:
                raise ConfigError(origin, where, f"{value:g} is outside [{lo:g}, {hi:g}] ({why}); "
                                                 "check the unit")


def check_plausible(spec, origin: object) -> None:
    """ConfigError naming the first implausible figure of a validated :class:`HardwareSpec`."""
    data = spec.model_dump(mode="python")
    for key, section in data.items():
        _walk(section, key, _rule(key), origin)
    power = data.get("power") or {}
    tdp, idle = power.get("tdp_w"), power.get("idle_w")
    if tdp is not None and idle is not None and idle > tdp:
        raise ConfigError(origin, "power.idle_w", f"idle power {idle:g} W exceeds the TDP of {tdp:g} W; "
                                                  "a device cannot draw more idle than at full load")
