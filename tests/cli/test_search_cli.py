"""`infersim search` and `infersim results` through click's CliRunner (commands on a test root group)."""

import csv
import json

import pytest
from click.testing import CliRunner

pytest.importorskip("duckdb", reason="the search commands need duckdb: pip install 'infersim[search]'")

from infersim.cli.app import InfersimGroup  # noqa: E402
from infersim.cli.search_cmd import results_group, search_cmd  # noqa: E402

CLI = InfersimGroup(commands={"search": search_cmd, "results": results_group})

SMALL = """
name: small
workload: {input_tokens: 512, output_tokens: 128, rate_rps: 5}
space:
  model: llama-3.1-8b
  device: [h100-sxm, l40s]
  tp: [1, 2, 3]
  max_batch: {type: int, low: 1, high: 128, log: true}
slo: {ttft_p99_s: 0.5, tpot_p90_s: 0.05}
objectives: [{min: usd_per_million_output_tokens}, {max: goodput_tokens_per_s_per_device}]
"""


class Run:
    def __init__(self, result):
        self.exit_code = result.exit_code
        self.output = " ".join(result.output.split())  # rich wraps long lines at 120 columns off a terminal


def run(args):
    return Run(CliRunner().invoke(CLI, args, catch_exceptions=False))


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "small.yaml").write_text(SMALL)
    return tmp_path


def test_default_search_runs_and_rerun_skips(project):
    first = run(["search", "--no-progress"])
    assert first.exit_code == 0, first.output
    assert "Pareto front of 'llama70b-chat'" in first.output
    assert "5760 evaluated now" in first.output
    assert (project / "infersim.duckdb").exists()
    again = run(["search", "--no-progress"])
    assert again.exit_code == 0
    assert "0 evaluated now" in again.output and "5760 already in" in again.output


def test_study_file_and_results_commands(project):
    out = run(["search", "small.yaml", "--db", "r.duckdb"])
    assert out.exit_code == 0, out.output
    assert "small: 48 trials, 48 evaluated now" in out.output
    listing = run(["results", "list", "--db", "r.duckdb"])
    assert listing.exit_code == 0 and "small" in listing.output and "48" in listing.output
    show = run(["results", "show", "small", "--db", "r.duckdb", "--status", "rejected"])
    assert show.exit_code == 0 and "Study 'small': 16 points" in show.output  # tp 3: 2 devices x 8 batches
    pareto = run(["results", "pareto", "small", "--db", "r.duckdb", "--objective", "ttft_p99_s:min",
                  "--objective", "usd_per_million_output_tokens:min"])
    assert pareto.exit_code == 0 and "min ttft_p99_s, min usd_per_million_output_tokens" in pareto.output
    export = run(["results", "export", "small", "--db", "r.duckdb", "--csv", "all.csv"])
    assert export.exit_code == 0 and "wrote 48 points" in export.output
    with open(project / "all.csv") as f:
        table = list(csv.DictReader(f))
    assert len(table) == 48
    assert {r["status"] for r in table} == {"ok", "rejected"}
    rejected_tp3 = [r for r in table if r["config.tp"] == "3"]
    assert len(rejected_tp3) == 16
    assert all(r["status"] == "rejected" and "does not divide" in r["error"] and r["metrics.ttft_s"] == ""
               for r in rejected_tp3)
    front = [r for r in table if r["pareto_rank"] == "0"]
    assert front and all(r["feasible"] == "True" for r in front)


def test_bad_input_exits_2_with_the_field_and_no_traceback(project):
    (project / "bad.yaml").write_text(SMALL.replace("tp: [1, 2, 3]", "tpp: [1, 2]"))
    out = run(["search", "bad.yaml", "--db", "x.duckdb"])
    assert out.exit_code == 2
    assert "bad.yaml: field 'space.tpp': unknown parameter" in out.output
    assert "Traceback" not in out.output
    assert not (project / "x.duckdb").exists()  # failed before any evaluation
    for args, message in ((["results", "show", "nope"], "no results database"),
                          (["search", "small.yaml", "--address", "x:1"], "--address needs --backend ray"),
                          (["search", "small.yaml", "--budget", "0"], "--budget must be >= 1")):
        out = run(args)
        assert out.exit_code == 2 and message in out.output, out.output
    run(["search", "small.yaml", "--no-progress"])
    out = run(["results", "pareto", "small", "--objective", "cost:min"])
    assert out.exit_code == 2 and "no point has metric 'cost'" in out.output


def test_json_of_stored_rows_is_queryable_by_sql(project):
    run(["search", "small.yaml", "--db", "q.duckdb", "--no-progress"])
    import duckdb

    con = duckdb.connect("q.duckdb", read_only=True)
    rows = con.execute("SELECT config->>'device', count(*), max((metrics->>'devices')::DOUBLE) FROM evaluations "
                       "WHERE status = 'ok' GROUP BY 1 ORDER BY 1").fetchall()
    con.close()
    assert [r[0] for r in rows] == ["h100-sxm", "l40s"]
    assert all(r[2] == 2.0 for r in rows)  # tp <= 2, one replica
    assert json.loads(json.dumps(rows))
