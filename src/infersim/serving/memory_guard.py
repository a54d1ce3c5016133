"""Refuse, before it starts, a simulation that cannot fit in this machine's memory.

A run that exhausts memory ends in a MemoryError traceback or, more often on Linux, in the
kernel's out-of-memory killer with no message at all. The per-request figures below are the
slopes printed by ``benchmarks/bench_memory.py`` (peak resident memory between -n 20,000 and
-n 80,000, outputs written; 2-core development machine, 2026-12-05); the check uses them with
a 1.5x margin against the memory the kernel reports as available. A streamed ``simulate``
(:mod:`infersim.serving.streaming`) peaked at 0.91 GB for 10,000,000 requests (91 bytes each,
the interpreter included).
"""

from __future__ import annotations

from ..errors import ConfigError

#: peak bytes per simulated request (benchmarks/bench_memory.py): simulate 2,999; pipeline 5,717
SIMULATE_BYTES_PER_REQUEST = 3_000
PIPELINE_BYTES_PER_REQUEST = 5_800
#: a streamed simulate (infersim.serving.streaming) keeps the workload's arrays and the requests in flight
STREAM_BYTES_PER_REQUEST = 200
MARGIN = 1.5


def available_bytes() -> int | None:
    """MemAvailable from /proc/meminfo (Linux), else None (no check)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def check_fits_in_memory(requests: int, bytes_per_request: int, origin: object,
                         available: int | None = None) -> None:
    """ConfigError naming ``workload.requests`` when ``requests`` would need more memory than is available."""
    available = available_bytes() if available is None else available
    need = requests * bytes_per_request * MARGIN
    if available is not None and need > available:
        most = int(available / (bytes_per_request * MARGIN))
        raise ConfigError(origin, "workload.requests",
                          f"{requests:,} requests need about {need / 1e9:.1f} GB of memory (~{bytes_per_request:,} "
                          f"bytes each, with margin) but {available / 1e9:.1f} GB is available; run at most "
                          f"~{most:,} requests (-n)")
