"""CIDEr-D with term counts past the int32 square (the n-gram corpus stores counts as int32)."""

from __future__ import annotations

import numpy as np

from captune.metrics.cider import CiderD, cider


def test_resampled_cider_with_a_count_whose_square_passes_int32():
    """A word repeated 50,000 times: its count squared (2.5e9) must not wrap around."""
    long = " ".join(["a"] * 50_000)
    preds = [long, "a dog runs", "a cat sits"]
    refs = [[long, "a b"], ["a dog runs fast"], ["the cat sits"]]
    expected = cider(preds, refs).corpus["cider"]
    assert expected > 0
    got = CiderD([preds], refs).corpus(np.ones((1, 3)))[0, 0]
    assert np.isclose(got, expected, rtol=1e-12)
