"""A study run on a real Ray cluster (`ray start --head`, then `infersim search --backend ray --address
HOST:PORT` in its own process, as a user runs it) stores the same rows as the local process pool."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from infersim.search import open_store

pytest.importorskip("ray", reason="Ray is not installed: pip install 'infersim[ray]' (CI installs it)")

ROOT = Path(__file__).resolve().parents[2]
SRC = str(ROOT / "src")


def env() -> dict:
    # workers import infersim from this checkout when it is not installed; Ray >= 2.52 turns token
    # authentication on for a new cluster and a client must opt in to send the token
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (SRC, os.environ.get("PYTHONPATH")) if p),
            "RAY_AUTH_MODE": "token"}


@pytest.fixture(scope="module")
def cluster():
    from infersim.search.ray_head import local_ray_head

    with local_ray_head(num_cpus=2, env={"PYTHONPATH": env()["PYTHONPATH"]}) as address:
        yield address


def stored(db: Path, study: str):
    with open_store(db) as store:
        return store.con.execute("SELECT trial, key, status, config, metrics, error FROM evaluations "
                                 "WHERE study = ? ORDER BY trial", [study]).fetchall()


def test_search_on_a_ray_cluster_stores_the_local_pools_rows(cluster, tmp_path):
    from infersim.cli.main import cli

    data = yaml.safe_load((ROOT / "examples" / "studies" / "sim-llama8b.yaml").read_text())
    data["evaluator"]["options"]["requests"] = 100
    data["budget"] = 12
    study = tmp_path / "study.yaml"
    study.write_text(yaml.safe_dump(data))
    local_db, ray_db = tmp_path / "local.duckdb", tmp_path / "ray.duckdb"
    res = CliRunner().invoke(cli, ["search", str(study), "--db", str(local_db), "--workers", "2", "--no-progress"])
    assert res.exit_code == 0, res.output
    proc = subprocess.run([sys.executable, "-m", "infersim.cli.main", "search", str(study), "--backend", "ray",
                           "--address", cluster, "--db", str(ray_db), "--no-progress"],
                          env=env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    rows = stored(local_db, data["name"])
    assert len(rows) == 12 and any(r[2] == "ok" for r in rows)
    assert rows == stored(ray_db, data["name"])
