"""Paired bootstrap and permutation test: parity with pycocoevalcap on resampled lists, and the
behaviour on systems that are equal or truly different."""

import random

import numpy as np
import pytest
from pycocoevalcap.bleu.bleu_scorer import BleuScorer
from pycocoevalcap.cider.cider_scorer import CiderScorer

from captune.evaluate.resample import (
    BleuStat,
    CiderStat,
    MeanStat,
    paired_test,
    resample_blocks,
    swap_blocks,
)
from captune.metrics.bleu import bleu_from_sums, bleu_rows
from captune.metrics.cider import CiderD

WORDS = ["a", "the", "red", "blue", "green", "circle", "square", "star", "big", "small", "left", "of", "right", "above", "below", "on", "with"]


def corpus(n, seed=0):
    rng = random.Random(seed)

    def sent(lo=1, hi=12):
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi)))

    refs = [[sent(3) for _ in range(rng.randint(1, 5))] for _ in range(n)]
    # Hypotheses near a reference (some overlap), so BLEU-4 and CIDEr are far from 0.
    a = [rng.choice(r) + " " + sent(0, 2) if rng.random() < 0.6 else sent() for r in refs]
    b = [sent() for _ in refs]
    return a, b, refs


def pycoco(preds, refs, idx):
    bleu, cider = BleuScorer(n=4), CiderScorer(n=4, sigma=6.0)
    for i in idx:
        bleu += (preds[i], refs[i])
        cider += (preds[i], refs[i])
    return bleu.compute_score(option="closest")[0], cider.compute_score()[0]


def test_bootstrap_resamples_match_pycocoevalcap_on_each_resampled_list():
    a, b, refs = corpus(12)
    counts = next(resample_blocks(12, 6, seed=3))
    assert counts.shape == (6, 12) and np.all(counts.sum(axis=1) == 12)
    assert (counts == 0).any() and (counts > 1).any()  # images left out and drawn twice
    cider = CiderD([a, b], refs).corpus(counts)
    for r, row in enumerate(counts):
        idx = np.repeat(np.arange(12), row.astype(int))  # the resampled list, duplicates included
        for s, preds in enumerate((a, b)):
            slow_bleu, slow_cider = pycoco(preds, refs, idx)
            assert bleu_from_sums(row @ bleu_rows(preds, refs)) == pytest.approx(
                slow_bleu, rel=1e-12, abs=1e-300
            )
            assert cider[s, r] == pytest.approx(slow_cider, rel=1e-12)


def test_full_sample_values_equal_pycocoevalcap():
    a, b, refs = corpus(40, seed=1)
    results = paired_test([BleuStat(a, b, refs), CiderStat(a, b, refs)], 40, resamples=50)
    for preds, side in ((a, "a"), (b, "b")):
        bleu, cider = pycoco(preds, refs, range(40))
        assert getattr(results["bleu_4"], side) == pytest.approx(bleu[3], rel=1e-12)
        assert getattr(results["bleu_1"], side) == pytest.approx(bleu[0], rel=1e-12)
        assert getattr(results["cider"], side) == pytest.approx(cider, rel=1e-12)
    assert results["bleu_4"].a > 0.1 and results["cider"].a > results["cider"].b


def test_identical_systems_give_a_degenerate_interval_at_zero():
    a, _, refs = corpus(30)
    values = np.random.default_rng(0).random(30)
    results = paired_test(
        [BleuStat(a, a, refs), CiderStat(a, a, refs), MeanStat("rouge_l", values, values)], 30, resamples=200
    )
    for r in results.values():
        assert r.delta == 0 and r.ci_low == 0 and r.ci_high == 0 and r.p_value == 1.0


def test_b_better_on_some_images_and_equal_on_others_is_significant():
    rng = np.random.default_rng(0)
    a = rng.random(200)
    b = a.copy()
    better = rng.random(200) < 0.4
    b[better] += rng.uniform(0.05, 0.15, better.sum())
    r = paired_test([MeanStat("clipscore", a, b)], 200, resamples=1000, seed=0)["clipscore"]
    assert r.delta == pytest.approx(b.mean() - a.mean())
    assert 0 < r.ci_low < r.delta < r.ci_high
    assert r.p_value == pytest.approx(1 / 1001)  # no permutation reaches the observed difference


def test_corpus_metrics_b_better_on_some_images_is_significant():
    a, _, refs = corpus(150, seed=2)
    b = list(a)
    rng = random.Random(5)
    for i in rng.sample(range(150), 60):
        b[i] = refs[i][0]  # a reference itself: better on these images, equal elsewhere
    results = paired_test([BleuStat(a, b, refs), CiderStat(a, b, refs)], 150, resamples=1000)
    for name in ("bleu_4", "cider"):
        assert results[name].ci_low > 0 and results[name].p_value < 0.01


def test_no_difference_in_distribution_is_not_significant():
    rng = np.random.default_rng(1)
    a, b = rng.random(300), rng.random(300)  # two draws of the same quality
    r = paired_test([MeanStat("x", a, b)], 300, resamples=1000)["x"]
    assert r.ci_low < 0 < r.ci_high and r.p_value > 0.05


def test_missing_values_are_left_out_of_means():
    r = paired_test([MeanStat("attr", [1.0, None, 0.0, 1.0], [1.0, 1.0, None, None])], 4, resamples=20)[
        "attr"
    ]
    assert r.a == pytest.approx(2 / 3) and r.b == 1.0


def test_same_seed_same_draws_and_blocks_cover_every_resample():
    first = np.concatenate(list(resample_blocks(50, 70, seed=9)))
    again = np.concatenate(list(resample_blocks(50, 70, seed=9)))
    other = np.concatenate(list(resample_blocks(50, 70, seed=10)))
    assert first.shape == (70, 50) and np.array_equal(first, again) and not np.array_equal(first, other)
    swaps = np.concatenate(list(swap_blocks(50, 70, seed=9)))
    assert swaps.shape == (70, 50) and 0.4 < swaps.mean() < 0.6


def test_interval_is_the_percentile_of_pycocoevalcap_deltas_on_the_same_resamples():
    a, b, refs = corpus(10, seed=4)
    n, resamples, seed = 10, 8, 11
    result = paired_test([BleuStat(a, b, refs), CiderStat(a, b, refs)], n, resamples=resamples, seed=seed)
    slow = {"bleu_4": [], "cider": []}
    for row in np.concatenate(list(resample_blocks(n, resamples, seed))):
        idx = np.repeat(np.arange(n), row.astype(int))
        (bleu_a, cider_a), (bleu_b, cider_b) = pycoco(a, refs, idx), pycoco(b, refs, idx)
        slow["bleu_4"].append(bleu_b[3] - bleu_a[3])
        slow["cider"].append(cider_b - cider_a)
    for name, deltas in slow.items():
        low, high = np.percentile(deltas, [2.5, 97.5])
        assert result[name].ci_low == pytest.approx(low, rel=1e-9, abs=1e-12)
        assert result[name].ci_high == pytest.approx(high, rel=1e-9, abs=1e-12)


def test_batched_cider_equals_the_metrics_per_resample_statistics():
    from captune.metrics.cider import cider_from_stats, cider_stats

    a, b, refs = corpus(25, seed=6)
    counts = np.concatenate(list(resample_blocks(25, 10, seed=2)))
    batched = CiderD([a, b], refs).corpus(counts)
    for s, preds in enumerate((a, b)):
        stats = cider_stats(preds, refs)
        for r, row in enumerate(counts):
            one = cider_from_stats(stats, np.repeat(np.arange(25), row.astype(int)))["cider"]
            assert batched[s, r] == pytest.approx(one, rel=1e-12)
