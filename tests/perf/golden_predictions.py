"""Predictions over a grid of devices x efficiency profiles x models x shapes, recorded once and
compared bit for bit (``tests/perf/test_golden_predictions.py``).

A refactor of the efficiency model (its layout, its accessors, the calibration stages) must not
change one bit of what ``estimate``, the serving step-time model or the fidelity predictions
return. This module computes those numbers; ``python tests/perf/golden_predictions.py --write``
recorded ``tests/data/golden/predictions.npz`` with the code before the refactor (commit
bbdc9e9), and the test recomputes them with the current code. The ``calibration/*`` entries were
re-recorded when the GEMM stage gained its activation-quantization passes and refitted per-dtype
tile restrictions (a change of the calibration, not a refactor); the predictions were not.

Inputs, all in ``tests/data/golden/`` so the grid does not move with an installed data package:
``kernels.parquet`` (measured rows of six GPUs, a hash-chosen slice of aiconfigurator-core 0.12.0),
``*-calibrated-flat.yaml`` (device files written by ``infersim calibrate`` before the refactor,
in the flat efficiency layout) and ``all-terms-flat.yaml`` (a device whose efficiency sets every
optional term, so every branch of the roofline runs).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from infersim.hardware import get_device, load_hardware_file
from infersim.hardware.device import Device
from infersim.models import get_model
from infersim.perf.estimate import estimate, step_costs
from infersim.perf.parallel import Parallelism, Precision
from infersim.perf.shape import StepShape
from infersim.perf.step_time import StepTimeModel

DATA = Path(__file__).resolve().parent.parent / "data" / "golden"
KERNEL_DEVICES = ("h100-sxm", "h200", "b200", "gb200", "a100-sxm-80gb", "l40s")
PROFILES = ("l40s-calibrated-flat.yaml", "h100-sxm-calibrated-flat.yaml", "all-terms-flat.yaml")
SHIPPED = ("h100-sxm", "l40s", "a100-sxm-80gb", "b200", "mi300x", "tpu-v5e", "cpu-xeon-8480", "h100-pcie")
#: (model, parallelism, precision)
MODELS = (
    ("llama-3.1-8b", Parallelism(), Precision()),
    ("llama-3.1-70b", Parallelism(tp=8), Precision(weight="fp8", kv_cache="fp8")),
    ("mixtral-8x7b", Parallelism(tp=2, ep=2), Precision(weight="fp8")),
    ("deepseek-v3", Parallelism(tp=8, ep=8), Precision(weight="fp8", kv_cache="fp8")),
    ("gemma-2-9b", Parallelism(), Precision(kv_cache="fp8")),
    ("qwen3-30b-a3b", Parallelism(tp=2, ep=2), Precision(weight="fp4")),
)


def devices() -> dict[str, Device]:
    out = {name: get_device(name, efficiency="spec") for name in SHIPPED}
    for file in PROFILES:
        dev = load_hardware_file(DATA / file)
        out[file] = dev
    return out


def _shape(model) -> StepShape:
    rng = np.random.default_rng(3)
    n = 24
    return StepShape.uniform(model, prefill_seqs=rng.integers(0, 3, n), chunk=rng.integers(1, 4096, n),
                             past=rng.integers(0, 4096, n), decode_seqs=rng.integers(0, 300, n),
                             decode_context=rng.integers(1, 32768, n))


def compute() -> dict[str, np.ndarray]:
    """Every recorded number, keyed by what it is."""
    from infersim.fidelity.kernels import build_kernels
    from infersim.fidelity.measurement_files import load_measurements

    out: dict[str, np.ndarray] = {}
    devs = devices()
    for dname, dev in devs.items():
        for mname, par, prec in MODELS:
            model = get_model(mname)
            table, costs = step_costs(model, dev, par, prec, _shape(model))
            key = f"step/{dname}/{mname}"
            out[key + "/time"] = costs.time_s
            out[key + "/parts"] = np.stack([costs.compute_s, costs.memory_s, costs.network_s, costs.overhead_s])
            est = estimate(model, dev, par, prec, batch=8, input_tokens=1500, output_tokens=200)
            out[f"estimate/{dname}/{mname}"] = np.array(
                [est.prefill_s, est.decode_step_s, est.ttft_s, est.tpot_s, est.e2e_s, est.output_tokens_per_s])
            fast = StepTimeModel(model, dev, par, prec)
            loads = fast.loads_for([512, 37], [1024, 0], np.arange(1, 8192, 131))
            out[f"steptime/{dname}/{mname}"] = np.array(
                [fast.step_time_s(549, 2, 63, loads), fast.step_time_s(0, 0, 63, loads),
                 fast.step_time_s(4096, 1, 0, fast.loads_for([4096], [0], []))])
    rows = load_measurements(DATA / "kernels.parquet")
    kernels = build_kernels(rows)
    names = np.asarray(rows.column("device").to_pylist())
    for dname, dev in devs.items():
        pred = kernels.predict(dev)
        # each device's own rows, and every row on the three profiles (terms off their device)
        if dname in KERNEL_DEVICES:
            out[f"kernels/{dname}"] = pred[names == dname]
        elif dname in PROFILES:
            out[f"kernels/{dname}"] = pred
    return out


def flat_numbers(eff) -> dict[str, float]:
    """Every number of an efficiency section by flat name (``name.key`` for per-key tables)."""
    values = eff.flat() if hasattr(eff, "flat") else eff.model_dump()
    out = {}
    for name, value in values.items():
        if isinstance(value, dict):
            for key, v in value.items():
                if isinstance(v, (int, float)):
                    out[f"{name}.{key}"] = float(v)
        elif isinstance(value, (bool, int, float)):
            out[name] = float(value)
    return out


def calibration() -> dict[str, np.ndarray]:
    """A short calibration of the L40S and the H100 on their rows of ``kernels.parquet`` (every
    stage and candidate runs; few iterations): the fitted numbers, their names, the stage scores."""
    from infersim.fidelity.calibrate import calibrate
    from infersim.fidelity.measurement_files import load_measurements
    import pyarrow.compute as pc

    rows = load_measurements(DATA / "kernels.parquet")
    out = {}
    for name in ("l40s", "h100-sxm"):
        table = rows.filter(pc.equal(rows.column("device"), name))
        cal = calibrate(table, get_device(name, efficiency="spec"), max_rows=300, max_nfev=6, source="golden")
        numbers = flat_numbers(cal.efficiency)
        out[f"calibration/{name}/names"] = np.array(sorted(numbers))
        out[f"calibration/{name}/values"] = np.array([numbers[k] for k in sorted(numbers)])
        out[f"calibration/{name}/stages"] = np.array([[s.rows, s.train_mdape, s.cost] for s in cal.stages])
        out[f"calibration/{name}/labels"] = np.array([f"{s.stage}|{s.tile_set}" for s in cal.stages])
    return out


def write() -> None:
    np.savez_compressed(DATA / "predictions.npz", **compute(), **calibration())


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        write()
    else:
        raise SystemExit("usage: python tests/perf/golden_predictions.py --write")
