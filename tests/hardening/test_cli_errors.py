"""CLI boundary: bad flag values, trace length, results database problems, determinism of the JSON."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from infersim.cli.main import cli

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run(args, **kw):
    return CliRunner().invoke(cli, args, catch_exceptions=False, **kw)


def one_error_line(result) -> str:
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert result.exit_code == 2 and len(lines) == 1, result.stderr
    assert lines[0].startswith("error:")
    return lines[0]


@pytest.mark.parametrize("args, words", [
    (["estimate", "--moe-imbalance", "nan"], "--moe-imbalance"),
    (["estimate", "--moe-routing", "power_law_x"], "--moe-routing"),
    (["plan", "--moe-routing", "zipf"], "--moe-routing"),
    (["estimate", "--memory-utilization", "inf"], "finite"),
    (["estimate", "--top", "-1"], "--top"),
    (["estimate", "--tp", "0"], "--tp"),
    (["simulate", "--rate", "-3"], "--rate"),
    (["sweep-rate", "--start", "nan"], "--start"),
    (["simulate", "--seed", "-1"], "--seed"),
    (["search", "--limit", "-2"], "--limit"),
    (["results", "show", "x", "--limit", "-5"], "--limit"),
])
def test_bad_flag_values_are_one_line_naming_the_flag(args, words):
    assert words in one_error_line(run(args))


def test_a_tiny_rate_is_refused_instead_of_reporting_zero_latencies():
    line = one_error_line(run(["simulate", "--rate", "1e-300", "-n", "10"]))
    assert "workload.arrival" in line and "microsecond" in line


def test_asking_more_requests_than_a_trace_holds_is_an_error():
    line = one_error_line(run(["simulate", str(EXAMPLES / "scenarios" / "trace-replay-azure.yaml"), "-n", "100000"]))
    assert "workload.requests" in line and "holds 400" in line


def test_unknown_optimizer_is_one_line(tmp_path):
    study = tmp_path / "s.yaml"
    study.write_text((EXAMPLES / "studies" / "moe-tpe.yaml").read_text().replace("optimizer: {kind: tpe, batch_size: 32}",
                                                                         "optimizer: annealing"))
    line = one_error_line(run(["search", str(study), "--db", str(tmp_path / "r.duckdb")]))
    assert "field 'optimizer'" in line and "unknown optimizer 'annealing'" in line and "nsga2" in line


def test_unknown_optimizer_in_mapping_form_names_the_user_field(tmp_path):
    # the union OptimizerSpec | str: the mapping member's problem, without pydantic's member tags
    study = tmp_path / "s.yaml"
    study.write_text((EXAMPLES / "studies" / "moe-tpe.yaml").read_text().replace("kind: tpe", "kind: annealing"))
    line = one_error_line(run(["search", str(study), "--db", str(tmp_path / "r.duckdb")]))
    assert "field 'optimizer.kind'" in line and "unknown optimizer 'annealing'" in line
    assert "OptimizerSpec" not in line and "more problem" not in line


def test_a_corrupted_database_is_one_line_with_a_recovery_hint(tmp_path):
    pytest.importorskip("duckdb")
    db = tmp_path / "r.duckdb"
    db.write_bytes(os.urandom(50_000))
    for args in (["results", "list", "--db", str(db)], ["search", "--db", str(db), "--budget", "1"]):
        line = one_error_line(run(args))
        assert "damaged" in line and f"mv {db} {db}.bad" in line


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_a_read_only_directory_is_one_line(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    line = one_error_line(run(["search", "--db", str(ro / "r.duckdb"), "--budget", "1"]))
    assert "lock file" in line and "--db" in line


def test_summary_json_is_the_same_bytes_on_every_run(tmp_path):
    outs = []
    for k in range(2):
        out = tmp_path / f"o{k}"
        assert run(["simulate", "-n", "50", "--out", str(out)]).exit_code == 0
        outs.append((out / "summary.json").read_bytes())
    assert outs[0] == outs[1]
    assert "wall_s" not in json.loads(outs[0])


@pytest.mark.parametrize("value", ["-50", "1", "many"])
def test_an_option_the_sampler_refuses_is_one_line(tmp_path, value):
    # found by benchmarks/fuzz_inputs.py (a negated population_size): optuna's ValueError escaped
    study = tmp_path / "s.yaml"
    study.write_text((EXAMPLES / "studies" / "h100-budget-nsga2.yaml").read_text()
                     .replace("options: {population_size: 50}", f"options: {{population_size: {value}}}"))
    line = one_error_line(run(["search", str(study), "--budget", "2", "--workers", "1",
                               "--db", str(tmp_path / "r.duckdb"), "--no-progress"]))
    assert "optimizer.options" in line
