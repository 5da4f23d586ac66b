"""BLEU, ROUGE-L and CIDEr-D against pycocoevalcap on random and adversarial sets, and bootstrap stats."""

from __future__ import annotations

import random

import numpy as np
import pytest
from conftest import coco_dicts
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.rouge.rouge import Rouge

from captune.metrics import MetricResources, _ngrams, _ptb_python, _tokenized
from captune.metrics.bleu import bleu, bleu_from_stats, bleu_stats
from captune.metrics.cider import cider, cider_from_stats, cider_stats
from captune.metrics.rouge import rouge, rouge_from_stats, rouge_stats

WORDS = ["a", "the", "dog", "cat", "man", "woman", "on", "in", "riding", "sitting", "bench", "red", "big", "small", "two", ".", ",", "-lrb-", "café", "中", "3/4"]


def sentence(rng: random.Random, lo: int = 0, hi: int = 14, vocab=WORDS) -> str:
    return " ".join(rng.choice(vocab) for _ in range(rng.randint(lo, hi)))


def random_set(seed: int, n: int, max_refs: int = 10, hi: int = 14, vocab=WORDS):
    rng = random.Random(seed)
    preds = [sentence(rng, 0, hi, vocab) for _ in range(n)]
    refs = [[sentence(rng, 0, hi, vocab) for _ in range(rng.randint(1, max_refs))] for _ in range(n)]
    return preds, refs


def adversarial_set():
    rng = random.Random(7)
    long = " ".join(rng.choice(WORDS) for _ in range(200))
    preds = ["", "a a a a a a", "dog", long, "the dog", "caf\u00e9 \u4e2d", "a b c d e", "x", "1\u00a01/2 cup", ""]
    refs = [["a dog"], ["a a a a", "a", "a a a a a a a a"], ["dog"] * 10, [long, long[:300]], ["", "the dog"],
            ["caf\u00e9 \u4e2d \u4e2d"], ["e d c b a"], ["y", "z"], ["1\u00a01/2 cup of tea"], ["", ""]]
    return preds, refs


REALISTIC = (
    ["a man riding a wave on top of a surfboard", "a plate of food with broccoli and rice",
     "two giraffes standing next to a tree", "a red double decker bus on a city street",
     "a cat sitting on a laptop keyboard"],
    [["a surfer rides a large wave in the ocean", "a man on a surfboard riding a wave",
      "a person surfing on a big wave", "surfer in black wetsuit riding a wave", "a man surfs a wave"],
     ["a plate with rice broccoli and chicken", "a white plate topped with rice and vegetables",
      "food on a plate including broccoli", "a meal of rice and broccoli on a plate", "a dinner plate with food"],
     ["two giraffes near a tall tree", "a pair of giraffes standing by a tree",
      "giraffes standing in a field next to trees", "two giraffe eating from a tree", "two giraffes in a zoo"],
     ["a red bus driving down a street", "a double decker bus in the city",
      "red double decker bus driving on the road", "a bus parked on a city street", "a tall red bus"],
     ["a cat lying on a laptop", "a cat sitting on a computer keyboard", "a kitten on a laptop",
      "a cat rests on an open laptop", "a gray cat on a keyboard"]],
)

SETS = {
    "random": random_set(1, 200),
    "one_ref": random_set(2, 50, max_refs=1),
    "long": random_set(3, 20, max_refs=3, hi=200),
    "adversarial": adversarial_set(),
    "realistic": REALISTIC,
}


def reference(scorer, preds, refs):
    gts, res = coco_dicts(preds, refs)
    kwargs = {"verbose": 0} if isinstance(scorer, Bleu) else {}
    return scorer.compute_score(gts, res, **kwargs)


@pytest.mark.parametrize("name", list(SETS))
def test_bleu_equals_pycocoevalcap(name):
    preds, refs = SETS[name]
    score, per_image = reference(Bleu(4), preds, refs)
    result = bleu(preds, refs)
    assert np.allclose([result.corpus[f"bleu_{k}"] for k in range(1, 5)], score, rtol=0, atol=1e-12)
    mine = np.array([[d[f"bleu_{k}"] for k in range(1, 5)] for d in result.per_item])
    assert np.allclose(mine, np.array(per_image).T, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", list(SETS))
def test_rouge_equals_pycocoevalcap(name):
    preds, refs = SETS[name]
    score, per_image = reference(Rouge(), preds, refs)
    result = rouge(preds, refs)
    assert result.corpus["rouge_l"] == pytest.approx(score, abs=1e-12)
    assert np.allclose([d["rouge_l"] for d in result.per_item], per_image, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", list(SETS))
def test_cider_equals_pycocoevalcap(name):
    preds, refs = SETS[name]
    score, per_image = reference(Cider(), preds, refs)
    result = cider(preds, refs)
    assert result.corpus["cider"] == pytest.approx(score, abs=1e-9)
    assert np.allclose([d["cider"] for d in result.per_item], per_image, rtol=0, atol=1e-9)


def test_a_vocabulary_of_60000_words_scores_as_the_reference():
    rng = random.Random(4)
    vocab = [f"w{i}" for i in range(60_000)]  # near the 16-bit radix sort's one-pass limit, 4-grams past 63 bits
    preds, refs = random_set(5, 30, max_refs=3, vocab=vocab)
    preds = [p + " " + " ".join(rng.sample(vocab, 3)) for p in preds]
    assert bleu(preds, refs).corpus["bleu_4"] == pytest.approx(reference(Bleu(4), preds, refs)[0][3], abs=1e-12)
    assert cider(preds, refs).corpus["cider"] == pytest.approx(reference(Cider(), preds, refs)[0], abs=1e-9)
    assert rouge(preds, refs).corpus["rouge_l"] == pytest.approx(reference(Rouge(), preds, refs)[0], abs=1e-12)


def tokenized_sets():
    from ptb_corpus import captions, odd_strings

    rng = random.Random(8)
    caps = captions(1500, seed=21) + odd_strings(300, seed=22) + ["", "", " ", "."]
    rng.shuffle(caps)
    preds = caps[:300]
    refs = [[caps[rng.randrange(300, len(caps))] for _ in range(rng.randint(1, 6))] for _ in preds]
    plain = [" ".join(w for w in c.split() if w.isalpha()) or "x" for c in caps[:1500]]
    return {"adversarial": (preds, refs), "plain": (plain[:200], [[p] + plain[200 + 5 * i : 204 + 5 * i]
                                                                   for i, p in enumerate(plain[:200])])}


@pytest.mark.parametrize("name", ["adversarial", "plain"])
def test_token_ids_from_the_tokenizer_give_the_same_scores(name):
    """Text the Python tokenizer has just made is counted from its token ids, not split again."""
    preds, refs = tokenized_sets()[name]
    res = MetricResources()
    p, r = _tokenized(preds, refs, "python", res)
    assert _ptb_python.encodings(res.recent_tokenizer(), p, [c for rs in r for c in rs]) is not None
    fast = [metric(p, r, resources=res) for metric in (bleu, rouge, cider)]
    assert _ngrams.corpus(p, r, res).plain == (name == "plain")
    slow = [metric(p, r) for metric in (bleu, rouge, cider)]  # no token ids: strings split and interned
    for a, b in zip(fast, slow):
        assert a.corpus == pytest.approx(b.corpus, abs=1e-12)
        assert list(a.per_item[0]) == list(b.per_item[0])
        values = [np.array([list(d.values()) for d in x.per_item]) for x in (a, b)]
        assert np.allclose(*values, rtol=0, atol=1e-12)
    assert rouge(p, r).corpus["rouge_l"] == pytest.approx(reference(Rouge(), p, r)[0], abs=1e-12)
    assert cider(p, r).corpus["cider"] == pytest.approx(reference(Cider(), p, r)[0], abs=1e-9)


def test_lcs_of_empty_sequences():
    from captune.metrics.rouge import lcs_lengths

    empty = np.zeros(0, np.int64)
    one = np.array([0]), np.array([2])
    assert lcs_lengths(np.array([3, 4]), *one, empty, np.array([0]), np.array([0])).tolist() == [0]
    assert lcs_lengths(empty, np.array([0]), np.array([0]), np.array([3, 4]), *one).tolist() == [0]


@pytest.mark.parametrize("seed", [0, 1])
def test_bootstrap_stats_equal_pycocoevalcap_on_resamples(seed):
    preds, refs = SETS["random"]
    rng = np.random.default_rng(seed)
    b, c, r = bleu_stats(preds, refs), cider_stats(preds, refs), rouge_stats(preds, refs)
    for _ in range(3):
        idx = rng.integers(0, len(preds), len(preds))  # with duplicates: each gets its own image id
        p2, r2 = [preds[i] for i in idx], [refs[i] for i in idx]
        assert list(bleu_from_stats(b, idx).values()) == pytest.approx(reference(Bleu(4), p2, r2)[0], abs=1e-12)
        assert cider_from_stats(c, idx)["cider"] == pytest.approx(reference(Cider(), p2, r2)[0], abs=1e-9)
        assert rouge_from_stats(r, idx)["rouge_l"] == pytest.approx(reference(Rouge(), p2, r2)[0], abs=1e-12)


def test_resample_of_a_subset_changes_document_frequencies():
    preds, refs = SETS["realistic"]
    idx = np.array([0, 0, 0, 3])
    expected = reference(Cider(), [preds[i] for i in idx], [refs[i] for i in idx])[0]
    assert cider_from_stats(cider_stats(preds, refs), idx)["cider"] == pytest.approx(expected, abs=1e-9)
    assert expected != pytest.approx(cider(preds, refs).corpus["cider"])


def test_image_without_references_is_an_error():
    with pytest.raises(ValueError, match="no reference"):
        bleu(["a"], [[]])
