import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from infersim.search.pareto import dominates, pareto_mask, pareto_ranks


def brute_front(values, directions):
    """Definition: a point is on the front when no other point dominates it."""
    signs = np.array([1.0 if d == "min" else -1.0 for d in directions])
    x = np.asarray(values, dtype=float) * signs
    out = []
    for i in range(len(x)):
        dominated = any(np.all(x[j] <= x[i]) and np.any(x[j] < x[i]) for j in range(len(x)) if j != i)
        out.append(not dominated)
    return np.array(out)


@pytest.mark.parametrize("k", [1, 2, 3, 4])
@pytest.mark.parametrize("seed", range(6))
def test_front_matches_brute_force(k, seed):
    rng = np.random.default_rng(seed)
    n = 150
    # coarse integer values give many ties and duplicate points, the hard cases
    values = rng.integers(0, 12, size=(n, k)).astype(float)
    directions = [("min", "max")[int(b)] for b in rng.integers(0, 2, size=k)]
    assert np.array_equal(pareto_mask(values, directions), brute_front(values, directions))


@pytest.mark.parametrize("k, coarse", [(1, True), (2, False), (2, True), (3, True), (3, False), (4, True)])
def test_ranks_peel_fronts_like_brute_force(k, coarse):
    """Every path (one objective, the O(n log n) two-objective sort, ENS-BS for more), with ties
    and duplicate points when ``coarse``."""
    rng = np.random.default_rng(3 + k)
    values = rng.integers(0, 6, size=(120, k)).astype(float) if coarse else rng.normal(size=(120, k))
    directions = [("min", "max")[j % 2] for j in range(k)]
    ranks = pareto_ranks(values, directions)
    remaining = np.arange(len(values))
    rank = 0
    while remaining.size:
        front = brute_front(values[remaining], directions)
        assert (ranks[remaining[front]] == rank).all()
        remaining = remaining[~front]
        rank += 1
    assert ranks.max() == rank - 1


def test_equal_points_both_stay_on_the_front_and_dominated_are_kept_marked():
    values = [[1, 5], [1, 5], [2, 6], [0, 9]]
    assert pareto_mask(values, ["min", "min"]).tolist() == [True, True, False, True]
    assert pareto_ranks(values, ["min", "min"]).tolist() == [0, 0, 1, 0]
    assert dominates([1, 5], [2, 6], ["min", "min"])
    assert not dominates([1, 5], [1, 5], ["min", "min"])
    assert dominates([2, 6], [1, 5], ["max", "max"])


def test_bad_input():
    with pytest.raises(ValueError):
        pareto_mask([[1, 2]], ["min"])
    with pytest.raises(ValueError):
        pareto_mask([[1, 2]], ["min", "up"])
    assert pareto_mask(np.empty((0, 2)), ["min", "min"]).size == 0


def brute_ranks(values, directions):
    """Front numbers by the definition, O(n^2) per front: peel the points no remaining point dominates."""
    signs = np.array([1.0 if d == "min" else -1.0 for d in directions])
    x = np.asarray(values, dtype=float) * signs
    le = (x[:, None, :] <= x[None, :, :]).all(axis=2)
    lt = (x[:, None, :] < x[None, :, :]).any(axis=2)
    dom = le & lt  # dom[j, i]: j dominates i
    ranks = np.full(len(x), -1)
    remaining = np.ones(len(x), dtype=bool)
    rank = 0
    while remaining.any():
        front = remaining & ~(dom & remaining[:, None]).any(axis=0)
        ranks[front] = rank
        remaining &= ~front
        rank += 1
    return ranks


@settings(max_examples=150, deadline=None)
@given(data=st.data(), k=st.integers(2, 5), n=st.integers(0, 80), levels=st.sampled_from([2, 4, 1000]))
def test_ranks_match_the_definition_on_random_points(data, k, n, levels):
    """Fast sorts (two objectives: O(n log n); three or more: ENS-BS) against the O(n^2)
    definition, on random points with many ties (few levels) or almost none."""
    values = np.array(data.draw(st.lists(st.lists(st.integers(0, levels - 1), min_size=k, max_size=k),
                                         min_size=n, max_size=n)), dtype=float).reshape(n, k)
    directions = data.draw(st.lists(st.sampled_from(["min", "max"]), min_size=k, max_size=k))
    expected = brute_ranks(values, directions)
    assert np.array_equal(pareto_ranks(values, directions), expected)
    assert np.array_equal(pareto_mask(values, directions), expected == 0)
