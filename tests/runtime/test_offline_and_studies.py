"""The offline arrival process among the others, and runtimes in study and pipeline files."""

from __future__ import annotations

import typing

import numpy as np
import pytest

from infersim.errors import ConfigError
from infersim.serving.scenario import ArrivalSpec, ClosedLoopArrivals, OfflineArrivals, validate_scenario
from infersim.serving.workload import ARRIVAL_PROCESSES, arrival_times, build_workload


def _arrival_classes():
    union = typing.get_args(ArrivalSpec)[0]
    return typing.get_args(union)


def test_every_open_loop_arrival_process_is_registered():
    classes = _arrival_classes()
    assert OfflineArrivals in classes
    assert set(ARRIVAL_PROCESSES) == set(classes) - {ClosedLoopArrivals}
    rng = np.random.default_rng(0)
    for cls in ARRIVAL_PROCESSES:
        tag = typing.get_args(cls.model_fields["process"].annotation)[0]
        spec = cls.model_validate({"process": tag, **({"rate": 2.0} if "rate" in cls.model_fields else {}),
                                   **({"cv": 1.5} if "cv" in cls.model_fields else {})})
        t = arrival_times(spec, 50, rng)
        assert t.shape == (50,) and (np.diff(t) >= 0).all() and (t >= 0).all()


def test_offline_queues_everything_at_zero():
    sc = validate_scenario({"workload": {"requests": 7, "arrival": {"process": "offline"},
                                         "input_tokens": {"dist": "fixed", "value": 10},
                                         "output_tokens": {"dist": "fixed", "value": 3}}})
    wl = build_workload(sc)
    assert wl.arrival_s.tolist() == [0.0] * 7 and not wl.closed_loop


def test_offline_takes_no_rate():
    with pytest.raises(ConfigError, match="workload.arrival.rate"):
        validate_scenario({"workload": {"requests": 7, "arrival": {"process": "offline", "rate": 3},
                                        "input_tokens": {"dist": "fixed", "value": 10},
                                        "output_tokens": {"dist": "fixed", "value": 3}}})


STUDY = {
    "name": "rt", "workload": {"input_tokens": 256, "output_tokens": 32, "rate_rps": 2},
    "space": {"model": "llama-3.1-8b", "device": "h100-sxm", "tp": 1, "max_batch": [8, 16]},
    "objectives": [{"max": "output_tokens_per_s"}],
}


def test_study_runtime_changes_the_namespace_and_the_numbers():
    pytest.importorskip("duckdb", reason="the search package needs duckdb: pip install 'infersim[search]'")
    from infersim.search.evaluators.static import StaticEvaluator
    from infersim.search.study import study_from_dict

    from infersim.runtime import DEFAULT_RUNTIME, get_runtime

    plain = study_from_dict(STUDY)
    kernels = plain.with_runtime("none")
    vllm = plain.with_runtime("vllm")
    assert vllm.namespace != kernels.namespace and '"runtime":"vllm"' in vllm.namespace
    assert '"runtime"' not in kernels.namespace  # kernels-only studies keep the namespace they had
    # a study without a runtime runs the default one and is stored under its namespace
    assert plain.namespace == plain.with_runtime(DEFAULT_RUNTIME).namespace
    cfg = {"model": "llama-3.1-8b", "device": "h100-sxm", "tp": 1, "max_batch": 8}
    a = StaticEvaluator(kernels.context).evaluate([cfg]).outcomes()[0].metrics
    b = StaticEvaluator(vllm.context).evaluate([cfg]).outcomes()[0].metrics
    # vLLM adds its host time to every decode step (no overlap); 8 sequences pad to the captured 8
    assert b["tpot_s"] == pytest.approx(a["tpot_s"] + get_runtime("vllm").host_s(8), rel=1e-9)
    with pytest.raises(ConfigError, match="runtime"):
        study_from_dict({**STUDY, "runtime": "vlm"}, "study.yaml")


def test_simulation_study_with_offline_arrivals():
    pytest.importorskip("duckdb", reason="the search package needs duckdb: pip install 'infersim[search]'")
    from infersim.search.evaluators.simulation import SimulationEvaluator, scenario_data
    from infersim.search.study import study_from_dict

    spec = {**STUDY, "workload": {"input_tokens": 256, "output_tokens": 32}, "runtime": "sglang",
            "evaluator": {"kind": "simulation", "options": {"arrival": "offline", "requests": 20}},
            "objectives": [{"max": "served_output_tokens_per_s"}]}
    study = study_from_dict(spec)
    cfg = SimulationEvaluator.knobs(study.context) | {"model": "llama-3.1-8b", "device": "h100-sxm", "tp": 1,
                                                      "max_batch": 8}
    data = scenario_data(study.context, cfg)
    assert data["workload"]["arrival"] == {"process": "offline"} and data["runtime"] == "sglang"
    m = SimulationEvaluator(study.context).evaluate_one(cfg, {"devices": 1.0})
    # every request at t = 0, so served output tokens/s = output tokens / makespan
    assert m["served_output_tokens_per_s"] == pytest.approx(20 * 32 / m["makespan_s"], rel=1e-9)


def test_pipeline_runtime_reaches_every_llm_pool():
    from infersim.serving.pipeline.deploy import prepare_pipeline
    from infersim.serving.pipeline.spec import validate_pipeline

    llm = {"kind": "llm", "model": "llama-3.1-8b", "hardware": "h100-sxm"}
    data = {"name": "pd", "runtime": "trtllm",
            "engines": {"prefill": {**llm, "scheduler": {"max_num_batched_tokens": 2048}}, "decode": llm},
            "graph": [{"name": "prefill", "kind": "llm_prefill", "engine": "prefill"},
                      {"name": "decode", "kind": "llm_decode", "engine": "decode"}],
            "workload": {"requests": 4, "arrival": {"process": "offline"},
                         "input_tokens": {"dist": "fixed", "value": 64},
                         "output_tokens": {"dist": "fixed", "value": 4}}}
    dep = prepare_pipeline(validate_pipeline(data, "<test>"))
    pre = dep.engines["prefill"].deployment
    dec = dep.engines["decode"].deployment
    assert pre.runtime.name == dec.runtime.name == "trtllm"
    # TensorRT-LLM's block of 32 tokens fills the unset key; the explicit token cap stays
    assert pre.scenario.scheduler.block_size == dec.scenario.scheduler.block_size == 32
    assert pre.scenario.scheduler.max_num_batched_tokens == 2048
    assert dec.scenario.scheduler.max_num_batched_tokens == 8192
    with pytest.raises(ConfigError, match="field 'runtime'"):
        validate_pipeline({**data, "runtime": "vlm"}, "<test>")
