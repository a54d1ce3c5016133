"""Deployment metrics of the static evaluators, recomputed here from perf.estimate and their definitions."""

import math

import pytest

from infersim.hardware import get_device
from infersim.models import get_model
from infersim.perf.estimate import estimate
from infersim.perf.parallel import Parallelism, Precision
from infersim.search.evaluators import EvaluatorContext, ExactEvaluator, StaticEvaluator

WORKLOAD = {"input_tokens": 1024, "output_tokens": 256, "rate_rps": 20.0}
SLO = {"ttft_p99_s": 1.0, "tpot_p90_s": 0.060}


def context(kind="static", workload=WORKLOAD, slo=SLO):
    # the metric definitions are checked against the kernels-only estimate, so the runtime is pinned
    # to "none" (the default runtime's host time and graph padding are tests/runtime's subject)
    return EvaluatorContext(kind=kind, workload=dict(workload), slo=dict(slo), runtime="none")


CONFIGS = [
    {"model": "llama-3.1-8b", "device": "h100-sxm", "tp": 1, "replicas": 3, "max_batch": 32,
     "max_prefill_tokens": 2048},
    {"model": "llama-3.1-70b", "device": "h200", "tp": 4, "replicas": 2, "max_batch": 64, "weight_dtype": "fp8",
     "max_prefill_tokens": 8192},
    {"model": "llama-3.1-70b", "device": "mi300x", "tp": 2, "replicas": 1, "max_batch": 8,
     "max_prefill_tokens": 512},
]


def expected(cfg, workload=WORKLOAD):
    model, device = get_model(cfg["model"]), get_device(cfg["device"])
    par = Parallelism(tp=cfg["tp"])
    e = estimate(model, device, par, Precision(cfg.get("weight_dtype", "bf16")), batch=cfg["max_batch"],
                 input_tokens=workload["input_tokens"], output_tokens=workload["output_tokens"],
                 max_prefill_tokens=cfg["max_prefill_tokens"])
    devices = cfg["replicas"] * par.devices
    capacity = cfg["replicas"] * e.output_tokens_per_s
    out = workload["output_tokens"]
    utilization = workload["rate_rps"] / (capacity / out)
    served = min(workload["rate_rps"] * out, capacity)
    return e, devices, capacity, utilization, served


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"{c['device']}-tp{c['tp']}")
def test_metrics_follow_their_definitions(cfg):
    (out,) = StaticEvaluator(context()).evaluate([cfg]).outcomes()
    e, devices, capacity, utilization, served = expected(cfg)
    m = out.metrics
    assert out.status == "ok"
    assert m["devices"] == devices
    assert m["ttft_s"] == pytest.approx(e.ttft_s, rel=1e-12)
    assert m["prefill_s"] == pytest.approx(e.prefill_s, rel=1e-12)
    # every request of the batch decodes in the same steps: the TPOT percentiles are the mean step
    assert m["tpot_s"] == m["tpot_p90_s"] == m["tpot_p99_s"]
    assert m["tpot_s"] == pytest.approx(e.tpot_s, rel=5e-3)
    assert m["ttft_p50_s"] <= m["ttft_p90_s"] <= m["ttft_p99_s"] <= m["prefill_s"]
    assert m["output_tokens_per_s"] == pytest.approx(capacity, rel=5e-3)
    assert m["utilization"] == pytest.approx(utilization, rel=5e-3)
    assert m["served_output_tokens_per_s"] == pytest.approx(served, rel=5e-3)
    price = get_device(cfg["device"]).usd_per_hour
    assert m["usd_per_hour"] == pytest.approx(price * devices)
    assert m["usd_per_million_output_tokens"] == pytest.approx(price * devices / (served * 3600) * 1e6, rel=5e-3)
    met = utilization <= 1 and m["ttft_p99_s"] <= 1.0 and m["tpot_p90_s"] <= 0.060
    assert m["slo_met"] == float(met)
    assert m["goodput_tokens_per_s_per_device"] == pytest.approx(served / devices if met else 0.0, rel=5e-3)
    assert m["power_w"] == pytest.approx(m["power_w_per_device"] * devices)
    assert m["joules_per_output_token"] == pytest.approx(e.joules_per_output_token, rel=5e-3)


def test_without_a_rate_served_is_capacity_and_cost_is_the_estimates():
    cfg = CONFIGS[0]
    workload = {"input_tokens": 1024, "output_tokens": 256, "rate_rps": None}
    (out,) = StaticEvaluator(context(workload=workload)).evaluate([cfg]).outcomes()
    e = estimate(get_model("llama-3.1-8b"), get_device("h100-sxm"), batch=32, input_tokens=1024,
                 output_tokens=256, max_prefill_tokens=2048)
    assert "utilization" not in out.metrics
    assert out.metrics["usd_per_million_output_tokens"] == pytest.approx(e.usd_per_million_output_tokens, rel=5e-3)


def test_rejections_name_the_reason_and_other_points_go_on():
    configs = [
        {"model": "llama-3.1-8b", "device": "h100-sxm", "tp": 3},  # 32 heads: tp 3 cannot divide
        {"model": "llama-3.1-70b", "device": "l40s", "tp": 1},  # 140 GB of weights on 48 GB
        {"model": "llama-3.1-8b", "device": "h100-sxm", "tp": 1},
    ]
    outs = StaticEvaluator(context()).evaluate(configs).outcomes()
    assert [o.status for o in outs] == ["rejected", "rejected", "ok"]
    assert "does not divide" in outs[0].error
    assert outs[1].error.startswith("does not fit in memory: needs") and "GB usable" in outs[1].error
    assert outs[1].metrics["weights_bytes_per_device"] > 48e9 and "ttft_s" not in outs[1].metrics


def test_exact_evaluator_costs_every_decode_step():
    cfg = CONFIGS[1]
    (out,) = ExactEvaluator(context("estimate")).evaluate([cfg])
    e, *_ = expected(cfg)
    assert out.status == "ok"
    assert out.metrics["tpot_s"] == pytest.approx(e.tpot_s, rel=1e-12)
    assert out.metrics["e2e_s"] == pytest.approx(e.e2e_s, rel=1e-12)


def test_slo_screen_rejects_before_the_per_point_evaluation():
    ctx = EvaluatorContext(kind="estimate", workload=dict(WORKLOAD), slo={"tpot_p90_s": 1e-6},
                           options={"screen_slo_factor": 2.0})
    (out,) = ExactEvaluator(ctx).evaluate([CONFIGS[0]])
    assert out.status == "rejected" and out.error.startswith("static screen: tpot_p90_s")
    assert not math.isnan(out.metrics["tpot_s"])
