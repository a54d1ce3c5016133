"""How fast is the vectorized cost model? Prints operator evaluations per second.

Usage: python benchmarks/bench_cost_model.py

Three figures:
1. roofline only: cost a prebuilt operator table (ops x scenarios) on a device;
2. graph + roofline: build the step graph for many batch shapes at once and cost it;
3. the serving simulator's path: ``StepTimeModel.step_time_s`` calls per second.
An "operator evaluation" is one (operator, scenario) cell costed.
"""

from __future__ import annotations

import time

import numpy as np

from infersim.hardware import get_device
from infersim.models import get_model
from infersim.perf.graph import build_step_graph
from infersim.perf.parallel import Parallelism, Precision
from infersim.perf.roofline import cost_ops
from infersim.perf.shape import StepShape
from infersim.perf.step_time import StepTimeModel


def best_of(fn, repeat=5):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    model, device = get_model("llama-3.1-70b"), get_device("h100-sxm")
    par, prec = Parallelism(tp=8), Precision(weight="fp8")
    rng = np.random.default_rng(0)
    for n in (1_000, 100_000):
        shape = StepShape.uniform(model, prefill_seqs=rng.integers(0, 4, n), chunk=rng.integers(1, 2048, n),
                                  past=rng.integers(0, 4096, n), decode_seqs=rng.integers(0, 256, n),
                                  decode_context=rng.integers(1, 8192, n))
        table = build_step_graph(model, par, prec, shape)
        cells = len(table.names) * n
        t_cost = best_of(lambda: cost_ops(table, device))
        t_all = best_of(lambda: cost_ops(build_step_graph(model, par, prec, shape), device))
        print(f"{n:>7} scenarios x {len(table.names)} ops: roofline {cells / t_cost / 1e6:6.1f} M op-evals/s "
              f"({t_cost * 1e3:.1f} ms); graph+roofline {cells / t_all / 1e6:6.1f} M op-evals/s "
              f"({n / t_all / 1e3:.0f} k steps/s)")
    fast = StepTimeModel(model, device, par, prec)
    loads = fast.loads_for([512], [1024], rng.integers(1, 8192, 64))
    calls = 200_000
    t = best_of(lambda: [fast.step_time_s(512, 1, 64, loads) for _ in range(calls)], repeat=3)
    print(f"StepTimeModel.step_time_s: {calls / t / 1e3:.0f} k calls/s ({t / calls * 1e6:.2f} us per step)")
    t_init = best_of(lambda: StepTimeModel(model, device, par, prec), repeat=3)
    print(f"StepTimeModel start-up: {t_init * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
