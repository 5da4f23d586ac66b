"""How varied the predictions are, and how many are new: reference-free corpus statistics.

Computed on PTB-tokenized predictions (lower-cased, punctuation dropped), the same tokens the
COCO metrics see.

Group ``diversity``:

- ``distinct_1``, ``distinct_2``: distinct n-grams / all n-grams, over all predictions together
  (0 when the predictions hold no n-gram of that size).
- ``self_bleu``: the mean over predictions of the BLEU-4 of each prediction against *all the other
  predictions* as its references, with pycocoevalcap's sentence-level BLEU (as its per-image
  scores): n-gram counts clipped by the largest count in any one other prediction, brevity penalty
  from the closest other length (ties to the shorter), smoothing constants 1e-15 and 1e-9. Higher
  means more repetitive. (Texygen's Self-BLEU uses NLTK's smoothing and differs numerically.)
  Needs at least two predictions.
- ``vocab_size``: distinct tokens over all predictions.
- ``mean_length``: mean number of tokens per prediction.

Group ``novelty`` (needs ``train_captions``, the training set's captions):

- ``novel_fraction``: the share of predictions whose tokenized text is not the tokenized text of
  any training caption (so "A dog." and "a dog" are the same caption).
"""

from __future__ import annotations

import numpy as np

from captune.metrics import _ngrams
from captune.metrics.base import MetricResult, MetricUnavailable, register
from captune.metrics.bleu import _bleu

OUTPUTS = ("distinct_1", "distinct_2", "self_bleu", "vocab_size", "mean_length")


def distinct_n(c: _ngrams.Corpus, n: int) -> float:
    """Distinct n-grams over all n-grams of the predictions (``c`` built with no references)."""
    hyp = c.order == n
    total = int(c.tf[hyp].sum())
    return float(len(np.unique(c.gram[hyp])) / total) if total else 0.0


def self_bleu_scores(c: _ngrams.Corpus) -> np.ndarray:
    """Per-prediction BLEU-4 against all other predictions (see the module docstring)."""
    first = np.r_[True, c.gram[1:] != c.gram[:-1]]  # entries are sorted by n-gram
    starts, group = np.flatnonzero(first), np.cumsum(first) - 1
    top = np.maximum.reduceat(c.tf, starts)[group]  # largest count of the n-gram in a prediction
    is_top = c.tf == top
    n_top = np.add.reduceat(is_top.astype(np.int64), starts)[group]
    second = np.maximum.reduceat(np.where(is_top, 0, c.tf), starts)[group]
    # the largest count among the *other* predictions
    others = np.where(is_top & (n_top == 1), second, top)
    matched = np.minimum(c.tf, others)
    index = c.sent * 4 + c.order - 1
    n = c.n_images
    correct = np.bincount(index, weights=matched, minlength=4 * n).reshape(n, 4)
    lens = c.sent_len
    guess = np.maximum(lens[:, None] - np.arange(4)[None, :], 0).astype(float)
    return _bleu(correct, guess, lens.astype(float), _closest_other_length(lens).astype(float))[:, 3]


def _closest_other_length(lens: np.ndarray) -> np.ndarray:
    """For each length, the closest length among the others (ties to the shorter)."""
    values, counts = np.unique(lens, return_counts=True)
    pos = np.searchsorted(values, lens)
    far = 10**12
    lo = np.where(pos >= 1, values[np.maximum(pos - 1, 0)], -far)  # next shorter length
    hi = np.where(pos + 1 < len(values), values[np.minimum(pos + 1, len(values) - 1)], far)  # next longer
    nearest = np.where(lens - lo <= hi - lens, lo, hi)
    return np.where(counts[pos] >= 2, lens, nearest)  # another prediction of the same length wins


@register("diversity", outputs=OUTPUTS, tokenized=True)
def diversity(predictions: list[str], references=None, images=None, **options) -> MetricResult:
    """Distinct-1/2, Self-BLEU, vocabulary size and mean length of tokenized predictions."""
    if len(predictions) < 2:
        raise MetricUnavailable("diversity needs at least two predictions")
    c = _ngrams.build(predictions, [[]] * len(predictions), allow_no_refs=True, resources=options.get("resources"))
    lengths = c.sent_len.astype(float)
    self_bleu = self_bleu_scores(c)
    corpus = {
        "distinct_1": distinct_n(c, 1),
        "distinct_2": distinct_n(c, 2),
        "self_bleu": float(np.mean(self_bleu)),
        "vocab_size": float(len(np.unique(c.gram[c.order == 1]))),
        "mean_length": float(np.mean(lengths)),
    }
    per_item = [{"self_bleu": float(b), "mean_length": float(n)} for b, n in zip(self_bleu, lengths)]
    return MetricResult(corpus, per_item)


@register("novelty", outputs=("novel_fraction",), tokenized=True)
def novelty(predictions: list[str], references=None, images=None, *, train_captions=None,
            tokenizer: str = "python", **options) -> MetricResult:
    """Share of predictions not found verbatim (after PTB tokenization) among ``train_captions``."""
    if not train_captions:
        raise MetricUnavailable("novel_fraction needs the training captions (option train_captions, "
                                "CLI --train-captions FILE)")
    from captune.metrics.ptb import tokenize

    seen = set(tokenize(list(train_captions), backend=tokenizer))
    novel = [0.0 if p in seen else 1.0 for p in predictions]
    return MetricResult({"novel_fraction": float(np.mean(novel))}, [{"novel_fraction": v} for v in novel])
