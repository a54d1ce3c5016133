"""Pipeline scenario validation (errors name the file and the dotted field) and the CLI commands."""

import copy
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from infersim.cli.app import cli
from infersim.cli.pipeline_cmd import pipeline_cmd, pipeline_study_cmd
from infersim.errors import ConfigError
from infersim.serving.pipeline.deploy import prepare_pipeline
from infersim.serving.pipeline.spec import load_pipeline

from ._util import WORKLOAD, llm, pd_data, pipeline

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "disagg"

if "pipeline" not in cli.commands:  # registered in cli/main.py by its owner; tested here meanwhile
    cli.add_command(pipeline_cmd)
    cli.add_command(pipeline_study_cmd)


def _error(data) -> ConfigError:
    with pytest.raises(ConfigError) as exc:
        pipeline(data)
    return exc.value


def test_unknown_engine_names_the_stage_field():
    data = pd_data()
    data["graph"][1]["engine"] = "decoder"
    err = _error(data)
    assert err.field == "graph[1].engine" and "unknown engine 'decoder'" in err.problem


def test_engine_kind_must_fit_the_stage():
    data = pd_data()
    data["engines"]["ret"] = {"kind": "retrieval", "database": {"vectors": 1e6, "fraction_probed": 0.1,
                                                                "code_bytes": 8}}
    data["graph"][0]["engine"] = "ret"
    err = _error(data)
    assert err.field == "graph[0].engine" and "llm_prefill stage runs on llm engines" in err.problem


def test_decode_must_follow_a_prefill():
    data = pd_data()
    data["graph"] = [{"name": "decode", "kind": "llm_decode", "engine": "decode"}]
    assert _error(data).field == "graph[0].after"


def test_misspelt_key_inside_an_engine_lists_the_allowed_keys():
    data = pd_data()
    data["engines"]["decode"]["modell"] = "x"
    err = _error(data)
    assert err.field == "engines.decode.modell"
    assert "allowed keys here:" in err.problem and "parallelism" in err.problem


def test_out_of_range_value_names_the_nested_field():
    data = pd_data()
    data["engines"]["decode"]["parallelism"] = {"tp": 0}
    err = _error(data)
    assert err.field == "engines.decode.parallelism.tp" and "got 0" in err.problem


def test_one_final_stage_and_known_links():
    data = pd_data()
    data["graph"].append({"name": "other", "kind": "llm", "engine": "decode", "after": ["prefill"]})
    assert _error(data).field == "graph[0].kind"  # a prefill feeds exactly one decode stage
    data = pd_data()
    data["graph"][1]["transfer"] = {"link": "nvlink9"}
    err = _error(data)
    assert err.field == "graph[1].transfer.link" and "unknown link 'nvlink9'" in err.problem
    data = {"seed": 0, "engines": {"a": llm(), "b": llm()}, "workload": copy.deepcopy(WORKLOAD),
            "graph": [{"name": "x", "kind": "llm", "engine": "a", "after": []},
                      {"name": "y", "kind": "llm", "engine": "b", "after": []}]}
    assert "exactly one stage" in _error(data).problem


def test_deployment_errors_name_the_engine():
    data = pd_data()
    data["engines"]["decode"]["model"] = "llama-3.1-405b"  # 810 GB of weights on one H100
    with pytest.raises(ConfigError) as exc:
        prepare_pipeline(pipeline(data))
    assert exc.value.field == "engines.decode.parallelism" and "does not fit" in exc.value.problem
    data = pd_data()
    data["engines"] = {"afd": {"kind": "afd", "model": "deepseek-v3", "precision": {"weight": "fp8"},
                               "attention": {"gpus": 8}, "ffn": {"gpus": 8}}, **data["engines"]}
    data["graph"][1]["engine"] = "afd"  # (prepared first: 652 GB of experts do not fit 8 H100s)
    with pytest.raises(ConfigError) as exc:
        prepare_pipeline(pipeline(data))
    assert exc.value.field == "engines.afd" and "per FFN GPU on 8 GPUs" in exc.value.problem


def test_cli_runs_a_pipeline_and_reports_errors_with_exit_2(tmp_path):
    runner = CliRunner()
    res = runner.invoke(cli, ["pipeline", str(EXAMPLES / "pd_vs_colocated.yaml"), "-n", "40"])
    assert res.exit_code == 0, res.output
    assert "TTFT" in res.output and "$ per million output tokens" in res.output
    data = pd_data()
    data["graph"][1]["engine"] = "nope"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    res = runner.invoke(cli, ["pipeline", str(bad)])
    assert res.exit_code == 2
    assert "graph[1].engine" in res.output and "Traceback" not in res.output
    res = runner.invoke(cli, ["pipeline", str(tmp_path / "missing.yaml")])
    assert res.exit_code == 2 and "file not found" in res.output


def test_cli_study_table(tmp_path):
    data = pd_data(engines={"col": llm(parallelism={"replicas": 2}, scheduler={"policy": "chunked"}),
                            "prefill": llm(), "decode": llm()})
    data["slo"] = [{"metric": "ttft", "percentile": 90, "max_ms": 2000},
                   {"metric": "tpot", "percentile": 90, "max_ms": 40}]
    data["study"] = {"kind": "pd_vs_colocated", "colocated_engine": "col", "prefill_engine": "prefill",
                     "decode_engine": "decode", "gpus": 2, "requests": 40, "duration_s": 5, "start_rate": 4.0,
                     "tolerance": 0.3,
                     "workloads": {"w": {"input_tokens": {"dist": "fixed", "value": 600},
                                         "output_tokens": {"dist": "fixed", "value": 40}}}}
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(data))
    res = CliRunner().invoke(cli, ["pipeline-study", str(path), "-q"])
    assert res.exit_code == 0, res.output
    assert "colocated" in res.output and "P/D 1:1" in res.output
    res = CliRunner().invoke(cli, ["pipeline-study", str(EXAMPLES / "pd_vs_colocated.yaml"), "--seed", "-1"])
    assert res.exit_code == 2 and "--seed" in res.output


@pytest.mark.parametrize("name", ["pd_vs_colocated.yaml", "afd_deepseek.yaml", "rag_pipeline.yaml"])
def test_examples_validate_and_prepare(name):
    sc = load_pipeline(EXAMPLES / name)
    assert sc.study is not None
    dep = prepare_pipeline(sc)
    assert set(dep.engines) == set(sc.used_engines)
