import numpy as np
import pytest

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
