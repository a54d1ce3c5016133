"""`infersim throughput` and the --runtime flag of the other commands, through click."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from infersim.cli.main import cli


def run(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_throughput_json_matches_its_own_definitions():
    r = run("throughput", "--isl", "128", "--osl", "16", "-n", "40", "--tp", "2", "--runtime", "vllm", "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["runtime"] == "vllm" and d["devices"] == 2 and d["requests"] == 40
    assert d["output_tokens"] == 40 * 16 and d["input_tokens"] == 40 * 128
    assert d["output_tokens_per_s"] == pytest.approx(d["output_tokens"] / d["makespan_s"], rel=1e-12)
    assert d["requests_per_s"] == pytest.approx(40 / d["makespan_s"], rel=1e-12)
    assert d["output_tokens_per_s_per_gpu"] == pytest.approx(d["output_tokens_per_s"] / 2, rel=1e-12)
    # vLLM's own defaults on an H100, offline (LLM class): chunked prefill, 16384 tokens, 1024 sequences
    assert d["scheduler"] == {"policy": "chunked", "max_num_seqs": 1024, "max_num_batched_tokens": 16384,
                              "block_size": 16, "memory_utilization": 0.9}


def test_throughput_table_and_explicit_caps():
    r = run("throughput", "--isl", "64", "--osl", "8", "-n", "20", "--max-num-seqs", "4")
    assert r.exit_code == 0, r.output
    for word in ("output tokens/s", "per GPU", "requests/s", "makespan", "max_num_seqs 4"):
        assert word in r.output


PD = str(Path(__file__).parents[2] / "examples" / "disagg" / "pd_vs_colocated.yaml")


@pytest.mark.parametrize("command", [["throughput"], ["estimate"], ["simulate", "-n", "5"], ["sweep-rate"],
                                     ["search", "--budget", "1"], ["pipeline", PD], ["pipeline-study", PD]])
def test_unknown_runtime_flag_is_one_line(command):
    r = CliRunner().invoke(cli, [*command, "--runtime", "tensorrt"])
    assert r.exit_code == 2
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and "--runtime" in lines[0] and "tensorrt" in lines[0] and "trtllm" in lines[0]
    assert "Traceback" not in r.output


def test_estimate_reports_its_runtime():
    from infersim.runtime import DEFAULT_RUNTIME

    default = json.loads(run("estimate", "--json").output)
    base = json.loads(run("estimate", "--json", "--runtime", "none").output)
    with_rt = json.loads(run("estimate", "--json", "--runtime", DEFAULT_RUNTIME).output)
    assert default["runtime"] == DEFAULT_RUNTIME
    assert base["runtime"] == "none" and with_rt["runtime"] == DEFAULT_RUNTIME
    assert default["tpot_s"] == with_rt["tpot_s"]
    assert with_rt["tpot_s"] > base["tpot_s"]  # host time per iteration


def test_simulate_runtime_flag_overrides_the_file(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("runtime: vllm\nworkload: {requests: 30, arrival: {process: offline}, "
                    "input_tokens: {dist: fixed, value: 64}, output_tokens: {dist: fixed, value: 4}}\n")
    a = json.loads(run("simulate", str(path), "--json").output)
    b = json.loads(run("simulate", str(path), "--json", "--runtime", "none").output)
    assert a["scheduler"] == "chunked" and b["scheduler"] == "continuous"
    assert (a["runtime"], b["runtime"]) == ("vllm", "none")
    text = run("simulate", str(path)).output
    assert "runtime vllm" in " ".join(text.split()) and "all queued at t = 0" in " ".join(text.split())


def test_sweep_rate_refuses_offline_arrivals(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("workload: {requests: 5, arrival: {process: offline}, input_tokens: {dist: fixed, value: 8}, "
                    "output_tokens: {dist: fixed, value: 2}}\nslo: [{metric: ttft, max_ms: 100}]\n")
    r = CliRunner().invoke(cli, ["sweep-rate", str(path), "--rates", "1,2"])
    assert r.exit_code == 2 and "workload.arrival.process" in r.output and "offline" in r.output


def test_runtimes_lists_every_registered_runtime_with_its_sources():
    from infersim.runtime import DEFAULT_RUNTIME, RUNTIMES

    d = json.loads(run("runtimes", "--json", "--hardware", "h200", "--tp", "8", "--offline").output)
    rows = {r["name"]: r for r in d["runtimes"]}
    assert set(rows) == set(RUNTIMES)
    assert [n for n, r in rows.items() if r["default"]] == [DEFAULT_RUNTIME]
    assert all(r["sources"] for r in rows.values())
    # SGLang at TP 8: mem_fraction_static 0.81; more graph sizes above 96 GiB (H200: 141 GB)
    assert rows["sglang"]["scheduler_defaults"]["memory_utilization"] == 0.81
    assert rows["sglang"]["graph_sizes"][-1] == 256
    assert rows["vllm"]["scheduler_defaults"]["max_num_batched_tokens"] == 16384
    # vLLM V0 without chunked prefill: max(max_model_len, 2048), the model's context (Llama-3.1-8B: 131,072)
    assert d["context_tokens"] == 131072
    assert rows["vllm-v0.6"]["scheduler_defaults"]["max_num_batched_tokens"] == 131072
    short = json.loads(run("runtimes", "--json", "--model", "llama-2-70b").output)  # 4,096-token context
    assert {r["name"]: r for r in short["runtimes"]}["vllm-v0"]["scheduler_defaults"]["max_num_batched_tokens"] == 4096
    text = " ".join(run("runtimes", "--sources").output.split())
    assert "Vidur" in text and "overlap" in text
