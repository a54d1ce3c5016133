"""Serving runtimes: a contract over every registered runtime, and hand-built cases.

Hand cases (issue 17): a host time of x per iteration adds exactly iterations * x to a makespan;
padding to captured CUDA-graph sizes is exact; offline throughput = output tokens / makespan;
an unknown runtime name is a one-line error naming the file or flag and the field.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from infersim.errors import ConfigError, InfersimError
from infersim.hardware import get_device
from infersim.models import get_model
from infersim.perf.estimate import estimate
from infersim.perf.memory import activation_peak_bytes
from infersim.perf.step_time import StepTimeModel
from infersim.runtime import DEFAULT_RUNTIME, RUNTIMES, Runtime, UnknownRuntimeError, get_runtime
from infersim.serving import offline_throughput, simulate
from infersim.serving.cost import StepCost
from infersim.serving.engine import prepare
from infersim.serving.metrics import iterations
from infersim.serving.scenario import SchedulerSpec, validate_scenario

MODEL, DEVICE = "llama-3.1-8b", "h100-sxm"


def offline(n: int, isl: int, osl: int, **top) -> dict:
    # kernels-only unless a case sets its runtime (the hand cases swap runtimes in by hand)
    data = {"name": "hand", "seed": 0, "model": MODEL, "hardware": DEVICE, "runtime": "none",
            "workload": {"requests": n, "arrival": {"process": "offline"},
                         "input_tokens": {"dist": "fixed", "value": isl},
                         "output_tokens": {"dist": "fixed", "value": osl}}}
    data.update(top)
    return data


def with_runtime(dep, runtime: Runtime, max_context: int = 4096):
    """The deployment with its step costs under ``runtime`` (same model, device, KV cache)."""
    return dataclasses.replace(dep, cost=StepCost(dep.stm, max_context, runtime=runtime), runtime=runtime)


# ----- contract over every registered runtime ---------------------------------------------------
@pytest.mark.parametrize("name", sorted(RUNTIMES))
def test_contract(name):
    rt = get_runtime(name)
    assert rt.name == name and isinstance(rt, Runtime) and rt.title
    assert rt.sources, "every runtime states where its numbers come from"
    # wall time never below the kernels', monotone in the kernels and in the batch
    for kernel in (0.0, 1e-4, 5e-3, 0.2):
        for seqs in (1, 8, 256):
            t = rt.step_time_s(kernel, seqs)
            assert t >= kernel
            assert rt.step_time_s(kernel * 2 + 1e-6, seqs) >= t
            assert rt.step_time_s(kernel, seqs + 1) >= t
    vec = rt.step_times_s(np.array([1e-3, 2e-2]), np.array([4, 64]))
    assert vec.tolist() == [rt.step_time_s(1e-3, 4), rt.step_time_s(2e-2, 64)]
    # graph batches: never fewer sequences; a captured size or the batch itself
    for b in range(1, 700):
        g = rt.graph_batch(b)
        assert g >= b and (g == b or g in rt.graph_sizes)
    bs = np.arange(1, 700)
    assert rt.graph_batches(bs).tolist() == [float(rt.graph_batch(int(b))) for b in bs]
    # defaults are valid scheduler settings on every device class
    for mem, dev_name, tp, off in ((80 * 2**30, "h100-sxm", 1, True), (40e9, "a100-sxm-40gb", 8, False)):
        d = rt.scheduler_defaults(mem, dev_name, tp, off)
        SchedulerSpec.model_validate(d.as_dict())
    # a small offline run completes every request and conserves tokens
    res = simulate(validate_scenario(offline(12, 200, 20, runtime=name)))
    assert np.isfinite(res.requests["completion_s"]).all()
    thr = offline_throughput(MODEL, DEVICE, runtime=name, isl=200, osl=20, requests=12)
    assert thr.runtime == name and thr.output_tokens == 12 * 20


def test_default_runtime_is_registered_and_none_is_the_kernels():
    assert DEFAULT_RUNTIME in RUNTIMES
    assert get_runtime(None).name == DEFAULT_RUNTIME
    assert get_runtime("none").identity


# ----- hand cases ---------------------------------------------------------------------------------
def test_host_time_per_iteration_adds_iterations_times_x():
    # 4 requests of 16 prompt / 5 output tokens, all at t = 0, continuous batching: one prefill
    # step (first tokens), then 4 decode steps -> 5 iterations
    sc = validate_scenario(offline(4, 16, 5))
    dep = prepare(sc, max_context_tokens=64)
    base = simulate(sc, deployment=dep)
    assert iterations(base)["start_s"].size == 5
    x = 250e-6
    slow = simulate(sc, deployment=with_runtime(dep, Runtime(host_fixed_s=x), 64))
    assert math.isclose(slow.requests["completion_s"].max(), base.requests["completion_s"].max() + 5 * x,
                        rel_tol=1e-12)
    # per-sequence host time: the prefill step has 4 sequences, every decode step 4 as well
    y = 10e-6
    per_seq = simulate(sc, deployment=with_runtime(dep, Runtime(host_per_seq_s=y), 64))
    assert math.isclose(per_seq.requests["completion_s"].max(),
                        base.requests["completion_s"].max() + 5 * 4 * y, rel_tol=1e-12)
    # overlapped host work longer than every kernel: each iteration takes exactly the host time
    long = simulate(sc, deployment=with_runtime(dep, Runtime(host_fixed_s=1.0, overlap=True), 64))
    assert long.requests["completion_s"].max() == pytest.approx(5.0, rel=1e-12)


def test_estimate_host_time_adds_per_step():
    m, d = get_model(MODEL), get_device(DEVICE)
    base = estimate(m, d, batch=16, input_tokens=1024, output_tokens=256)
    x = 1e-3
    slow = estimate(m, d, batch=16, input_tokens=1024, output_tokens=256, runtime=Runtime(host_fixed_s=x))
    # 16 prompts of 1024 under the 8192-token cap: 2 prefill steps of 8; then 255 decode steps
    assert slow.e2e_s == pytest.approx(base.e2e_s + (2 + 255) * x, rel=1e-12)
    assert slow.tpot_s == pytest.approx(base.tpot_s + x, rel=1e-12)


def test_graph_padding_is_exact():
    rt = Runtime(graph_sizes=(1, 2, 4, 8, 16), graph_padding=True)
    assert [rt.graph_batch(b) for b in (1, 2, 3, 5, 8, 9, 16, 17, 40)] == [1, 2, 4, 8, 8, 16, 16, 17, 40]
    assert Runtime(graph_sizes=(1, 2, 4), graph_padding=False).graph_batch(3) == 3  # no padding: eager
    # the simulator: 3 requests of 100 prompt / 3 output tokens decode as a graph of 4 sequences
    # holding the 3 real contexts (padding slots read no KV)
    sc = validate_scenario(offline(3, 100, 3))
    dep = prepare(sc, max_context_tokens=256)
    res = simulate(sc, deployment=with_runtime(dep, rt, 256))
    it = iterations(res)
    stm = dep.stm
    decode = it["decode_seqs"] == 3
    want = [stm.step_time_s(0, 0, 4, {None: (0.0, 0.0, 0.0, 3.0 * ctx)}) for ctx in (101, 102)]
    assert it["duration_s"][decode].tolist() == pytest.approx(want, rel=1e-9)
    unpadded = [stm.step_time_s(0, 0, 3, {None: (0.0, 0.0, 0.0, 3.0 * ctx)}) for ctx in (101, 102)]
    assert want[0] > unpadded[0]  # the padding costs something on this device
    # the static estimate pads the same way
    m, d = get_model(MODEL), get_device(DEVICE)
    est = estimate(m, d, batch=3, input_tokens=100, output_tokens=3, runtime=rt)
    assert est.tpot_s == pytest.approx(sum(want) / 2, rel=1e-9)


def test_runtime_step_times_pad_only_decode_only_scenarios():
    # mixed scenarios: decode-only ones are costed at the captured size, the others as they are;
    # each is checked against its own single-scenario costing (scenarios cost independently)
    # (runtime_step_times_s: the same times from one graph holding the padded scenarios too)
    from infersim.perf.estimate import runtime_step_times, runtime_step_times_s, step_costs
    from infersim.perf.parallel import Parallelism, Precision
    from infersim.perf.shape import StepShape

    rt = Runtime(graph_sizes=(1, 2, 4, 8, 16), graph_padding=True)
    m, d, par, prec = get_model(MODEL), get_device(DEVICE), Parallelism(), Precision()
    kw = dict(prefill_seqs=[0, 1, 0, 0], chunk=[0, 64, 0, 0], past=0, decode_seqs=[3, 3, 8, 5],
              decode_context=[200, 200, 300, 400])
    got = runtime_step_times(rt, m, d, par, prec, StepShape.uniform(m, **kw))[2]
    one_graph = runtime_step_times_s(rt, m, d, par, prec, StepShape.uniform(m, **kw))
    for j, padded_seqs in enumerate([4, 3, 8, 8]):
        one = StepShape.uniform(m, **{k: (v[j] if isinstance(v, list) else v) for k, v in kw.items()})
        if kw["prefill_seqs"][j] == 0:
            one = one.padded_decodes(np.array([padded_seqs], dtype=np.float64))
        want = rt.step_times_s(step_costs(m, d, par, prec, one)[1].step_time_s,
                               kw["prefill_seqs"][j] + kw["decode_seqs"][j])[0]
        assert got[j] == pytest.approx(want, rel=1e-12)
        assert one_graph[j] == pytest.approx(want, rel=1e-12)


def test_offline_throughput_is_output_tokens_over_makespan():
    # 4 requests of 16 / 5 at t = 0 on the kernels-only runtime: one prefill step of 4 prompts,
    # then decode steps at contexts 17..20 (the cost model's public step time, by hand)
    thr = offline_throughput(MODEL, DEVICE, runtime="none", isl=16, osl=5, requests=4)
    stm = StepTimeModel(get_model(MODEL), get_device(DEVICE))
    prefill = stm.step_time_for([16] * 4, [0] * 4, [])
    decodes = [stm.step_time_s(0, 0, 4, {None: (0.0, 0.0, 0.0, 4.0 * c)}) for c in (17, 18, 19, 20)]
    makespan = prefill + sum(decodes)
    assert thr.makespan_s == pytest.approx(makespan, rel=1e-9)
    assert thr.output_tokens_per_s == pytest.approx(20 / makespan, rel=1e-9)
    assert thr.requests_per_s == pytest.approx(4 / makespan, rel=1e-9)
    assert thr.total_tokens_per_s == pytest.approx((64 + 20) / makespan, rel=1e-9)
    assert thr.output_tokens_per_s_per_gpu == thr.output_tokens_per_s


def test_per_gpu_divides_by_every_device():
    a = offline_throughput(MODEL, DEVICE, tp=2, replicas=2, isl=64, osl=8, requests=16)
    assert a.devices == 4
    assert a.output_tokens_per_s_per_gpu == pytest.approx(a.output_tokens_per_s / 4, rel=1e-12)


# ----- defaults and overrides -------------------------------------------------------------------
def test_runtime_defaults_fill_unset_keys_and_explicit_keys_win():
    sc = validate_scenario(offline(8, 64, 8, runtime="vllm", scheduler={"max_num_seqs": 100}))
    sched = prepare(sc, max_context_tokens=128).scenario.scheduler
    # vLLM on an H100 (>= 70 GiB, not an A100), offline: LLM-class defaults; max_num_seqs as given
    assert (sched.policy, sched.max_num_seqs, sched.max_num_batched_tokens, sched.block_size) == \
        ("chunked", 100, 16384, 16)
    sg = prepare(validate_scenario(offline(8, 64, 8, runtime="sglang", parallelism={"tp": 4})),
                 max_context_tokens=128).scenario.scheduler
    assert (sg.memory_utilization, sg.block_size, sg.max_num_batched_tokens) == (0.85, 1, 8192)
    # the simulation result reports the effective scheduler
    res = simulate(validate_scenario(offline(8, 64, 8, runtime="trtllm")))
    assert res.scenario.scheduler.block_size == 32 and res.scenario.scheduler.policy == "inflight"
    # a copy with other keys changed keeps the runtime's defaults in charge
    sc2 = validate_scenario(offline(8, 64, 8, runtime="vllm")).with_changes(**{"workload.requests": 4})
    assert "max_num_seqs" not in sc2.scheduler.model_fields_set


def test_sglang_v03_charges_its_host_time_on_every_step():
    """SGLang 0.3 (no overlap scheduler): 2.915 ms of host time per step on the critical path (the
    median of the WukLab study's ten per-iteration figures, 1.87 ... 5.30 ms); SGLang 0.4 hides it."""
    old, new = get_runtime("sglang-v0.3"), get_runtime("sglang")
    measured_ms = [3.13, 4.29, 3.55, 1.91, 2.70, 2.16, 1.87, 5.30, 2.30, 4.20]  # the study's bars, by hand
    x = sorted(measured_ms)[4:6]
    assert old.host_fixed_s == pytest.approx((x[0] + x[1]) / 2 * 1e-3, abs=1e-6)
    for kernel in (1e-4, 0.03):
        for seqs in (1, 300):
            assert old.step_time_s(kernel, seqs) == pytest.approx(kernel + 2.915e-3, rel=1e-12)
            assert new.step_time_s(kernel, seqs) == kernel
    # the same engine defaults; 0.3 captures graphs up to 160 on every device, 0.4 up to 256 above 96 GiB
    for tp in (1, 4, 8):
        assert old.scheduler_defaults(80 * 2**30, "h100-sxm", tp, True) == \
            new.scheduler_defaults(80 * 2**30, "h100-sxm", tp, True)
    assert old.for_device(141 * 2**30).graph_sizes[-1] == 160 and new.for_device(141 * 2**30).graph_sizes[-1] == 256
    assert old.graph_batch(150) == 152 and old.graph_batch(161) == 161  # padded, eager above 160


def test_scheduler_defaults_come_from_one_declaration_per_engine():
    """Each engine declares its defaults once (``defaults``); only device-dependent keys change."""
    for name in RUNTIMES:
        rt = get_runtime(name)
        d = rt.scheduler_defaults(80 * 2**30, "h100-sxm", 1, False)
        assert (d.policy, d.block_size) == (rt.defaults.policy, rt.defaults.block_size)
    # vLLM V1 (EngineArgs.get_batch_defaults): A100 online 2048 tokens / 256 seqs, H100 offline 16384 / 1024
    vllm = get_runtime("vllm")
    a100 = vllm.scheduler_defaults(80 * 2**30, "a100-sxm-80gb", 1, False)
    h100 = vllm.scheduler_defaults(80 * 2**30, "h100-sxm", 1, True)
    assert (a100.max_num_batched_tokens, a100.max_num_seqs) == (2048, 256)
    assert (h100.max_num_batched_tokens, h100.max_num_seqs) == (16384, 1024)
    # SGLang: mem_fraction_static 0.81 at TP 8, chunked prefill 2048 below 25 GB
    sg = get_runtime("sglang")
    assert sg.scheduler_defaults(80 * 2**30, "h100-sxm", 8, True).memory_utilization == 0.81
    assert sg.scheduler_defaults(24e9, "l4", 1, True).max_num_batched_tokens == 2048
    # vLLM V0 without chunked prefill: max(max_model_len, 2048) tokens a step (vllm/config.py, v0.6)
    for name in ("vllm-v0", "vllm-v0.6"):
        v0 = get_runtime(name)
        assert v0.scheduler_defaults(80 * 2**30, "h100-sxm", 1, False, max_model_len=131072).max_num_batched_tokens \
            == 131072
        assert v0.scheduler_defaults(80 * 2**30, "h100-sxm", 1, False, max_model_len=1024).max_num_batched_tokens \
            == 2048


def test_a_v0_engine_prefills_a_prompt_of_any_served_length_whole():
    # Llama-3.1-8B serves 131,072 tokens: two 32,000-token prompts run in one step under vllm-v0.6's defaults
    sc = validate_scenario(offline(2, 32000, 4, runtime="vllm-v0.6"))
    res = simulate(sc)
    assert res.scenario.scheduler.policy == "continuous"
    assert res.scenario.scheduler.token_budget == 131072
    assert iterations(res)["prefill_tokens"].tolist() == [64000, 0, 0, 0]  # both prompts whole, then 3 decodes


def test_kv_capacity_rules():
    sc = validate_scenario(offline(4, 64, 8))
    for name, rule in (("trtllm", lambda mem, w, a: 0.9 * (mem - w - a)),
                       ("vllm", lambda mem, w, a: 0.9 * mem - w - a),
                       ("sglang", lambda mem, w, a: 0.88 * mem - w)):
        dep = prepare(sc.with_changes(runtime=name), max_context_tokens=128)
        sched = dep.scenario.scheduler
        act = float(activation_peak_bytes(get_model(MODEL), dep.parallel, dep.precision, sched.token_budget,
                                          min(sched.token_budget, sched.max_num_seqs)))
        mem = get_device(DEVICE).memory_bytes
        assert dep.kv_capacity_bytes == pytest.approx(rule(mem, dep.weights_bytes, act), rel=1e-12)
        assert dep.blocks_per_engine == int(dep.kv_capacity_bytes // (dep.kv_bytes_per_token * sched.block_size))


# ----- errors -----------------------------------------------------------------------------------
def test_unknown_runtime_errors(tmp_path):
    with pytest.raises(UnknownRuntimeError, match="unknown runtime 'vlm'"):
        get_runtime("vlm")
    path = tmp_path / "s.yaml"
    path.write_text("runtime: vlm\nworkload: {requests: 2, arrival: {process: offline}, "
                    "input_tokens: {dist: fixed, value: 8}, output_tokens: {dist: fixed, value: 2}}\n")
    from infersim.serving import load_scenario

    with pytest.raises(ConfigError) as err:
        load_scenario(path)
    msg = str(err.value)
    assert str(path) in msg and "field 'runtime'" in msg and "vlm" in msg and "vllm" in msg and "\n" not in msg
    with pytest.raises(ConfigError, match="field 'runtime'"):
        offline_throughput(MODEL, DEVICE, runtime="vlm", requests=2)


def test_runtime_rejects_bad_numbers():
    with pytest.raises(InfersimError):
        Runtime(host_fixed_s=-1.0)
    with pytest.raises(InfersimError):
        Runtime(graph_sizes=(4, 2))
