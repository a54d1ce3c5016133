"""Transforms as study-space parameters: the metrics are estimate's with the same transforms,
identity knobs change nothing, bad values name the knob, accuracy_delta constrains."""

import math

import pytest

from infersim.errors import ConfigError
from infersim.hardware import get_device
from infersim.models import get_model
from infersim.perf.estimate import estimate
from infersim.perf.graph import GraphOptions
from infersim.perf.transforms import parse_transforms
from infersim.search.evaluators import EvaluatorContext, StaticEvaluator
from infersim.search.study import study_from_dict
from infersim.search.transform_knobs import TRANSFORM_KNOBS, transforms_from_config

WORKLOAD = {"input_tokens": 512, "output_tokens": 64}
BASE = {"model": "llama-3.1-8b", "device": "h100-sxm", "max_batch": 8}


def evaluate(cfg):
    # compared with the kernels-only estimate below: the runtime is pinned to "none"
    ctx = EvaluatorContext(kind="static", workload=dict(WORKLOAD), runtime="none")
    (out,) = StaticEvaluator(ctx).evaluate([cfg]).outcomes()
    return out


def test_static_metrics_are_the_estimates_with_the_same_transforms():
    cfg = {**BASE, "transform.spec": "eagle", "transform.spec.alpha": 0.7, "transform.quant": "w4a16"}
    out = evaluate(cfg)
    chosen = parse_transforms(["quant=w4a16", "spec=eagle,alpha=0.7"], "t")
    e = estimate(get_model("llama-3.1-8b"), get_device("h100-sxm"), batch=8, input_tokens=512, output_tokens=64,
                 options=GraphOptions(transforms=chosen))
    assert out.metrics["ttft_s"] == pytest.approx(e.ttft_s, rel=1e-9)
    assert out.metrics["tpot_s"] == pytest.approx(e.tpot_s, rel=5e-3)  # batch_estimate's Simpson sum
    # Marlin's published Llama-2-70B int4 g128 perplexity delta; speculative decoding is lossless
    assert out.metrics["accuracy_delta"] == pytest.approx(3.21 - 3.12)


def test_identity_knobs_are_the_plain_deployment():
    plain = evaluate(dict(BASE))
    ident = evaluate({**BASE, **{k: v for k, v in TRANSFORM_KNOBS.items() if "." not in k[len("transform."):]}})
    assert transforms_from_config(TRANSFORM_KNOBS) == ()
    assert plain.metrics == ident.metrics


def _study(space, **extra):
    return study_from_dict({"name": "t", "workload": {**WORKLOAD, "rate_rps": 1.0},
                            "space": {**BASE, **space}, "objectives": [{"min": "tpot_s"}], **extra}, "s.yaml")


def test_unknown_transform_knob_is_rejected_with_its_name():
    with pytest.raises(ConfigError, match=r"space\.transform\.nosuch"):
        _study({"transform.nosuch": ["a"]})


def test_bad_transform_value_names_the_knob():
    cfg = {**BASE, "transform.spec": "eagle", "transform.spec.alpha": 1.5}
    out = evaluate(cfg)
    assert out.status == "rejected" and "space.transform.spec" in out.error and "alpha" in out.error


def test_accuracy_constraint_and_objective():
    study = _study({"transform.sparsity": ["dense", "2:4"]}, constraints=["accuracy_delta <= 1"],
                   objectives=[{"min": "tpot_s"}, {"min": "accuracy_delta"}])
    assert "accuracy_delta" in {o.metric for o in study.scoring.objectives}
    sparse = evaluate({**BASE, "transform.sparsity": "2:4"})
    assert sparse.metrics["accuracy_delta"] == 2.0  # Neural Magic: 98% recovery of Llama-3.1-8B
    unknown = evaluate({**BASE, "transform.kvquant": "int4"})
    assert math.isnan(unknown.metrics.get("accuracy_delta", math.nan))  # no figure: no value
    given = evaluate({**BASE, "transform.kvquant": "int4", "transform.kvquant.accuracy_delta": 0.3})
    assert given.metrics["accuracy_delta"] == 0.3
