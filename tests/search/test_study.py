"""Study files: every mistake fails before any evaluation, naming the file and the field."""

from pathlib import Path

import pytest
import yaml

from infersim.errors import ConfigError
from infersim.search import DEFAULT_STUDY, load_study, study_from_dict

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "studies"


def base(**changes):
    data = {
        "name": "t", "workload": "chat",
        "space": {"model": "llama-3.1-8b", "device": ["h100-sxm"], "tp": [1, 2]},
        "objectives": [{"min": "usd_per_million_output_tokens"}],
    }
    data.update(changes)
    return data


def fails(data, field, *words):
    with pytest.raises(ConfigError) as err:
        study_from_dict(data, "study.yaml")
    assert err.value.field == field, str(err.value)
    text = str(err.value)
    assert text.startswith("study.yaml: field"), text
    for w in words:
        assert w in text, text
    return text


def test_examples_load_and_the_default_matches_its_file():
    for path in sorted(EXAMPLES.glob("*.yaml")):
        load_study(path)
    assert yaml.safe_load((EXAMPLES / "llama70b-chat.yaml").read_text()) == DEFAULT_STUDY


def test_unknown_parameter_names_the_field_and_lists_known():
    fails(base(space={"model": "llama-3.1-8b", "device": "h100-sxm", "tensor_par": [1, 2]}),
          "space.tensor_par", "unknown parameter", "tp")


def test_unknown_model_and_device():
    fails(base(space={"model": "llama-9", "device": "h100-sxm"}), "space.model", "unknown model")
    fails(base(space={"model": "llama-3.1-8b", "device": ["h100-sxm", "h900"]}), "space.device", "unknown hardware")


def test_empty_space_and_empty_ranges():
    fails(base(space={}), "space", "empty")
    fails(base(space={"model": "llama-3.1-8b", "device": []}), "space.device.values", "empty")
    fails(base(space={"model": "llama-3.1-8b", "device": "h100-sxm",
                      "max_batch": {"type": "int", "low": 64, "high": 8}}), "space.max_batch", "empty range")
    fails(base(space={"model": "llama-3.1-8b", "device": "h100-sxm", "tp": [3, 5]}), "space", "no combination")


def test_required_parameter_missing():
    fails(base(space={"model": "llama-3.1-8b"}), "space.device", "required")


def test_bad_values():
    fails(base(space={"model": "llama-3.1-8b", "device": "h100-sxm", "weight_dtype": ["fp9"]}),
          "space.weight_dtype", "unknown dtype")
    fails(base(space={"model": "llama-3.1-8b", "device": "h100-sxm", "tp": [0, 1]}), "space.tp", ">= 1")
    fails(base(space={"model": "llama-3.1-8b", "device": "h100-sxm",
                      "max_batch": {"type": "int", "low": 0, "high": 8, "log": True}}), "space.max_batch.low", "log")


def test_conditional_parameter_needs_default_and_an_earlier_key():
    fails(base(space={"model": "mixtral-8x7b", "device": "h100-sxm",
                      "ep": {"type": "int", "low": 1, "high": 8, "when": {"model.is_moe": True}}}),
          "space.ep.default", "inactive")
    fails(base(space={"model": "mixtral-8x7b", "device": "h100-sxm",
                      "ep": {"type": "int", "low": 1, "high": 2, "when": {"tp": 2}, "default": 1}, "tp": [1, 2]}),
          "space.ep.when", "defined before")


def test_unknown_metric_and_bad_objective():
    fails(base(objectives=[{"min": "cost"}]), "objectives.0", "unknown metric 'cost'", "usd_per_million_output_tokens")
    fails(base(objectives=[{"lowest": "ttft_s"}]), "objectives.0", "{min: METRIC}")
    fails(base(slo={"ttft_p999_s": 1.0}), "slo.ttft_p999_s", "unknown metric")
    fails(base(workload={"input_tokens": 10, "output_tokens": 10}, constraints=["utilization <= 1"]),
          "constraints.0", "rate_rps")


def test_contradictory_constraints():
    fails(base(constraints=["ttft_s <= 1", "ttft_s >= 2"]), "constraints", "contradictory", "ttft_s")
    fails(base(slo={"tpot_p90_s": 0.05}, constraints=[{"metric": "tpot_p90_s", "min": 0.1}]), "constraints",
          "contradictory")
    fails(base(constraints=["devices <= -1"]), "constraints", "never negative")
    fails(base(space={"model": "llama-3.1-8b", "device": "h100-sxm", "tp": [4, 8]}, constraints=["devices <= 2"]),
          "constraints", "smallest deployment", "4 devices")
    fails(base(constraints=["ttft_s < 1"]), "constraints.0", "metric <= number")


def test_optimizer_checks():
    fails(base(optimizer="tpe"), "budget", "required")
    fails(base(optimizer="cmaes", budget=10, objectives=[{"min": "ttft_s"}, {"max": "goodput_tokens_per_s_per_device"}]),
          "optimizer", "one objective")
    fails(base(optimizer={"kind": "tpe", "options": {"popsize": 3}}, budget=5), "optimizer.options.popsize", "unknown")


def test_schema_errors_name_the_field():
    fails(base(objectivs=[]), "objectivs", "unknown field")
    fails(base(name="has space"), "name", "letters")
    fails(base(workload="batch-jobs"), "workload", "unknown preset")
    fails(base(evaluator="magic"), "evaluator.kind", "unknown evaluator")
    fails(base(evaluator={"kind": "custom", "target": "no.such.module:Thing"}), "evaluator.target", "cannot import")
    fails(base(runtime="vlm"), "runtime", "unknown runtime 'vlm'", "vllm-v0.6")


def test_simulation_evaluator_needs_an_arrival_rate():
    study_from_dict(base(evaluator="simulation"), "study.yaml")  # the chat preset has one
    fails(base(evaluator="simulation", workload={"input_tokens": 8, "output_tokens": 8}), "workload.rate_rps",
          "arrival rate")


def test_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_study(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML at line"):
        load_study(bad)
