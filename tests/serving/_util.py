"""Helpers for the serving tests: small scenarios and the independent step-time oracle."""

from __future__ import annotations

import copy
from pathlib import Path

from infersim.hardware import get_device
from infersim.models import get_model
from infersim.perf.parallel import Parallelism
from infersim.perf.step_time import StepTimeModel
from infersim.serving.scenario import validate_scenario

BASE = {
    "name": "test",
    "seed": 7,
    "model": "llama-3.1-8b",
    "hardware": "h100-sxm",
    # the serving tests check the scheduler and the cost model against the kernels-only oracle below,
    # so they pin the kernels-only runtime (the default one adds engine host time; tests/runtime)
    "runtime": "none",
    "scheduler": {"policy": "continuous"},
    "workload": {
        "requests": 50,
        "arrival": {"process": "poisson", "rate": 5.0},
        "input_tokens": {"dist": "uniform", "min": 50, "max": 600},
        "output_tokens": {"dist": "uniform", "min": 2, "max": 120},
    },
}


def merge(base: dict, changes: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in changes.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict) and k != "workload":
            out[k] = merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def scenario(**changes):
    """A validated scenario: BASE with top-level sections replaced/merged (workload replaced whole)."""
    return validate_scenario(merge(BASE, changes), "<test>")


def trace_scenario(tmp_path: Path, rows: list[tuple[float, int, int]], **changes):
    """A scenario replaying ``rows`` = [(timestamp_s, input, output)] from a CSV in the Azure layout."""
    path = tmp_path / "trace.csv"
    path.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n"
                    + "".join(f"{t!r},{i},{o}\n" for t, i, o in rows))
    data = merge(BASE, changes)
    data["workload"] = {"trace": {"path": str(path)}}
    return validate_scenario(data, "<test>")


def oracle(model="llama-3.1-8b", hardware="h100-sxm", tp=1, pp=1) -> StepTimeModel:
    """The foundation's exact per-step cost model, called per request (independent of serving/cost.py)."""
    return StepTimeModel(get_model(model), get_device(hardware), Parallelism(tp=tp, pp=pp))
