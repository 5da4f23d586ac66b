"""BLEU-1..4 exactly as pycocoevalcap's ``Bleu(4)`` computes them.

Corpus BLEU from summed clipped n-gram counts with the "closest" reference length (ties go to
the shorter reference), the reference code's ``tiny = 1e-15`` and ``small = 1e-9`` constants, and
its per-image scores (the same formula on one image's counts). Counting is vectorized over the
whole set (``captune.metrics._ngrams``); it equals pycocoevalcap to floating-point rounding.

``bleu_stats`` keeps the per-image counts, so ``bleu_from_stats(stats, indices)`` gives corpus
BLEU on any resample of the images (duplicates included) without recounting:

    stats = bleu_stats(preds_tok, refs_tok)
    boot = [bleu_from_stats(stats, rng.integers(0, n, n))["bleu_4"] for _ in range(1000)]

For many resamples at once (the bootstrap of ``captune compare``), ``bleu_rows`` gives the counts
as one row per image and ``bleu_from_sums`` the scores of any stack of summed rows:
``bleu_from_sums(draw_counts @ bleu_rows(preds_tok, refs_tok))``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from captune.metrics import _ngrams
from captune.metrics.base import MetricResult, register

TINY, SMALL = 1e-15, 1e-9
OUTPUTS = ("bleu_1", "bleu_2", "bleu_3", "bleu_4")


@dataclass(frozen=True)
class BleuStats:
    """Per-image sufficient statistics of corpus BLEU."""

    testlen: np.ndarray  # (N,) prediction length in tokens
    reflen: np.ndarray  # (N,) closest reference length
    guess: np.ndarray  # (N, 4) n-grams in the prediction
    correct: np.ndarray  # (N, 4) clipped n-gram matches


def bleu_stats(preds_tok: list[str], refs_tok: list[list[str]], resources=None) -> BleuStats:
    """Counts for tokenized predictions and their references (one list of references per image);
    ``resources`` (a ``MetricResources``) shares the n-gram counts with CIDEr-D and ROUGE-L."""
    c = _ngrams.corpus(preds_tok, refs_tok, resources)
    testlen = c.sent_len[c.hyp_sent]
    guess = np.maximum(testlen[:, None] - np.arange(4)[None, :], 0)
    return BleuStats(testlen, _closest_reflen(c, testlen), guess, _clipped_matches(c))


def _closest_reflen(c: _ngrams.Corpus, testlen: np.ndarray) -> np.ndarray:
    """``min((abs(l - testlen), l) for l in reflens)[1]`` for every image."""
    ref_sents = np.flatnonzero(c.sent_is_ref)
    lens = c.sent_len[ref_sents]
    dist = np.abs(lens - testlen[c.sent_image[ref_sents]])
    scale = int(lens.max(initial=0)) + 1
    best = np.minimum.reduceat(dist * scale + lens, np.cumsum(c.ref_count) - c.ref_count)
    return best % scale


def _clipped_matches(c: _ngrams.Corpus) -> np.ndarray:
    """Sum over each prediction's n-grams of min(count, max count in one reference)."""
    m = c.matches  # n-grams of a prediction found in its references (others match nothing)
    if not len(m.hyp):
        return np.zeros((c.n_images, 4), np.int64)
    matched = np.minimum(c.tf.take(m.hyp), np.maximum.reduceat(c.tf.take(m.ref), m.offsets))
    index = c.sent_image.take(c.sent.take(m.hyp)) * 4 + c.order.take(m.hyp) - 1
    return np.bincount(index, weights=matched, minlength=4 * c.n_images).reshape(-1, 4).astype(np.int64)


def _bleu(correct: np.ndarray, guess: np.ndarray, testlen, reflen) -> np.ndarray:
    """BLEU-1..4 along the last axis, with the reference code's order of operations."""
    bleu = np.ones(np.shape(testlen), float)
    out = []
    for k in range(4):
        bleu = bleu * ((correct[..., k] + TINY) / (guess[..., k] + SMALL))
        out.append(bleu ** (1.0 / (k + 1)))
    out = np.stack(out, axis=-1)
    ratio = (testlen + TINY) / (reflen + SMALL)
    penalty = np.where(ratio < 1, np.exp(1 - 1 / np.where(ratio < 1, ratio, 1.0)), 1.0)
    return out * np.asarray(penalty)[..., None]


def rows(stats: BleuStats) -> np.ndarray:
    """(N, 10) per image: ``[hyp length, closest ref length, guess_1..4, correct_1..4]``."""
    return np.column_stack([stats.testlen, stats.reflen, stats.guess, stats.correct]).astype(float)


def bleu_rows(preds_tok: list[str], refs_tok: list[list[str]], resources=None) -> np.ndarray:
    """``rows(bleu_stats(preds_tok, refs_tok))``: the counts to sum over any resample."""
    return rows(bleu_stats(list(preds_tok), [list(r) for r in refs_tok], resources))


def bleu_from_sums(sums: np.ndarray) -> np.ndarray:
    """Corpus BLEU-1..4 of summed ``rows`` (one image's row gives its own score): ``[..., 10] -> [..., 4]``."""
    sums = np.asarray(sums, dtype=float)
    return _bleu(sums[..., 6:10], sums[..., 2:6], sums[..., 0], sums[..., 1])


def bleu_from_stats(stats: BleuStats, indices: np.ndarray | None = None) -> dict[str, float]:
    """Corpus BLEU-1..4 on the images ``indices`` (a resample, duplicates allowed; default all)."""
    idx = slice(None) if indices is None else np.asarray(indices)
    lengths = [stats.testlen[idx].sum(), stats.reflen[idx].sum()]
    sums = np.concatenate([lengths, stats.guess[idx].sum(axis=0), stats.correct[idx].sum(axis=0)])
    return dict(zip(OUTPUTS, map(float, bleu_from_sums(sums))))


def bleu_per_image(stats: BleuStats) -> np.ndarray:
    """(N, 4) per-image BLEU-1..4, as pycocoevalcap's per-image scores."""
    return bleu_from_sums(rows(stats))


@register("bleu", outputs=OUTPUTS, tokenized=True)
def bleu(predictions: list[str], references: list[list[str]], images=None, **options) -> MetricResult:
    """BLEU-1..4 (pycocoevalcap ``Bleu(4)``) of PTB-tokenized captions."""
    stats = bleu_stats(predictions, references, options.get("resources"))
    per_image = bleu_per_image(stats)
    per_item = [{"bleu_1": a, "bleu_2": b, "bleu_3": c, "bleu_4": d} for a, b, c, d in zip(*per_image.T.tolist())]
    return MetricResult(bleu_from_stats(stats), per_item)
