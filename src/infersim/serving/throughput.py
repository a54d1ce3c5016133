"""Offline throughput: every request queued at t = 0, served to the last completion.

This is what ``trtllm-bench throughput`` and vLLM's ``benchmark_throughput.py`` measure:
``n`` requests of ISL / OSL tokens handed to the engine at once; output tokens/s =
(sum of output tokens) / makespan, where the makespan runs from t = 0 to the last
completion; requests/s = n / makespan.

:func:`offline_throughput` builds the scenario (arrival process ``offline``) from a model,
a device, a layout, dtypes, a runtime and the length distributions, simulates it and
returns a :class:`Throughput`; :func:`throughput_of` reads the same figures off any
simulation whose requests all arrive at t = 0.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..errors import ConfigError
from .engine import SimulationResult, simulate
from .scenario import Scenario, validate_scenario


@dataclass(frozen=True)
class Throughput:
    """Offline throughput of one deployment (``per_gpu`` figures divide by every device of every replica)."""

    model: str
    hardware: str
    runtime: str
    devices: int
    requests: int
    input_tokens: int  # total
    output_tokens: int  # total
    makespan_s: float
    requests_per_s: float
    output_tokens_per_s: float
    output_tokens_per_s_per_gpu: float
    total_tokens_per_s: float  # (input + output) / makespan, as trtllm-bench reports it
    mean_ttft_s: float
    mean_tpot_s: float
    scheduler: dict

    def to_dict(self) -> dict:
        return asdict(self)


def _lengths(value: Any, field: str) -> dict:
    """An ISL/OSL argument as a scenario length distribution: an int is a fixed length; a mapping is a
    length distribution as in a scenario file (``{"dist": "lognormal", "median": ..., "sigma": ...}``)."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return {"dist": "fixed", "value": int(value)}
    if isinstance(value, dict):
        return dict(value)
    raise ConfigError("<offline_throughput>", field, f"expected a token count or a length distribution, got {value!r}")


def throughput_of(result: SimulationResult) -> Throughput:
    """Offline-throughput figures of a simulation whose requests all arrived at t = 0."""
    req = result.requests
    sc = result.scenario
    if req["arrival_s"].size and np.any(req["arrival_s"] != 0.0):
        raise ConfigError(sc.origin, "workload.arrival.process",
                          "offline throughput needs every request queued at t = 0 (process: offline)")
    done = req["completion_s"]
    makespan = float(np.max(done)) if done.size else 0.0
    n = int(done.size)
    out_tok = int(req["output_tokens"].sum())
    in_tok = int(req["input_tokens"].sum())
    p = sc.parallelism
    devices = p.tp * p.pp * p.replicas
    first = req["first_token_s"]
    multi = req["output_tokens"] > 1
    tpot = (done[multi] - first[multi]) / (req["output_tokens"][multi] - 1)
    rate = (lambda x: x / makespan) if makespan > 0 else (lambda x: float("nan"))
    dep = result.deployment
    return Throughput(
        model=dep.model_name, hardware=dep.device_name,
        runtime=dep.runtime.name if dep.runtime is not None else "none", devices=devices, requests=n,
        input_tokens=in_tok, output_tokens=out_tok, makespan_s=makespan, requests_per_s=rate(n),
        output_tokens_per_s=rate(out_tok), output_tokens_per_s_per_gpu=rate(out_tok) / devices,
        total_tokens_per_s=rate(in_tok + out_tok), mean_ttft_s=float(first.mean()) if n else float("nan"),
        mean_tpot_s=float(tpot.mean()) if tpot.size else float("nan"),
        scheduler={**sc.scheduler.model_dump(include={"policy", "max_num_seqs", "block_size",
                                                      "memory_utilization"}),
                   "max_num_batched_tokens": sc.scheduler.token_budget})


def offline_scenario(model: str, hardware: str, *, tp: int = 1, pp: int = 1, ep: int = 1,
                     dp_attention: bool = False, replicas: int = 1, weight_dtype: str = "bf16",
                     activation_dtype: str = "bf16", kv_dtype: str = "bf16", runtime: str | None = None,
                     isl: Any = 1024, osl: Any = 128, requests: int = 1000, seed: int = 0,
                     scheduler: dict | None = None) -> Scenario:
    """The serving scenario of an offline-throughput run (see :func:`offline_throughput`)."""
    data = {
        "name": "offline-throughput", "seed": seed, "model": model, "hardware": hardware,
        "parallelism": {"tp": tp, "pp": pp, "ep": ep, "dp_attention": dp_attention, "replicas": replicas},
        "precision": {"weight": weight_dtype, "activation": activation_dtype, "kv_cache": kv_dtype},
        "workload": {"requests": requests, "arrival": {"process": "offline"},
                     "input_tokens": _lengths(isl, "isl"), "output_tokens": _lengths(osl, "osl")},
    }
    if runtime is not None:
        data["runtime"] = runtime
    if scheduler:
        data["scheduler"] = dict(scheduler)
    return validate_scenario(data, "<offline_throughput>")


def offline_throughput(model: str, hardware: str, *, tp: int = 1, pp: int = 1, ep: int = 1,
                       dp_attention: bool = False, replicas: int = 1, weight_dtype: str = "bf16",
                       activation_dtype: str = "bf16", kv_dtype: str = "bf16", runtime: str | None = None,
                       isl: Any = 1024, osl: Any = 128, requests: int = 1000, seed: int = 0,
                       scheduler: dict | None = None) -> Throughput:
    """Output tokens/s, requests/s and makespan of ``requests`` requests queued at t = 0.

    ``model`` / ``hardware``: catalog names or file paths; ``tp``/``pp``/``ep``/``dp_attention``/``replicas``:
    the layout; dtypes of weights, activations and KV cache; ``runtime``: the serving engine
    (:mod:`infersim.runtime`; None: the default); ``isl`` / ``osl``: token counts, or length
    distributions as in a scenario file; ``scheduler``: explicit scheduler keys (they override the
    runtime's defaults, e.g. ``{"max_num_seqs": 512}``)."""
    sc = offline_scenario(model, hardware, tp=tp, pp=pp, ep=ep, dp_attention=dp_attention, replicas=replicas,
                          weight_dtype=weight_dtype, activation_dtype=activation_dtype, kv_dtype=kv_dtype,
                          runtime=runtime, isl=isl, osl=osl, requests=requests, seed=seed, scheduler=scheduler)
    return throughput_of(simulate(sc))
