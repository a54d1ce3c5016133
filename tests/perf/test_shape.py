import numpy as np
import pytest

from infersim.perf.shape import causal_pairs, window_cap


def brute_pairs(chunk, past, window):
    total = 0
    for j in range(1, chunk + 1):
        keys = past + j
        total += keys if window is None else min(keys, window)
    return total


@pytest.mark.parametrize("chunk,past,window", [
    (1, 0, None), (7, 0, None), (128, 0, None), (10, 5, None), (100, 50, 64), (100, 0, 64),
    (5, 200, 64), (64, 0, 64), (1, 63, 64), (33, 31, 64), (512, 1000, 4096),
])
def test_causal_pairs_matches_brute_force(chunk, past, window):
    assert causal_pairs(chunk, past, window) == brute_pairs(chunk, past, window)


def test_causal_pairs_vectorized():
    rng = np.random.default_rng(0)
    chunks = rng.integers(1, 300, 40)
    pasts = rng.integers(0, 500, 40)
    got = causal_pairs(chunks, pasts, 128)
    assert np.array_equal(got, [brute_pairs(int(c), int(p), 128) for c, p in zip(chunks, pasts)])


def test_full_prefill_is_triangle():
    n = 1024
    assert causal_pairs(n, 0) == n * (n + 1) / 2


def test_window_cap():
    assert np.array_equal(window_cap([10, 100, 5000], 4096), [10, 100, 4096])
    assert np.array_equal(window_cap([10, 5000]), [10, 5000])
