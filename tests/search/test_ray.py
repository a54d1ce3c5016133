"""The Ray backend gives the same results as the local one (a local Ray instance, ray.init() without address)."""

import pytest

from infersim.search import InlineBackend, open_store, run_study, study_from_dict

from .helpers import synthetic_study

ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'infersim[ray]' to test the Ray backend")


def stored(db, name):
    with open_store(db) as store:
        return store.con.execute("SELECT trial, key, status, config, metrics FROM evaluations WHERE study = ? "
                                 "ORDER BY trial", [name]).fetchall()


def test_ray_matches_in_process_results(tmp_path):
    from infersim.search.backends import RayBackend

    study = synthetic_study(space={"x": {"type": "float", "low": -3.0, "high": 3.0}, "c": ["a", "b"]},
                            optimizer={"kind": "tpe", "batch_size": 6}, budget=24)
    static = study_from_dict({
        "name": "static", "workload": "chat",
        "space": {"model": "llama-3.1-8b", "device": ["h100-sxm", "h200"], "tp": [1, 2, 3],
                  "max_batch": {"type": "int", "low": 1, "high": 256, "log": True}},
        "slo": {"ttft_p99_s": 1.0}, "objectives": [{"min": "usd_per_million_output_tokens"}]})
    local_db, ray_db = tmp_path / "local.duckdb", tmp_path / "ray.duckdb"
    with open_store(local_db, write=True) as store:
        run_study(study, store, InlineBackend())
        run_study(static, store, InlineBackend())
    with open_store(ray_db, write=True) as store, RayBackend(workers=2) as backend:
        run_study(study, store, backend)
        run_study(static, store, backend)
    for name in (study.name, static.name):
        assert stored(local_db, name) == stored(ray_db, name)
