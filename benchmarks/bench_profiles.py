"""What the shipped profiles cost and change: load time, and estimate calibrated vs spec sheet.

    python benchmarks/bench_profiles.py

Prints (1) the cold cost of loading every catalog device with its profile against the spec
sheet alone, in this process (first load, parsing and validation included), and (2) for the
issue-17 reference case, Llama-3.1-70B on 8 x H100 SXM, batch 1, 1,024 in / 128 out, the
TTFT / TPOT of `infersim estimate` with the shipped profile and with `--efficiency spec`, and
the wall time of one estimate each.
"""

from __future__ import annotations

import time

from infersim.hardware import builtin_names, get_device
from infersim.hardware.catalog import _load_builtin, load_profile
from infersim.models import get_model
from infersim.perf.estimate import estimate
from infersim.perf.parallel import Parallelism, Precision


def _cold_load_s(efficiency: str) -> float:
    _load_builtin.cache_clear()
    load_profile.cache_clear()
    start = time.perf_counter()
    for name in builtin_names():
        get_device(name, efficiency=efficiency)
    return time.perf_counter() - start


def main() -> None:
    names = builtin_names()
    spec_s = min(_cold_load_s("spec") for _ in range(3))
    cal_s = min(_cold_load_s("calibrated") for _ in range(3))
    print(f"cold load of {len(names)} devices: spec sheet {1e3 * spec_s:.1f} ms, with profiles {1e3 * cal_s:.1f} ms "
          f"({cal_s / spec_s:.2f}x); per device with profile {1e3 * cal_s / len(names):.2f} ms")
    model = get_model("llama-3.1-70b")
    estimate(model, get_device("h100-sxm"), Parallelism(tp=8), Precision("bf16", "bf16", "bf16"), batch=1,
             input_tokens=1024, output_tokens=128)  # warm-up (first-call imports and caches)
    for efficiency in ("calibrated", "spec"):
        device = get_device("h100-sxm", efficiency=efficiency)
        start = time.perf_counter()
        est = estimate(model, device, Parallelism(tp=8), Precision("bf16", "bf16", "bf16"), batch=1,
                       input_tokens=1024, output_tokens=128)
        wall = time.perf_counter() - start
        print(f"llama-3.1-70b h100-sxm tp8 batch 1 1024/128, {efficiency:10}: TTFT {1e3 * est.ttft_s:6.2f} ms, "
              f"TPOT {1e3 * est.tpot_s:6.2f} ms, estimate {1e3 * wall:6.1f} ms  [{device.basis}]")


if __name__ == "__main__":
    main()
