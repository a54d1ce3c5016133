"""Optimizers on synthetic functions with known optima (see infersim.search.evaluators.synthetic)."""

import math

import pytest

from infersim.search import InlineBackend, load_results, make_optimizer, open_store, pareto_front, run_study
from infersim.errors import InfersimError
from infersim.search.optimizers import OPTIMIZERS, Feedback, Optimizer

from .helpers import synthetic_study

MIXED = {"x": {"type": "int", "low": 0, "high": 9}, "y": {"type": "float", "low": 0.0, "high": 1.0},
         "c": ["a", "b", "c"]}


def best_f(db, study):
    with open_store(db, write=True) as store:
        run_study(study, store, InlineBackend())
        points = load_results(store, study.name).points
    return min(p.metrics["f"] for p in points if p.status == "ok"), len(points)


def brute_min_f(study):
    """f at every grid point, computed from its definition."""
    opt = {"x": 3, "y": 0.25, "c": "b"}
    return min((p["x"] - 3) ** 2 + (p["y"] - 0.25) ** 2 + (p["c"] != opt["c"]) for p in study.space.grid())


def test_grid_finds_the_exact_optimum(db):
    study = synthetic_study(space=MIXED)  # y grid: 0, .25, .5, .75, 1 -> contains the optimum
    best, n = best_f(db, study)
    assert n == 10 * 5 * 3
    assert best == brute_min_f(study) == 0.0


def test_random_search_gets_close_within_its_budget(db):
    # ~10 of 300 samples hit x = 3 and c = b (1 in 30); the closest of their y is well within 0.3 of 0.25
    best, _ = best_f(db, synthetic_study(space=MIXED, optimizer="random", budget=300, seed=1))
    assert best < 0.1


def test_tpe_finds_the_optimum_within_a_budget(db):
    best, _ = best_f(db, synthetic_study(space=MIXED, optimizer={"kind": "tpe", "batch_size": 8}, budget=80))
    assert best < 0.01


def test_cmaes_finds_a_continuous_optimum(db):
    space = {"x": {"type": "float", "low": -5.0, "high": 5.0}, "y": {"type": "float", "low": -5.0, "high": 5.0}}
    study = synthetic_study(space=space, optimizer="cmaes", budget=160,
                            evaluator={"kind": "synthetic", "options": {"optimum": {"x": 1.5, "y": -2.0}}})
    best, _ = best_f(db, study)
    assert best < 1e-3


def test_nsga2_approaches_the_known_pareto_set(db):
    # g1 = x^2, g2 = (x - 2)^2: Pareto set 0 <= x <= 2, front g2 = (sqrt(g1) - 2)^2
    space = {"x": {"type": "float", "low": -10.0, "high": 10.0}}
    study = synthetic_study(space=space, objectives=[{"min": "g1"}, {"min": "g2"}],
                            optimizer={"kind": "nsga2", "batch_size": 20, "options": {"population_size": 20}},
                            budget=400)
    with open_store(db, write=True) as store:
        run_study(study, store, InlineBackend())
        results = load_results(store, study.name)
    front = pareto_front(results)
    xs = sorted(p.config["x"] for p in front)
    assert len(front) >= 10
    # the sampled front hugs the true Pareto set (a sample just outside it stays non-dominated
    # only while no sample lies between it and the set) and spreads over it
    assert all(-0.1 <= x <= 2.1 for x in xs)
    inside = [p for p in front if 0.0 <= p.config["x"] <= 2.0]
    assert len(inside) >= 0.9 * len(front)
    assert xs[0] < 0.3 and xs[-1] > 1.7
    for p in inside:  # points of the true set lie on the analytic front g2 = (sqrt(g1) - 2)^2
        g1, g2 = p.metrics["g1"], p.metrics["g2"]
        assert g2 == pytest.approx((math.sqrt(g1) - 2.0) ** 2, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("kind", ["random", "tpe", "nsga2"])
def test_same_seed_same_sequence(kind):
    study = synthetic_study(space=MIXED, optimizer=kind, budget=30, objectives=[{"min": "f"}])

    def sequence():
        opt = make_optimizer(kind, study.space, study.scoring, seed=5)
        seq = []
        for _ in range(3):
            trials = opt.ask(10)
            for t in trials:
                f = (t.config["x"] - 3) ** 2 + (t.config["y"] - 0.25) ** 2
                opt.tell(t, Feedback("ok", True, (f,), ()))
            seq += [t.config for t in trials]
        return seq

    assert sequence() == sequence()


def test_grid_is_exhausted_then_asks_nothing():
    study = synthetic_study(space={"x": [1, 2, 3]})
    opt = make_optimizer("grid", study.space, study.scoring)
    assert [t.config["x"] for t in opt.ask(10)] == [1, 2, 3]
    assert opt.ask(10) == []


NUMERIC = {"x": {"type": "int", "low": 0, "high": 9}, "y": {"type": "float", "low": 0.0, "high": 1.0}}


@pytest.mark.parametrize("key", sorted(OPTIMIZERS))
def test_every_registered_optimizer_keeps_the_ask_tell_contract(key):
    """Over every registered optimizer: reachable from a study file under its key, asks at most n
    trials numbered in ask order with configurations inside the space, takes feedback (feasible, failed
    and infeasible) and proposes the same sequence for the same seed."""
    cls = OPTIMIZERS[key]
    assert cls.key == key and issubclass(cls, Optimizer)
    study = synthetic_study(space=NUMERIC, optimizer=key, budget=40)
    assert study.optimizer == key and study.batch_size >= 1
    assert cls.check(1, study.space.params) is None

    def run(seed):
        opt = make_optimizer(key, study.space, study.scoring, seed=seed, options={})
        assert isinstance(opt, cls)
        seen = []
        for _ in range(3):
            trials = opt.ask(6)
            assert len(trials) <= 6
            for t in trials:
                assert t.number == len(seen)
                assert set(t.config) == {"x", "y"}
                assert 0 <= t.config["x"] <= 9 and 0.0 <= t.config["y"] <= 1.0
                f = (t.config["x"] - 3) ** 2 + (t.config["y"] - 0.25) ** 2
                fb = [Feedback("ok", True, (f,), ()), Feedback("failed", False, None, ()),
                      Feedback("ok", False, (f,), (1.0,))][len(seen) % 3]
                opt.tell(t, fb)
                seen.append(t.config)
        return seen

    first = run(3)
    assert first and first == run(3)


def test_unknown_optimizer_names_the_registered_keys():
    with pytest.raises(InfersimError, match="optimizer") as err:
        synthetic_study(optimizer="anneal", budget=5)
    for key in OPTIMIZERS:
        assert key in str(err.value)
    with pytest.raises(InfersimError, match="options.sigma"):
        synthetic_study(space=NUMERIC, optimizer={"kind": "tpe", "options": {"sigma0": 1.0}}, budget=5)
