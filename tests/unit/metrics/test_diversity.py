"""Diversity and novelty of predictions."""

from __future__ import annotations

import random

import numpy as np
import pytest
from pycocoevalcap.bleu.bleu_scorer import BleuScorer

from captune.metrics.base import MetricUnavailable
from captune.metrics.diversity import diversity, novelty


def test_values_on_a_small_set():
    preds = ["a dog runs", "a dog sits", "a cat runs fast"]
    result = diversity(preds)
    assert result.corpus["distinct_1"] == pytest.approx(6 / 10)  # a dog runs sits cat fast
    assert result.corpus["distinct_2"] == pytest.approx(6 / 7)  # "a dog" twice
    assert result.corpus["vocab_size"] == 6
    assert result.corpus["mean_length"] == pytest.approx(10 / 3)


def test_self_bleu_is_pycocoevalcap_sentence_bleu_against_the_others():
    rng = random.Random(3)
    words = ["a", "b", "c", "d", "e", "the", "dog"]
    preds = [" ".join(rng.choice(words) for _ in range(rng.randint(0, 9))) for _ in range(80)]
    expected = []
    for i, p in enumerate(preds):
        scorer = BleuScorer(n=4)
        scorer += (p, preds[:i] + preds[i + 1 :])
        expected.append(scorer.compute_score(option="closest")[1][3][0])
    result = diversity(preds)
    assert np.allclose([d["self_bleu"] for d in result.per_item], expected, rtol=0, atol=1e-12)
    assert result.corpus["self_bleu"] == pytest.approx(np.mean(expected), abs=1e-12)


def test_identical_predictions_are_maximally_repetitive():
    result = diversity(["a dog on a red bench"] * 4)
    assert result.corpus["self_bleu"] == pytest.approx(1.0)
    assert result.corpus["distinct_2"] == pytest.approx(5 / 20)


def test_needs_two_predictions():
    with pytest.raises(MetricUnavailable, match="two predictions"):
        diversity(["a dog"])


def test_novelty_compares_tokenized_text():
    train = ["A dog on a bench.", "Two cats!"]
    preds = ["a dog on a bench", "two cats", "a horse"]
    result = novelty(preds, train_captions=train)
    assert result.corpus["novel_fraction"] == pytest.approx(1 / 3)
    assert [d["novel_fraction"] for d in result.per_item] == [0.0, 0.0, 1.0]
    with pytest.raises(MetricUnavailable, match="training captions"):
        novelty(preds)
