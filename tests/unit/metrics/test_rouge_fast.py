"""ROUGE-L's fast paths: the bit-parallel LCS of mixed long and short pairs against a plain dynamic
program, the sentences split again because ``split(" ")`` differs from ``split()``, and per-image
scores equal to pycocoevalcap's."""

from __future__ import annotations

import random
import sys
from itertools import chain

import numpy as np
import pytest
from conftest import coco_dicts
from pycocoevalcap.rouge.rouge import Rouge

from captune.metrics import MetricResources, _ngrams, _tokenized
from captune.metrics.rouge import lcs_lengths, odd_sentences, rouge, space_split_ids

LENGTHS = [0, 1, 2, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 150, 200, 257]


def dp_lcs(a: list, b: list) -> int:
    row = [0] * (len(b) + 1)
    for x in a:
        prev = 0
        for j, y in enumerate(b):
            prev, row[j + 1] = row[j + 1], prev + 1 if x == y else max(row[j + 1], row[j])
    return row[-1]


def flat(seqs: list[list[int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    lens = np.array([len(s) for s in seqs], np.int64)
    return np.array(list(chain.from_iterable(seqs)), np.int64), np.cumsum(lens) - lens, lens


def random_pairs(seed: int, n: int, long_pairs: int) -> tuple[list[list[int]], list[list[int]]]:
    """Pairs of every combination of the lengths in LENGTHS (long ones rarely both long), alphabets
    of 2 to 40 symbols so that LCS ranges from all to little of the shorter sequence."""
    rng = random.Random(seed)
    a, b = [], []
    for i in range(n):
        la, lb = rng.choice(LENGTHS), rng.choice(LENGTHS[:13])
        if i < long_pairs:
            lb = rng.choice(LENGTHS[13:])
        la, lb = (la, lb) if rng.random() < 0.5 else (lb, la)
        k = rng.choice([2, 3, 5, 40])
        a.append([rng.randrange(k) for _ in range(la)])
        b.append([rng.randrange(k) for _ in range(lb)])
    return a, b


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lcs_of_mixed_long_and_short_pairs_equals_dynamic_programming(seed):
    a, b = random_pairs(seed, 400, long_pairs=12)
    expected = [dp_lcs(x, y) for x, y in zip(a, b)]
    assert lcs_lengths(*flat(a), *flat(b)).tolist() == expected  # two flat arrays
    ids, starts, lens = flat(a + b)
    n = len(a)
    assert lcs_lengths(ids, starts[:n], lens[:n], ids, starts[n:], lens[n:]).tolist() == expected  # one


def test_lcs_with_ids_beyond_int16():
    a, b = random_pairs(3, 100, long_pairs=4)
    expected = [dp_lcs(x, y) for x, y in zip(a, b)]
    a, b = ([[40_000 + 70_000 * v for v in s] for s in seqs] for seqs in (a, b))
    assert lcs_lengths(*flat(a), *flat(b)).tolist() == expected


def all_whitespace() -> list[str]:
    return [chr(i) for i in range(sys.maxunicode + 1) if chr(i).isspace()]


ODD_SENTENCES = ["", " ", "  ", "a  b", " a", "a ", "a\tb", "5\xa01/2 cups", "a\u3000b", "a\u2009b", "\u3000",
                 "\x85", "a \u205f b"]
NOT_ODD = ["a", "a b c", "caf\u00e9 \u4e2d", "\u65e5\u672c\u3001\u8a9e", "a\x01b", "it\u2019s", "x\u200by",
           "\u1681 \u2030 \u3001", "5 1/2", "\u00c2 \u00e2\u0080 a", "a\ud800b"]


def test_odd_sentences_are_those_split_differently():
    sentences = ODD_SENTENCES + NOT_ODD + ["a" + ch + "b" for ch in all_whitespace() if ch not in "\n"]
    random.Random(0).shuffle(sentences)
    expected = [i for i, s in enumerate(sentences) if s.split(" ") != s.split()]
    assert len(expected) == len(ODD_SENTENCES) + len(all_whitespace()) - 2  # "a b" is not odd; no "\n"
    assert odd_sentences(sentences).tolist() == expected
    with_break = sentences + ["a\nb", "c d"]  # a line break inside a sentence: every one is checked
    assert odd_sentences(with_break).tolist() == expected + [len(sentences)]
    assert odd_sentences([]).tolist() == [] and odd_sentences([""]).tolist() == [0]
    assert odd_sentences(["a", ""]).tolist() == [1] and odd_sentences(["", "a"]).tolist() == [0]


@pytest.mark.parametrize("text", ["ascii", "latin-1"])
def test_odd_sentences_of_narrow_text(text):
    """Text that Latin-1 encodes is read byte for byte (no UTF-8)."""
    narrow = (lambda s: s.isascii()) if text == "ascii" else (lambda s: max(s, default="") <= "\xff")
    sentences = [s for s in ODD_SENTENCES + NOT_ODD if narrow(s)]
    sentences += ["a\x1fb", "\xa0", "x \xe9\xa0y"] if text == "latin-1" else ["a\x1fb", "a\x0bb c"]
    expected = [i for i, s in enumerate(sentences) if s.split(" ") != s.split()]
    assert len(expected) >= 9 and len(expected) < len(sentences)
    assert odd_sentences(sentences).tolist() == expected


def odd_corpus(seed: int, n: int):
    rng = random.Random(seed)
    words = ["a", "dog", "the", "1/2", "caf\u00e9", "\u4e2d"]
    pool = ODD_SENTENCES + NOT_ODD + ["x\u00a01/2 dog", "a  the", "dog \u3000"]

    def sentence():
        if rng.random() < 0.3:
            return rng.choice(pool)
        return " ".join(rng.choice(words) for _ in range(rng.choice([0, 1, 3, 12, 70, 140])))

    return [sentence() for _ in range(n)], [[sentence() for _ in range(rng.randint(1, 5))] for _ in range(n)]


@pytest.mark.parametrize("seed", [0, 1])
def test_space_split_ids_reuse_corpus_ids_with_the_split_of_rouge(seed):
    """Same id exactly where the ``split(" ")`` tokens are the same string, anywhere in the corpus."""
    preds, refs = odd_corpus(seed, 60)
    c = _ngrams.corpus(preds, refs)
    assert not c.plain
    ids, lens = space_split_ids(c, preds, refs)
    sentences = list(chain.from_iterable(chain((p,), r) for p, r in zip(preds, refs)))
    assert lens.tolist() == [len(s.split(" ")) for s in sentences]
    first = {}
    tokens = [t for s in sentences for t in s.split(" ")]
    assert [first.setdefault(t, i) for t, i in zip(tokens, ids.tolist())] == ids.tolist()
    assert len(set(first.values())) == len(first)
    old, new = np.cumsum(c.sent_len) - c.sent_len, np.cumsum(lens) - lens
    for i, s in enumerate(sentences):  # ordinary sentences keep their corpus ids
        if s.split(" ") == s.split():
            assert ids[new[i] : new[i] + lens[i]].tolist() == c.ids[old[i] : old[i] + lens[i]].tolist()


@pytest.mark.parametrize("seed", [0, 1])
def test_rouge_equals_pycocoevalcap_on_odd_long_and_short_captions(seed):
    preds, refs = odd_corpus(seed, 60)
    per_image = Rouge().compute_score(*coco_dicts(preds, refs))[1]
    result = rouge(preds, refs)
    assert [d["rouge_l"] for d in result.per_item] == list(per_image)  # the same floats
    res = MetricResources()
    p, r = _tokenized(preds, refs, "python", res)  # the corpus from the tokenizer's token ids
    tokenized = rouge(p, r, resources=res)
    assert [d["rouge_l"] for d in tokenized.per_item] == list(Rouge().compute_score(*coco_dicts(p, r))[1])
