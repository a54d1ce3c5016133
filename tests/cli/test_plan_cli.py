"""`infersim plan` through click's CliRunner: the answer, --json, the database, and one-line errors."""

import json

import pytest
from click.testing import CliRunner

pytest.importorskip("duckdb", reason="plan stores its results with duckdb: pip install 'infersim[search]'")

from infersim.cli.app import InfersimGroup  # noqa: E402
from infersim.cli.plan_cmd import plan_cmd  # noqa: E402
from infersim.search.store import open_store  # noqa: E402

CLI = InfersimGroup(commands={"plan": plan_cmd})
SMALL = ["plan", "--model", "llama-3.1-8b", "--gpus", "2", "--isl", "1024", "--osl", "128", "--ttft", "500",
         "--tpot", "30", "--batch", "128", "--tokens", "2048", "--precision", "bf16"]


def run(args):
    return CliRunner().invoke(CLI, args)


def error_line(result) -> str:
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    return lines[0]


def test_json_answer_has_both_modes_and_meets_the_slos(tmp_path):
    r = run(SMALL + ["--no-simulate", "--json", "--db", str(tmp_path / "r.duckdb")])
    assert r.exit_code == 0, r.output
    answer = json.loads(r.output)
    assert set(answer["best"]) == {"aggregated", "disaggregated"}
    for mode, best in answer["best"].items():
        m = best["metrics"]
        assert m["devices"] <= 2
        assert m["ttft_p90_s"] <= 0.5 + 1e-9 and m["tpot_p90_s"] <= 0.03 + 1e-9
        assert m["goodput_tokens_per_s_per_device"] == pytest.approx(
            m["slo_capacity_requests_per_s"] * 128 / m["devices"])
    agg = answer["best"]["aggregated"]["config"]
    assert agg["tp"] * agg.get("pp", 1) * agg["replicas"] <= 2
    with open_store(tmp_path / "r.duckdb") as store:
        assert store.study_names() == answer["stored"]
        assert store.count(answer["stored"][0]) == answer["evaluated"]


def test_simulated_check_is_printed_and_stored(tmp_path):
    r = run(SMALL + ["--top-k", "1", "--mode", "aggregated", "--db", str(tmp_path / "r.duckdb")])
    assert r.exit_code == 0, r.output
    assert "Simulated check of the static top 1" in r.output and "aggregated" in r.output
    with open_store(tmp_path / "r.duckdb") as store:
        names = store.study_names()
        assert len(names) == 2 and any(n.endswith("-simulated") for n in names)


def test_budget_below_the_smallest_deployment():
    line = error_line(run(["plan", "--model", "llama-3.1-70b", "--gpus", "1", "--precision", "bf16",
                           "--no-simulate", "--no-store"]))
    # 70B in bf16 is 141 GB of weights: one 80 GB H100 cannot hold it, two can
    assert "--gpus" in line and "smallest deployment that fits needs 2" in line


def test_slos_nothing_meets_say_how_far_the_closest_is():
    line = error_line(run(SMALL + ["--ttft", "1", "--tpot", "1", "--no-simulate", "--no-store"]))
    assert ("--ttft" in line or "--tpot" in line) and "no deployment meets" in line and "closest" in line
    assert "x)" in line


@pytest.mark.parametrize("mode, text", [("aggregated,colocated", "unknown mode 'colocated'"),
                                        ("afd", "needs a MoE model")])
def test_bad_modes(mode, text):
    line = error_line(run(SMALL + ["--mode", mode, "--no-simulate", "--no-store"]))
    assert "--mode" in line and text in line
