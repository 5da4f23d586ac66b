"""The windowed CLIP-burst pairs are exactly the all-pairs rule's."""

from __future__ import annotations

import numpy as np
import pytest

from captune.agent.dedupe_pairs import clip_burst_pairs


def all_pairs(embeddings: np.ndarray, timestamps: np.ndarray, threshold: float, burst: float) -> np.ndarray:
    """The rule written plainly: every pair i < j, NaN times never close."""
    sims = embeddings @ embeddings.T
    close = np.abs(timestamps[:, None] - timestamps[None, :]) <= burst  # NaN compares False
    i, j = np.nonzero(np.triu((sims >= threshold) & close, k=1))
    return np.stack([i, j], axis=1).astype(np.int64)


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_hand_example():
    e = unit(np.array([[1, 0], [1, 0.1], [0, 1], [1, 0.05], [1, 0]], dtype=np.float64))
    t = np.array([0.0, 5.0, 6.0, 100.0, np.nan])
    # 0-1 alike and 5 s apart; 2 is unlike; 3 is alike but 95 s later; 4 has no time
    assert clip_burst_pairs(e, t, 0.9, 10.0).tolist() == [[0, 1]]
    assert clip_burst_pairs(e, t, 0.9, 100.0).tolist() == [[0, 1], [0, 3], [1, 3]]
    assert clip_burst_pairs(e, t, 0.9, 4.0).tolist() == []


def test_empty_and_undated_inputs_give_no_pairs():
    assert clip_burst_pairs(np.zeros((0, 4)), np.zeros(0), 0.8, 10).shape == (0, 2)
    e = np.ones((3, 2)) / np.sqrt(2)
    assert clip_burst_pairs(e, np.full(3, np.nan), 0.8, 10).shape == (0, 2)


@pytest.mark.parametrize("seed", range(6))
def test_same_pairs_as_all_pairs_on_random_data(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(300, 900))  # several blocks of 256
    centres = unit(rng.normal(size=(5, 16)))
    e = unit(centres[rng.integers(5, size=n)] + 0.15 * rng.normal(size=(n, 16))).astype(np.float32)
    t = np.round(rng.uniform(0, 1000, size=n), 0)  # whole seconds: many ties in time
    t[rng.random(n) < 0.05] = np.nan
    expected = all_pairs(e, t, 0.8, 10.0)
    got = clip_burst_pairs(e, t, 0.8, 10.0)
    assert len(expected) > 50  # the data has pairs to find, some across blocks
    np.testing.assert_array_equal(got, expected)


def test_pairs_across_block_boundaries_with_equal_times():
    rng = np.random.default_rng(0)
    e = unit(np.ones((600, 8)) + 0.01 * rng.normal(size=(600, 8)))
    t = np.repeat([0.0, 1.0, 50.0], 200)  # blocks of 256 cut through runs of equal times
    got = clip_burst_pairs(e, t, 0.9, 1.0)
    assert len(got) == 400 * 399 // 2 + 200 * 199 // 2
    np.testing.assert_array_equal(got, all_pairs(e, t, 0.9, 1.0))
