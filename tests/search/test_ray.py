"""The Ray backend gives the same results as the local one (a local Ray instance, ray.init() without address)."""

import pytest

from infersim.search import InlineBackend, open_store, run_study, study_from_dict

from .helpers import synthetic_study

ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'infersim[ray]' to test the Ray backend")


@pytest.fixture(scope="module")
def ray_backend():
    """One local Ray instance (two workers) for the module: starting Ray takes seconds."""
    from infersim.search.backends import RayBackend

    with RayBackend(workers=2) as backend:
        yield backend


def stored(db, name):
    with open_store(db) as store:
        return store.con.execute("SELECT trial, key, status, config, metrics, error FROM evaluations "
                                 "WHERE study = ? ORDER BY trial", [name]).fetchall()


def same_on_ray_as_in_process(tmp_path, ray_backend, *studies):
    local_db, ray_db = tmp_path / "local.duckdb", tmp_path / "ray.duckdb"
    with open_store(local_db, write=True) as store:
        for study in studies:
            run_study(study, store, InlineBackend())
    with open_store(ray_db, write=True) as store:
        for study in studies:
            run_study(study, store, ray_backend)
    for study in studies:
        rows = stored(local_db, study.name)
        assert rows and rows == stored(ray_db, study.name)


def test_ray_matches_in_process_results(tmp_path, ray_backend):
    study = synthetic_study(space={"x": {"type": "float", "low": -3.0, "high": 3.0}, "c": ["a", "b"]},
                            optimizer={"kind": "tpe", "batch_size": 6}, budget=24)
    static = study_from_dict({
        "name": "static", "workload": "chat",
        "space": {"model": "llama-3.1-8b", "device": ["h100-sxm", "h200"], "tp": [1, 2, 3],
                  "max_batch": {"type": "int", "low": 1, "high": 256, "log": True}},
        "slo": {"ttft_p99_s": 1.0}, "objectives": [{"min": "usd_per_million_output_tokens"}]})
    same_on_ray_as_in_process(tmp_path, ray_backend, study, static)


def test_ray_matches_in_process_simulation_results(tmp_path, ray_backend):
    simulated = study_from_dict({
        "name": "simulated", "evaluator": {"kind": "simulation", "options": {"requests": 100, "length_sigma": 0.5}},
        "workload": {"input_tokens": 512, "output_tokens": 128, "rate_rps": 8},
        "space": {"model": "llama-3.1-8b", "device": ["h100-sxm", "l40s"], "tp": [1, 2, 3], "max_batch": [8, 64]},
        "slo": {"ttft_p99_s": 0.5, "tpot_p90_s": 0.02},
        "objectives": [{"min": "usd_per_million_output_tokens"}, {"max": "goodput_tokens_per_s_per_device"}]})
    same_on_ray_as_in_process(tmp_path, ray_backend, simulated)
