"""Every report kind, written once per test session by the commands a user runs (small runs).

``outputs`` maps a kind to (html path, the command's --json dictionary); the browser test and
the data tests share it, so each command runs once.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

pytest.importorskip("plotly", reason="HTML reports need plotly: pip install 'infersim[report]'")

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "tests" / "data" / "fidelity" / "sample.parquet"


def run(*args, ok: bool = True):
    from infersim.cli.main import cli

    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, result.output
    return result


def run_json(*args) -> dict:
    return json.loads(run(*args, "--json").stdout)


def small_pd_study(tmp: Path) -> Path:
    """pd_vs_colocated.yaml with one workload and 60 requests a run (the same study, smaller)."""
    data = yaml.safe_load((ROOT / "examples" / "disagg" / "pd_vs_colocated.yaml").read_text())
    data["workload"]["requests"] = 60
    data["study"].update(requests=60, tolerance=0.3, workloads={"long": data["study"]["workloads"]["long"]})
    path = tmp / "pd_small.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def small_sim_study(tmp: Path) -> Path:
    data = yaml.safe_load((ROOT / "examples" / "studies" / "sim-llama8b.yaml").read_text())
    data["evaluator"]["options"]["requests"] = 100
    path = tmp / "sim_small.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="session")
def outputs(tmp_path_factory) -> dict[str, tuple[Path, dict]]:
    tmp = tmp_path_factory.mktemp("reports")
    out: dict[str, tuple[Path, dict]] = {}

    def html(kind: str) -> Path:
        return tmp / f"{kind}.html"

    out["estimate"] = html("estimate"), run_json("estimate", "--html", html("estimate"))
    out["simulate"] = html("simulate"), run_json("simulate", "-n", 400, "--out", tmp / "sim-out",
                                                 "--html", html("simulate"))
    out["sweep-rate"] = html("sweep-rate"), run_json("sweep-rate", "--rates", "6,12", "-n", 200,
                                                     "--html", html("sweep-rate"))
    pd = small_pd_study(tmp)
    out["pipeline"] = html("pipeline"), run_json("pipeline", pd, "--html", html("pipeline"))
    out["pipeline-study"] = html("pipeline-study"), run_json("pipeline-study", pd, "--html", html("pipeline-study"))
    out["fidelity"] = html("fidelity"), run_json("fidelity", "--measurements", SAMPLE, "--device", "h100-sxm",
                                                 "--no-calibrate", "--html", html("fidelity"))
    out["validate"] = html("validate"), run_json("validate", "--id", "v4.1-nvidia-h100x8-llama2-offline",
                                                 "--batches", 1, "--html", html("validate"))
    pytest.importorskip("duckdb", reason="search reports need duckdb: pip install 'infersim[search]'")
    db = tmp / "results.duckdb"
    run("search", small_sim_study(tmp), "--db", db, "--workers", 1, "--no-progress", "--html", html("search"))
    out["search"] = html("search"), {"db": str(db), "study": "sim-llama8b"}
    return out
