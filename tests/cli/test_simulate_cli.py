"""``infersim simulate`` and ``infersim sweep-rate`` through click, with the CLI's error boundary."""

import csv
import json

import click
import pytest
from click.testing import CliRunner

from infersim.cli.app import InfersimGroup
from infersim.cli.simulate_cmd import simulate_cmd, sweep_rate_cmd


@click.group(cls=InfersimGroup)
def cli():
    """The commands as the root group registers them."""


cli.add_command(simulate_cmd)
cli.add_command(sweep_rate_cmd)


def run(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


SCENARIO = """\
name: small
seed: 1
model: llama-3.1-8b
hardware: h100-sxm
scheduler: {policy: chunked, max_num_batched_tokens: 1024}
workload:
  requests: 200
  arrival: {process: poisson, rate: 6.0}
  input_tokens: {dist: lognormal, median: 500, sigma: 0.7, max: 4000}
  output_tokens: {dist: uniform, min: 2, max: 200}
slo:
  - {metric: ttft, percentile: 99, max_ms: 400}
  - {metric: itl, percentile: 90, max_ms: 40}
"""


@pytest.fixture
def scenario_file(tmp_path):
    p = tmp_path / "small.yaml"
    p.write_text(SCENARIO)
    return p


def test_simulate_default_prints_the_summary():
    r = run("simulate", "--requests", "300")
    assert r.exit_code == 0, r.output
    for words in ("TTFT", "TPOT", "inter-token latency", "queueing delay", "throughput", "preemptions",
                  "KV-cache utilization", "goodput", "default-chat"):
        assert words in r.output


def test_simulate_json(scenario_file):
    r = run("simulate", str(scenario_file), "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["requests"] == out["completed"] == 200
    assert {s["metric"] for s in out["slo"]} == {"ttft", "itl"}
    assert set(out["ttft_s"]) == {"mean", "p50", "p90", "p99"}


def test_simulate_out_writes_reproducible_files(scenario_file, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert run("simulate", str(scenario_file), "--out", str(a)).exit_code == 0
    assert run("simulate", str(scenario_file), "--out", str(b), "--json").exit_code == 0
    for name in ("requests.csv", "iterations.csv", "trace.json", "summary.json"):
        if name != "summary.json":  # the summary carries the wall time
            assert (a / name).read_bytes() == (b / name).read_bytes(), name
    rows = list(csv.DictReader((a / "requests.csv").open()))
    assert len(rows) == 200 and float(rows[0]["completion_s"]) > float(rows[0]["first_token_s"])
    trace = json.loads((a / "trace.json").read_text())
    slices = [e for e in trace["traceEvents"] if e["ph"] == "X"]
    steps = list(csv.DictReader((a / "iterations.csv").open()))
    assert len(slices) == len(steps) == trace["otherData"]["iterations"]
    assert slices[0]["ts"] == pytest.approx(float(steps[0]["start_s"]) * 1e6)


def test_overrides_change_the_run(scenario_file):
    base = json.loads(run("simulate", str(scenario_file), "--json").output)
    more = json.loads(run("simulate", str(scenario_file), "--json", "-n", "50", "--rate", "1.5",
                          "--seed", "4").output)
    assert more["requests"] == 50
    assert more["offered_rate"] != base["offered_rate"]


def test_sweep_rate_with_rates(scenario_file):
    r = run("sweep-rate", str(scenario_file), "--rates", "2,4,30", "-n", "150")
    assert r.exit_code == 0, r.output
    assert "latency vs load" in r.output and "Capacity" in r.output
    out = json.loads(run("sweep-rate", str(scenario_file), "--rates", "2,30", "-n", "150", "--json").output)
    assert [p["rate"] for p in out["points"]] == [2.0, 30.0]


def test_sweep_rate_auto(scenario_file):
    out = json.loads(run("sweep-rate", str(scenario_file), "--auto", "-n", "150", "--json").output)
    assert out["capacity_rps"] is not None and len(out["points"]) >= 3


@pytest.mark.parametrize("args,words", [
    (["simulate", "missing.yaml"], "file not found"),
    (["simulate", "--requests", "0"], "--requests"),
    (["sweep-rate", "--rates", "1,x"], "--rates"),
    (["sweep-rate", "--rates", "1", "--auto"], "not both"),
])
def test_user_errors_exit_2_without_traceback(args, words):
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 2
    assert words in r.output and "Traceback" not in r.output


def test_bad_scenario_names_file_and_key(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text(SCENARIO.replace("max_num_batched_tokens: 1024", "max_num_batched_tokens: 1024, budget: 3"))
    r = CliRunner().invoke(cli, ["simulate", str(p)])
    assert r.exit_code == 2
    flat = " ".join(r.output.split())
    assert "bad.yaml" in flat and "scheduler.budget" in flat and "unknown key" in flat


def test_simulate_stream_writes_the_in_memory_requests_and_summary(scenario_file, tmp_path):
    mem, streamed = tmp_path / "mem", tmp_path / "streamed"
    assert run("simulate", str(scenario_file), "--out", str(mem)).exit_code == 0
    r = run("simulate", str(scenario_file), "--stream", "--out", str(streamed), "--json")
    assert r.exit_code == 0, r.output
    assert (streamed / "requests.csv").read_bytes() == (mem / "requests.csv").read_bytes()
    assert not (streamed / "iterations.csv").exists()
    a, b = json.loads((mem / "summary.json").read_text()), json.loads(r.output)
    for key in ("requests", "completed", "ttft_s", "tpot_s", "e2e_s", "queue_s", "slo_attainment", "iterations"):
        assert a[key] == b[key], key
    assert b["itl_s"]["p90"] == a["itl_s"]["p90"]


def test_simulate_stream_refuses_html_in_one_line(tmp_path):
    r = CliRunner().invoke(cli, ["simulate", "-n", "20", "--stream", "--html", str(tmp_path / "x.html")])
    assert r.exit_code != 0 and "--html" in r.output and "Traceback" not in r.output
