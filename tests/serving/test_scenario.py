"""Scenario files: validation errors name the file, the dotted key and what was expected."""

from pathlib import Path

import pytest

from infersim.errors import ConfigError
from infersim.serving.engine import prepare
from infersim.serving.scenario import default_scenario, load_scenario

EXAMPLES = sorted((Path(__file__).parents[2] / "examples" / "scenarios").glob("*.yaml"))

GOOD = """\
name: t
model: llama-3.1-8b
hardware: h100-sxm
workload:
  requests: 10
  arrival: {process: poisson, rate: 1.0}
  input_tokens: {dist: fixed, value: 100}
  output_tokens: {dist: fixed, value: 10}
"""


def write(tmp_path, text):
    p = tmp_path / "scenario.yaml"
    p.write_text(text)
    return p


def error_of(tmp_path, text) -> ConfigError:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        sc = load_scenario(path)
        prepare(sc)
    assert str(path) in str(info.value)
    return info.value


def test_good_file_and_defaults(tmp_path):
    sc = load_scenario(write(tmp_path, GOOD))
    assert sc.scheduler.policy == "continuous" and sc.scheduler.token_budget == 16384
    assert sc.with_changes(**{"scheduler.policy": "chunked"}).scheduler.token_budget == 512
    assert sc.source == (tmp_path / "scenario.yaml").resolve()


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_examples_run(path):
    from infersim.serving import simulate, summarize

    sc = load_scenario(path)
    if sc.workload.requests is not None:
        sc = sc.with_changes(**{"workload.requests": 100})
    s = summarize(simulate(sc))
    assert s.completed == s.requests > 0


def test_builtin_trace_is_the_azure_layout():
    from infersim.serving.scenario import builtin_data

    path = builtin_data("azure-conv-synthetic")
    assert path.read_text().splitlines()[0] == "TIMESTAMP,ContextTokens,GeneratedTokens"


def test_default_scenario_is_the_issue_default():
    sc = default_scenario()
    assert (sc.model, sc.hardware, sc.scheduler.policy) == ("llama-3.1-8b", "h100-sxm", "continuous")
    assert sc.workload.requests == 2000 and sc.workload.arrival.process == "poisson"
    assert [(s.metric, s.percentile, s.max_ms) for s in sc.slo] == [("ttft", 99, 500), ("tpot", 90, 50)]


def test_unknown_top_level_key(tmp_path):
    err = error_of(tmp_path, GOOD + "modle: x\n")
    assert err.field == "modle"
    assert "unknown key" in err.problem and "model" in err.problem  # lists the allowed keys


def test_unknown_nested_key_inside_a_union(tmp_path):
    err = error_of(tmp_path, GOOD.replace("{process: poisson, rate: 1.0}", "{process: poisson, rat: 1.0}"))
    assert err.field == "workload.arrival.rat"  # the cause, not the consequence ('rate' missing)
    assert "allowed keys here: process, rate" in err.problem
    err = error_of(tmp_path, GOOD.replace("{dist: fixed, value: 100}", "{dist: fixed, value: 100, mean: 3}"))
    assert err.field == "workload.input_tokens.mean"


@pytest.mark.parametrize("old,new,field,words", [
    ("rate: 1.0", "rate: -2", "workload.arrival.rate", "greater than 0"),
    ("value: 100}", "value: 0}", "workload.input_tokens.value", "greater than or equal to 1"),
    ("hardware: h100-sxm", "hardware: h100-sxm\nscheduler: {block_size: 0}", "scheduler.block_size", "(got 0)"),
    ("hardware: h100-sxm", "hardware: h100-sxm\nscheduler: {policy: fifo}", "scheduler.policy", "'fifo'"),
    ("hardware: h100-sxm", "hardware: h100-sxm\nslo: [{metric: ttft, percentile: 120, max_ms: 5}]",
     "slo[0].percentile", "less than or equal to 100"),
    ("hardware: h100-sxm", "hardware: h100-sxm\nprecision: {kv_cache: fp7}", "precision.kv_cache", "fp7"),
    ("{dist: fixed, value: 100}", "{dist: lognormal, median: -3, sigma: 1}", "workload.input_tokens.median",
     "greater than 0"),
    ("{dist: fixed, value: 100}", "{dist: pareto, alpha: 2}", "workload.input_tokens", "unknown kind 'pareto'"),
    ("{dist: fixed, value: 100}", "{dist: uniform, min: 10, max: 5}", "workload.input_tokens", "must be >= min"),
])
def test_out_of_range_values_name_the_key(tmp_path, old, new, field, words):
    err = error_of(tmp_path, GOOD.replace(old, new))
    assert err.field == field
    assert words in err.problem


def test_missing_and_conflicting_workload(tmp_path):
    err = error_of(tmp_path, GOOD.replace("  requests: 10\n", ""))
    assert err.field == "workload" and "requests" in err.problem
    err = error_of(tmp_path, GOOD + "  trace: {path: t.csv}\n")
    assert err.field == "workload" and "not both" in err.problem


def test_unknown_model_and_bad_layout_name_the_key(tmp_path):
    err = error_of(tmp_path, GOOD.replace("model: llama-3.1-8b", "model: llama-9"))
    assert err.field == "model" and "llama-9" in err.problem
    err = error_of(tmp_path, GOOD + "parallelism: {tp: 3}\n")
    assert err.field == "parallelism" and "--tp 3" in err.problem
    err = error_of(tmp_path, GOOD.replace("model: llama-3.1-8b", "model: llama-2-70b"))
    assert err.field == "parallelism" and "does not fit" in err.problem


def test_yaml_syntax_and_missing_file(tmp_path):
    err = error_of(tmp_path, GOOD + "workload: [\n")
    assert "not valid YAML" in err.problem
    with pytest.raises(ConfigError, match="file not found"):
        load_scenario(tmp_path / "nope.yaml")


def test_trace_file_errors_name_the_key(tmp_path):
    from infersim.serving.workload import build_workload

    (tmp_path / "t.csv").write_text("TIMESTAMP,Context,GeneratedTokens\n0,1,1\n")
    sc = load_scenario(write(tmp_path, GOOD.split("workload:")[0] + "workload:\n  trace: {path: t.csv}\n"))
    with pytest.raises(ConfigError) as info:
        build_workload(sc)
    assert info.value.field == "workload.trace.path" and "ContextTokens" in info.value.problem


@pytest.mark.parametrize("policy, refused", [("continuous", True), ("inflight", True), ("static", False),
                                             ("chunked", False)])
def test_a_step_that_cannot_hold_a_whole_prompt_is_refused_by_whole_prompt_policies(tmp_path, policy, refused):
    # 600-token prompts, 10 output tokens, 605 tokens a step: a recompute would re-prefill 600 + 9 = 609
    # tokens at once (continuous, inflight); static batching never preempts (600 fit); chunked splits
    from infersim.serving import simulate

    text = GOOD.replace("value: 100", "value: 600") + (f"runtime: none\nscheduler: {{policy: {policy}, "
                                                       f"max_num_batched_tokens: 605}}\n")
    path = write(tmp_path, text)
    if refused:
        with pytest.raises(ConfigError) as info:
            simulate(load_scenario(path))
        assert info.value.field == "scheduler.max_num_batched_tokens" and "609 tokens" in info.value.problem
        assert str(path) in str(info.value) and "\n" not in str(info.value)
    else:
        assert simulate(load_scenario(path)).requests["completion_s"].size == 10
