"""Host time split into per-step, per-scheduler-call and asynchronous parts (vLLM V0 from 0.6.0).

Hand cases: a per-call host time x with n steps per call adds exactly iterations * x / n to a
makespan; asynchronous host work longer than every kernel sets each step to the serial part plus
that work; the ``vllm-v0.6`` parts add up to Vidur's four-phase line at both measured batch sizes.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from infersim.errors import ConfigError, InfersimError
from infersim.runtime import Runtime, get_runtime
from infersim.serving import simulate
from infersim.serving.cost import StepCost
from infersim.serving.engine import prepare
from infersim.serving.metrics import iterations
from infersim.serving.scenario import validate_scenario

MODEL, DEVICE = "llama-3.1-8b", "h100-sxm"

#: Vidur's vLLM host-phase medians on A100 (data/profiling/a100/cpu_overheads.csv), ms, at batch 8 and 64:
#: schedule, prepare inputs, sampler, process model outputs
VIDUR_MS = {8: (0.16513, 0.29317, 0.88781, 0.62438), 64: (0.95218, 1.16300, 1.37026, 4.10826)}


def _scenario(**top):
    # 4 requests of 16 prompt / 5 output tokens at t = 0, continuous batching, kernels-only runtime
    # (pinned: these cases swap the runtime in by hand): one prefill step, then 4 decode steps
    data = {"name": "hand", "seed": 0, "model": MODEL, "hardware": DEVICE, "runtime": "none",
            "workload": {"requests": 4, "arrival": {"process": "offline"},
                         "input_tokens": {"dist": "fixed", "value": 16},
                         "output_tokens": {"dist": "fixed", "value": 5}}}
    data.update(top)
    return validate_scenario(data)


def _run(dep, runtime: Runtime):
    swapped = dataclasses.replace(dep, cost=StepCost(dep.stm, 64, runtime=runtime), runtime=runtime)
    return simulate(dep.scenario, deployment=swapped)


def test_schedule_time_is_spread_over_scheduler_steps():
    sc = _scenario()
    dep = prepare(sc, max_context_tokens=64)
    base = simulate(sc, deployment=dep)
    assert iterations(base)["start_s"].size == 5
    end = base.requests["completion_s"].max()
    x = 300e-6
    for n in (1, 2, 5):
        res = _run(dep, Runtime(schedule_fixed_s=x, scheduler_steps=n))
        assert math.isclose(res.requests["completion_s"].max(), end + 5 * x / n, rel_tol=1e-12)
    # per sequence: 4 sequences in every one of the 5 steps
    y = 20e-6
    res = _run(dep, Runtime(schedule_per_seq_s=y, scheduler_steps=4))
    assert math.isclose(res.requests["completion_s"].max(), end + 5 * 4 * y / 4, rel_tol=1e-12)


def test_async_host_time_overlaps_the_kernels():
    sc = _scenario()
    dep = prepare(sc, max_context_tokens=64)
    base = simulate(sc, deployment=dep)
    kernels = iterations(base)["duration_s"]
    # asynchronous work longer than every kernel: each step = serial part + that work
    a, s = 1.0, 1e-3
    res = _run(dep, Runtime(host_fixed_s=s, async_fixed_s=a))
    assert res.requests["completion_s"].max() == pytest.approx(5 * (s + a), rel=1e-12)
    # shorter than every kernel: hidden entirely, only the serial part is added
    tiny = float(kernels.min()) / 2
    res = _run(dep, Runtime(host_fixed_s=s, async_fixed_s=tiny))
    assert res.requests["completion_s"].max() == pytest.approx(base.requests["completion_s"].max() + 5 * s,
                                                                rel=1e-12)
    # with overlap every part hides behind the kernels: max(kernel, serial + async) per step
    rt = Runtime(host_fixed_s=s, async_fixed_s=tiny, overlap=True)
    want = float(np.maximum(kernels, s + tiny).sum())
    assert _run(dep, rt).requests["completion_s"].max() == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("batch", sorted(VIDUR_MS))
def test_vllm_v06_parts_add_up_to_vidurs_line(batch):
    schedule, prepare_inputs, sampler, outputs = (v * 1e-3 for v in VIDUR_MS[batch])
    v06, v0 = get_runtime("vllm-v0.6"), get_runtime("vllm-v0")
    # every part is its own Vidur line, to the 5 digits the module docstring gives
    assert v06.schedule_fixed_s + v06.schedule_per_seq_s * batch == pytest.approx(schedule + prepare_inputs,
                                                                                 rel=1e-4)
    assert v06.host_fixed_s + v06.host_per_seq_s * batch == pytest.approx(sampler, rel=1e-4)
    assert v06.async_fixed_s + v06.async_per_seq_s * batch == pytest.approx(outputs, rel=1e-4)
    assert v06.host_s(batch) == pytest.approx(v0.host_s(batch), rel=1e-5)
    # one step per call, kernels longer than the output processing: the serial parts only
    k = 1.0
    assert v06.step_time_s(k, batch) == pytest.approx(k + schedule + prepare_inputs + sampler, rel=1e-4)
    # ten steps per call: scheduling and input preparation once in ten
    ten = v06.with_scheduler_steps(10)
    assert ten.step_time_s(k, batch) == pytest.approx(k + (schedule + prepare_inputs) / 10 + sampler, rel=1e-4)


def test_scheduler_steps_reach_the_deployment_and_bad_values_fail():
    dep = prepare(_scenario(runtime="vllm-v0.6", scheduler={"scheduler_steps": 8}), max_context_tokens=64)
    assert dep.runtime.scheduler_steps == 8 and dep.cost.runtime.scheduler_steps == 8
    assert prepare(_scenario(runtime="vllm-v0.6"), max_context_tokens=64).runtime.scheduler_steps == 1
    with pytest.raises(ConfigError, match="scheduler_steps"):
        _scenario(scheduler={"scheduler_steps": 0})
    with pytest.raises(InfersimError, match="scheduler_steps"):
        Runtime(scheduler_steps=0)
    with pytest.raises(InfersimError):
        Runtime(async_per_seq_s=-1e-6)
