"""CIDEr-D exactly as pycocoevalcap's ``Cider()`` computes it.

For n = 1..4: tf-idf vectors with document frequencies counted over the evaluated images'
references (an image counts once per n-gram) and ``log(number of images)``; the similarity of a
prediction and a reference is the dot product with the prediction's weights clipped to the
reference's (``min(h, r) * r``) over the product of the norms, times ``exp(-delta^2 / (2 * 6^2))``
where delta is the difference in bigram counts, as the reference code measures length. An image's
score is the mean over n of the summed similarities, divided by its number of references, x10;
the corpus score is the mean over images. Vectorized over the whole set; equals pycocoevalcap to
floating-point rounding.

``cider_stats`` + ``cider_from_stats(stats, indices)`` recompute the corpus score on a resample
of the images: document frequencies and ``log(N)`` are those of the resample, where a duplicated
image counts as many times as it was drawn, exactly as pycocoevalcap run on the resampled lists.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from captune.metrics import _ngrams
from captune.metrics.base import MetricResult, register

SIGMA = 6.0


@dataclass(frozen=True)
class CiderStats:
    """What CIDEr-D needs to be recomputed for any multiset of the images."""

    n_images: int
    n_sentences: int
    n_grams: int
    pair_gram: np.ndarray  # (P,) n-gram of each (n-gram, image) pair found in references
    pair_image: np.ndarray  # (P,) image of the pair
    gram: np.ndarray  # (E,) n-gram of each (n-gram, sentence) count, unigrams first, then bigrams...
    tf: np.ndarray  # (E,) its count
    sent: np.ndarray  # (E,) its sentence
    bounds: np.ndarray  # (5,) where the counts of each n start, then their end
    match_hyp: np.ndarray  # (M,) prediction entry matched by ...
    match_ref: np.ndarray  # (M,) ... the reference entry of the same n-gram and image (in entry order)
    match_sent: np.ndarray  # (M,) the reference's sentence
    match_bounds: np.ndarray  # (5,) where the matches of each n start, then their end
    hyp_sent: np.ndarray  # (N,) prediction sentence of each image
    ref_sents: np.ndarray  # (R,) reference sentences, image by image
    ref_image: np.ndarray  # (R,) their images
    ref_count: np.ndarray  # (N,)
    penalty: np.ndarray  # (R,) Gaussian length penalty of each reference against its prediction


def cider_stats(preds_tok: list[str], refs_tok: list[list[str]]) -> CiderStats:
    c = _ngrams.corpus(preds_tok, refs_tok)
    starts = c.group_starts  # runs of one n-gram in one image, the prediction's entry first
    has_ref = c.entry_is_ref.take(starts) | (c.group_sizes > 1)
    pair_start = starts[has_ref]
    m = c.matches
    ref_sents = np.flatnonzero(c.sent_is_ref)
    bigrams = np.maximum(c.sent_len - 1, 0)  # the reference code's "length"
    delta = (bigrams[c.hyp_sent][c.sent_image[ref_sents]] - bigrams[ref_sents]).astype(float)
    return CiderStats(
        c.n_images, len(c.sent_len), c.n_grams, c.gram.take(pair_start), c.entry_image.take(pair_start), c.gram,
        c.tf, c.sent, c.bounds, m.ref_hyp, m.ref, c.sent.take(m.ref), np.searchsorted(m.ref, c.bounds),
        c.hyp_sent, ref_sents, c.sent_image[ref_sents], c.ref_count, np.e ** (-(delta**2) / (2 * SIGMA**2)),
    )


def _per_n(index: np.ndarray, weights: np.ndarray, bounds: np.ndarray, size: int) -> np.ndarray:
    """(4, size): sums of ``weights`` by ``index``, separately for each n (slices at ``bounds``)."""
    out = np.empty((4, size))
    for k in range(4):
        out[k] = np.bincount(index[bounds[k] : bounds[k + 1]], weights[bounds[k] : bounds[k + 1]], size)
    return out


def _image_scores(s: CiderStats, weight: np.ndarray | None, log_n: float) -> np.ndarray:
    """Per-image CIDEr-D for multiplicities ``weight`` of the images (None: each once)."""
    if weight is None:
        df = np.bincount(s.pair_gram, minlength=s.n_grams)
    else:
        df = np.bincount(s.pair_gram, weights=weight.take(s.pair_image), minlength=s.n_grams)
    vec = s.tf * (log_n - np.log(np.maximum(df, 1.0))).take(s.gram)
    norm = np.sqrt(_per_n(s.sent, vec * vec, s.bounds, s.n_sentences))
    h, r = vec.take(s.match_hyp), vec.take(s.match_ref)
    dot = _per_n(s.match_sent, np.minimum(h, r) * r, s.match_bounds, s.n_sentences)
    hyp_norm = norm[:, s.hyp_sent[s.ref_image]]  # (4, R)
    ref_norm = norm[:, s.ref_sents]
    val = dot[:, s.ref_sents]
    both = (hyp_norm != 0) & (ref_norm != 0)
    val = np.where(both, val / np.where(both, hyp_norm * ref_norm, 1.0), val) * s.penalty
    summed = np.bincount(s.ref_image, weights=val.sum(axis=0), minlength=s.n_images)
    return summed / 4 / s.ref_count * 10.0


def cider_from_stats(stats: CiderStats, indices: np.ndarray | None = None) -> dict[str, float]:
    """Corpus CIDEr-D on the images ``indices`` (duplicates count as separate images)."""
    if indices is None:
        indices = np.arange(stats.n_images)
    indices = np.asarray(indices)
    weight = np.bincount(indices, minlength=stats.n_images).astype(float)
    scores = _image_scores(stats, weight, float(np.log(float(len(indices)))))
    return {"cider": float(np.mean(scores[indices]))}


@register("cider", outputs=("cider",), tokenized=True)
def cider(predictions: list[str], references: list[list[str]], images=None, **options) -> MetricResult:
    """CIDEr-D (pycocoevalcap ``Cider()``) of PTB-tokenized captions."""
    stats = cider_stats(predictions, references)
    scores = _image_scores(stats, None, float(np.log(float(stats.n_images))))
    return MetricResult({"cider": float(np.mean(scores))}, [{"cider": v} for v in scores.tolist()])
