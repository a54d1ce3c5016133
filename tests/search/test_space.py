import itertools

import numpy as np
import pytest

from infersim.search.space import Categorical, Condition, FloatRange, IntRange, Space, canonical_json, point_key


def test_int_grid_steps_and_log_doublings():
    assert IntRange("a", low=2, high=11, step=3).grid() == [2, 5, 8, 11]
    assert IntRange("b", low=1, high=256, log=True).grid() == [1, 2, 4, 8, 16, 32, 64, 128, 256]
    assert IntRange("c", low=3, high=20, log=True).grid() == [3, 6, 12, 20]


def test_float_grid_linear_and_log():
    assert FloatRange("f", low=0.0, high=1.0, grid_points=3).grid() == [0.0, 0.5, 1.0]
    assert FloatRange("g", low=1.0, high=100.0, log=True, grid_points=3).grid() == pytest.approx([1.0, 10.0, 100.0])


def test_grid_is_the_cartesian_product_when_unconditional():
    space = Space((Categorical("d", values=("x", "y")), IntRange("t", low=1, high=3), FloatRange("u", low=0, high=1,
                                                                                                 grid_points=2)))
    got = [tuple(c.values()) for c in space.grid()]
    assert got == list(itertools.product(["x", "y"], [1, 2, 3], [0.0, 1.0]))
    assert space.grid_size() == 12


def test_conditional_parameter_takes_its_default_and_collapses_duplicates():
    # ep searched only for the MoE model (looked up through a model attribute)
    is_moe = {"dense": False, "moe": True}
    space = Space((Categorical("model", values=("dense", "moe")),
                   IntRange("ep", low=1, high=4, log=True, when=Condition((("model.is_moe", (True,)),)), default=1),
                   Categorical("tp", values=(1, 2))),
                  lookup=lambda key, cfg: is_moe[cfg["model"]])
    points = list(space.grid())
    # brute force: all (model, ep, tp), with ep forced to 1 for the dense model, deduplicated
    expected = {("dense", 1, tp) for tp in (1, 2)} | {("moe", ep, tp) for ep in (1, 2, 4) for tp in (1, 2)}
    assert len(points) == len(expected) == space.grid_size()
    assert {(p["model"], p["ep"], p["tp"]) for p in points} == expected


def test_condition_on_an_earlier_parameter():
    space = Space((Categorical("sched", values=("fcfs", "chunked")),
                   IntRange("chunk", low=256, high=1024, log=True,
                            when=Condition((("sched", ("chunked",)),)), default=0)))
    assert [(p["sched"], p["chunk"]) for p in space.grid()] == [("fcfs", 0), ("chunked", 256), ("chunked", 512),
                                                                 ("chunked", 1024)]


def test_samples_stay_in_range_and_are_seeded():
    space = Space((IntRange("i", low=3, high=17, step=2), IntRange("l", low=1, high=1000, log=True),
                   FloatRange("f", low=1e-3, high=1.0, log=True), Categorical("c", values=("a", "b"))))
    a = [space.sample(np.random.default_rng(7)) for _ in range(3)]
    b = [space.sample(np.random.default_rng(7)) for _ in range(3)]
    assert a == b
    rng = np.random.default_rng(0)
    samples = [space.sample(rng) for _ in range(2000)]
    assert {s["i"] for s in samples} == set(range(3, 18, 2))
    assert all(1 <= s["l"] <= 1000 and isinstance(s["l"], int) for s in samples)
    assert all(1e-3 <= s["f"] <= 1.0 for s in samples)
    # log-uniform: about as many samples in [1, 31] as in [32, 1000] (each is half the log-range)
    low = sum(s["l"] < 32 for s in samples)
    assert 800 < low < 1200


def test_point_key_is_stable_and_order_independent():
    a = canonical_json({"b": 1, "a": "x"})
    assert a == canonical_json({"a": "x", "b": 1}) == '{"a":"x","b":1}'
    assert point_key("s", a) == point_key("s", a)
    assert point_key("s", a) != point_key("t", a)
