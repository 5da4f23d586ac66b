"""The shared n-gram counts against a plain Python count, on the edges of the radix ordering."""

from __future__ import annotations

import random
from collections import Counter

import numpy as np
import pytest

from captune.metrics import _ngrams


def expected_pairs(preds: list[str], refs: list[list[str]]):
    """(n, n-gram of ids, sentence, count) sorted as the corpus lists them: by n, then by the
    n-gram's ids (ids in order of first appearance), then by sentence."""
    sentences = [s.split() for p, r in zip(preds, refs) for s in [p, *r]]
    ids: dict[str, int] = {}
    encoded = [[ids.setdefault(w, len(ids)) for w in s] for s in sentences]
    counts = Counter((n, tuple(s[i : i + n]), k) for n in range(1, 5) for k, s in enumerate(encoded)
                     for i in range(len(s) - n + 1))
    return sorted((n, gram, k, tf) for (n, gram, k), tf in counts.items()), len(sentences)


def assert_counts_match(preds: list[str], refs: list[list[str]]):
    c = _ngrams.build(preds, refs, allow_no_refs=True)
    pairs, n_sent = expected_pairs(preds, refs)
    distinct = list(dict.fromkeys((n, gram) for n, gram, _, _ in pairs))
    gram_id = {g: i for i, g in enumerate(distinct)}
    assert c.gram.tolist() == [gram_id[n, g] for n, g, _, _ in pairs]
    assert c.sent.tolist() == [k for _, _, k, _ in pairs]
    assert c.tf.tolist() == [tf for *_, tf in pairs]
    assert c.order.tolist() == [n for n, *_ in pairs]
    assert c.bounds.tolist() == [sum(n < m for n, *_ in pairs) for m in range(1, 6)]
    assert c.n_grams == len(distinct) and len(c.sent_len) == n_sent
    image = c.sent_image[c.sent]
    runs = [i for i in range(len(pairs)) if i == 0 or (c.gram[i], image[i]) != (c.gram[i - 1], image[i - 1])]
    assert c.group_starts.tolist() == runs
    assert c.group_sizes.tolist() == np.diff([*runs, len(pairs)]).tolist()


def vocabulary_set(size: int, seed: int):
    """Captions that use exactly ``size`` distinct words, some of them often (shared n-grams)."""
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(size)]
    common = words[:30]
    rare = words[30:]
    rng.shuffle(rare)
    captions = [" ".join(rare[i : i + 7]) for i in range(0, len(rare), 7)]
    captions += [" ".join(rng.choice(common) for _ in range(rng.randint(0, 9))) for _ in range(400)]
    captions += [" ".join(common[:30])]  # every common word at least once
    rng.shuffle(captions)
    preds = captions[: len(captions) // 4]
    rest = captions[len(captions) // 4 :]
    refs = [rest[i::len(preds)] for i in range(len(preds))]
    return preds, refs


@pytest.mark.parametrize("size", [65_535, 65_536, 65_537, 70_000])
def test_counts_with_vocabularies_around_16_bit_keys(size):
    """Token keys (and the sentence-start key, one above the largest id) past 16 bits sort in
    several radix passes."""
    preds, refs = vocabulary_set(size, seed=size)
    assert len({w for s in [*preds, *(r for rs in refs for r in rs)] for w in s.split()}) == size
    assert_counts_match(preds, refs)


def test_counts_with_empty_and_short_captions():
    preds = ["", "a", "a b", "a b c", "a b c d e", "", "b a b a b a"]
    refs = [[""], ["a", ""], ["a b a b"], ["c", "c b a"], ["a b c d e", "e d c b a"], ["", ""], ["a b"]]
    assert_counts_match(preds, refs)


def test_counts_when_no_caption_holds_a_word():
    c = _ngrams.build(["", ""], [[""], ["", ""]])
    assert len(c.gram) == c.n_grams == 0 and c.bounds.tolist() == [0] * 5
    assert c.sent_len.tolist() == [0] * 5


def test_counts_on_random_captions():
    rng = random.Random(3)
    words = ["a", "b", "c", "d", "e", "f"]
    preds = [" ".join(rng.choice(words) for _ in range(rng.randint(0, 12))) for _ in range(60)]
    refs = [[" ".join(rng.choice(words) for _ in range(rng.randint(0, 12))) for _ in range(rng.randint(1, 5))]
            for _ in preds]
    assert_counts_match(preds, refs)
