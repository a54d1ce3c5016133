"""The search loop against the database: resume without duplicates, failures, dead workers, one writer."""

import json
import subprocess
import sys
import textwrap
import time

import pytest

from infersim.errors import InfersimError
from infersim.search import InlineBackend, LocalBackend, load_results, open_store, run_study
from infersim.search.space import canonical_json, point_key

from .helpers import synthetic_study

SPACE = {"x": {"type": "int", "low": 0, "high": 9}, "c": ["a", "b", "c"]}


def rows(db, study):
    with open_store(db) as store:
        return store.con.execute("SELECT key, trial, status, config, metrics, error FROM evaluations "
                                 "WHERE study = ? ORDER BY trial", [study]).fetchall()


def test_every_point_stored_once_with_its_config_and_metrics(db):
    study = synthetic_study(space=SPACE)
    with open_store(db, write=True) as store:
        p = run_study(study, store)
    assert (p.asked, p.evaluated, p.cached) == (30, 30, 0)
    stored = rows(db, study.name)
    assert len(stored) == 30 == len({r[0] for r in stored})
    for key, _, status, config, metrics, _ in stored:
        cfg = json.loads(config)
        assert key == point_key(study.namespace, canonical_json(cfg))
        f = (cfg["x"] - 3) ** 2 + (cfg["c"] != "b")  # the synthetic function, computed here
        assert status == "ok" and json.loads(metrics)["f"] == f


def test_resume_skips_stored_points_and_never_duplicates(db):
    study = synthetic_study(space=SPACE)
    with open_store(db, write=True) as store:
        first = run_study(study, store, budget=12)
    assert (first.evaluated, first.cached) == (12, 0)
    with open_store(db, write=True) as store:
        second = run_study(study, store)
    assert (second.asked, second.evaluated, second.cached) == (30, 18, 12)
    with open_store(db, write=True) as store:
        third = run_study(study, store)
    assert (third.evaluated, third.cached) == (0, 30)
    stored = rows(db, study.name)
    assert len(stored) == 30 == len({r[0] for r in stored})
    assert sorted(r[1] for r in stored) == list(range(30))  # trial numbers of the first asks


def test_interrupted_run_keeps_what_it_committed(db):
    study = synthetic_study(space={"x": {"type": "int", "low": 0, "high": 199}})
    reported = []

    def interrupt_after_first_results(progress):
        reported.append(progress.evaluated)
        raise KeyboardInterrupt  # as Ctrl-C would, between two commits

    with open_store(db, write=True) as store:
        with pytest.raises(KeyboardInterrupt):
            run_study(study, store, on_progress=interrupt_after_first_results)
    done = reported[0]
    assert 0 < done < 200
    assert len(rows(db, study.name)) == done  # everything reported was committed, nothing more
    with open_store(db, write=True) as store:
        again = run_study(study, store)
    assert (again.evaluated, again.cached) == (200 - done, done)
    assert len({r[0] for r in rows(db, study.name)}) == 200


def test_adaptive_optimizer_resumes_to_the_same_sequence(db, tmp_path):
    study = synthetic_study(space={"x": {"type": "int", "low": 0, "high": 30}, "c": ["a", "b", "c"]},
                            optimizer={"kind": "tpe", "batch_size": 5}, budget=40)
    with open_store(db, write=True) as store:
        run_study(study, store, budget=15)
    after_first = len(rows(db, study.name))
    with open_store(db, write=True) as store:
        rest = run_study(study, store)
    other = tmp_path / "other.duckdb"
    with open_store(other, write=True) as store:
        run_study(study, store)  # the same study in one go
    straight = rows(other, study.name)
    # the resumed run replays the first 15 trials from the database, so TPE asks the same points after them
    assert [r[:4] for r in rows(db, study.name)] == [r[:4] for r in straight]
    assert rest.evaluated == len(straight) - after_first


def test_changed_constraints_refresh_feasibility(db):
    study = synthetic_study(space=SPACE)
    with open_store(db, write=True) as store:
        assert run_study(study, store).feasible == 30
    strict = synthetic_study(space=SPACE, constraints=["f <= 1"])
    with open_store(db, write=True) as store:
        p = run_study(strict, store)
        results = load_results(store, study.name)
    expected = sum(1 for x in range(10) for c in "abc" if (x - 3) ** 2 + (c != "b") <= 1)
    assert (p.evaluated, p.feasible) == (0, expected)
    assert sum(pt.feasible for pt in results.points) == expected


def test_same_name_with_a_different_workload_is_refused(db):
    with open_store(db, write=True) as store:
        run_study(synthetic_study(space=SPACE), store)
        other = synthetic_study(space=SPACE, evaluator={"kind": "synthetic", "options": {"optimum": {"x": 1}}})
        with pytest.raises(InfersimError, match="different workload"):
            run_study(other, store)


FAKES = {"kind": "custom", "target": "tests.search.fakes:{}"}


def test_raising_evaluation_is_recorded_and_the_study_goes_on(db):
    study = synthetic_study(space={"x": {"type": "int", "low": 0, "high": 9}},
                            evaluator={**FAKES, "target": FAKES["target"].format("RaisingEvaluator")})
    with open_store(db, write=True) as store:
        p = run_study(study, store)
    assert (p.evaluated, p.failed) == (10, 1)
    by_x = {json.loads(r[3])["x"]: r for r in rows(db, study.name)}
    assert by_x[3][2] == "failed" and "ValueError: bad point x=3" in by_x[3][5] and by_x[3][4] is None
    assert all(by_x[x][2] == "ok" and json.loads(by_x[x][4])["f"] == x * x for x in range(10) if x != 3)


def test_killed_worker_loses_no_other_result(db):
    study = synthetic_study(space={"x": {"type": "int", "low": 0, "high": 11}},
                            evaluator={**FAKES, "target": FAKES["target"].format("KillingEvaluator")})
    with open_store(db, write=True) as store, LocalBackend(workers=2) as backend:
        p = run_study(study, store, backend)
    assert (p.evaluated, p.failed) == (12, 1)
    by_x = {json.loads(r[3])["x"]: r for r in rows(db, study.name)}
    assert by_x[5][2] == "failed" and "worker process died" in by_x[5][5]
    assert all(by_x[x][2] == "ok" and json.loads(by_x[x][4])["f"] == x * x for x in range(12) if x != 5)


def test_workers_that_die_on_every_point_stop_the_search_with_a_clear_error(db):
    study = synthetic_study(space={"x": {"type": "int", "low": 0, "high": 7}},
                            evaluator={**FAKES, "target": FAKES["target"].format("DyingEvaluator")})
    with open_store(db, write=True) as store, LocalBackend(workers=2) as backend:
        with pytest.raises(InfersimError, match="worker processes die before finishing any evaluation"):
            run_study(study, store, backend)


def test_local_pool_gives_the_same_results_as_in_process(db, tmp_path):
    study = synthetic_study(space={"x": {"type": "float", "low": -3.0, "high": 3.0}, "c": ["a", "b"]},
                            optimizer={"kind": "tpe", "batch_size": 6}, budget=30)
    with open_store(db, write=True) as store:
        run_study(study, store, InlineBackend())
    other = tmp_path / "pool.duckdb"
    with open_store(other, write=True) as store, LocalBackend(workers=2) as backend:
        run_study(study, store, backend)
    assert [r[:5] for r in rows(db, study.name)] == [r[:5] for r in rows(other, study.name)]


_HOLDER = textwrap.dedent("""
    import sys, time
    from infersim.search import open_store
    store = open_store(sys.argv[1], write=True)
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
    store.close()
""")


def test_second_writer_refused_or_waits_and_readers_are_told(db):
    with open_store(db, write=True):
        pass  # create the file
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(db), "3"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(InfersimError, match=r"another infersim search is writing.*pid \d+"):
            open_store(db, write=True)
        with pytest.raises(InfersimError, match="running infersim search holds the database"):
            open_store(db)
        start = time.monotonic()
        with open_store(db, write=True, wait=True) as store:  # queues behind the holder
            assert time.monotonic() - start > 0.5
            assert store.study_names() == []
    finally:
        holder.wait(timeout=30)
    assert holder.returncode == 0
