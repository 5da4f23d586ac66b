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
``CiderD`` does the same for a block of resamples and several prediction lists at once (the
bootstrap of ``captune compare``): with idf(g) = log N - log max(1, df(g)), every quantity
CIDEr-D needs is a sum over n-grams of a fixed coefficient times idf(g)^2, so a block of
resamples costs a few sparse-dense products.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

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
    pair_start: np.ndarray  # (P,) the pair's first (n-gram, sentence) count
    sent_image: np.ndarray  # (S,) image of each sentence
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

    @cached_property
    def pair_image(self) -> np.ndarray:
        """(P,) image of each pair (only resamples need it)."""
        return self.sent_image.take(self.sent.take(self.pair_start))


def cider_stats(preds_tok: list[str], refs_tok: list[list[str]], resources=None) -> CiderStats:
    """What CIDEr-D needs; ``resources`` (a ``MetricResources``) shares the n-gram counts."""
    c = _ngrams.corpus(preds_tok, refs_tok, resources)
    starts = c.group_starts  # runs of one n-gram in one image, the prediction's entry first
    pair_start = np.compress(~c.group_has_hyp | (c.group_sizes > 1), starts)  # runs that hold a reference
    m = c.matches
    ref_sents = np.flatnonzero(c.sent_is_ref)
    bigrams = np.maximum(c.sent_len - 1, 0)  # the reference code's "length"
    delta = (bigrams[c.hyp_sent][c.sent_image[ref_sents]] - bigrams[ref_sents]).astype(float)
    return CiderStats(
        c.n_images, len(c.sent_len), c.n_grams, c.gram.take(pair_start), pair_start, c.sent_image, c.gram,
        c.tf, c.sent, c.bounds, m.ref_hyp, m.ref, c.sent.take(m.ref), np.searchsorted(m.ref, c.bounds),
        c.hyp_sent, ref_sents, c.sent_image[ref_sents], c.ref_count, np.e ** (-(delta**2) / (2 * SIGMA**2)),
    )


def _image_scores(s: CiderStats, weight: np.ndarray | None, log_n: float) -> np.ndarray:
    """Per-image CIDEr-D for multiplicities ``weight`` of the images (None: each once)."""
    if weight is None:
        df = np.bincount(s.pair_gram, minlength=s.n_grams)
        # idf for every document frequency 0..N, looked up instead of a log per n-gram
        idf = (log_n - np.log(np.maximum(np.arange(s.n_images + 1), 1.0))).take(df)
    else:
        df = np.bincount(s.pair_gram, weights=weight.take(s.pair_image), minlength=s.n_grams)
        idf = log_n - np.log(np.maximum(df, 1.0))
    sq_norm, dot = _norms_and_dots(s, idf)
    hyp_norm = np.sqrt(sq_norm, out=sq_norm)[:, s.hyp_sent[s.ref_image]]  # (4, R)
    ref_norm = sq_norm[:, s.ref_sents]
    val = dot[:, s.ref_sents]
    both = (hyp_norm != 0) & (ref_norm != 0)
    val = np.where(both, val / np.where(both, hyp_norm * ref_norm, 1.0), val) * s.penalty
    summed = np.bincount(s.ref_image, weights=val.sum(axis=0), minlength=s.n_images)
    return summed / 4 / s.ref_count * 10.0


def _norms_and_dots(s: CiderStats, idf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(4, S) squared norms of the sentences' tf-idf vectors and (4, S) clipped dot products of
    each reference with its prediction, one n at a time in buffers of one level's size (fresh
    memory for a whole-corpus vector costs more than the arithmetic). Sums run in entry order."""
    sq_norm, dot = np.empty((4, s.n_sentences)), np.empty((4, s.n_sentences))
    size = int(np.diff(s.bounds).max(initial=0))
    vec_buf, index_buf = np.empty(size), np.empty(size, np.intp)  # intp: take and bincount copy int32
    for k in range(4):
        a, b, ma, mb = s.bounds[k], s.bounds[k + 1], s.match_bounds[k], s.match_bounds[k + 1]
        vec, index = vec_buf[: b - a], index_buf[: b - a]
        index[:] = s.gram[a:b]
        idf.take(index, out=vec, mode="clip")  # ids are in range; "clip" writes without a copy
        vec *= s.tf[a:b]
        h, r = vec.take(s.match_hyp[ma:mb] - a), vec.take(s.match_ref[ma:mb] - a)
        dot[k] = np.bincount(s.match_sent[ma:mb], np.minimum(h, r) * r, s.n_sentences)
        vec *= vec
        index[:] = s.sent[a:b]
        sq_norm[k] = np.bincount(index, vec, s.n_sentences)
    return sq_norm, dot


def cider_from_stats(stats: CiderStats, indices: np.ndarray | None = None) -> dict[str, float]:
    """Corpus CIDEr-D on the images ``indices`` (duplicates count as separate images)."""
    if indices is None:
        indices = np.arange(stats.n_images)
    indices = np.asarray(indices)
    weight = np.bincount(indices, minlength=stats.n_images).astype(float)
    scores = _image_scores(stats, weight, float(np.log(float(len(indices)))))
    return {"cider": float(np.mean(scores[indices]))}


class CiderD:
    """pycocoevalcap's CIDEr-D for several prediction lists over the same references, with the
    document frequencies taken from a weighted sample of the images (weights = how often each
    image was drawn; all ones gives the ordinary score).

    Sparse rows are (reference, n) (``P`` = 4 x references) or (image, n); columns group the
    n-grams found in the references of the same set of images, which have the same document
    frequency in every resample. Prediction n-grams in no reference have df 0, so idf = log N for
    them whatever the resample. Counts come from ``cider_stats`` (``captune.metrics._ngrams``).
    """

    def __init__(self, systems: Sequence[Sequence[str]], refs: Sequence[Sequence[str]], resources=None):
        refs = [list(r) for r in refs]
        stats = [cider_stats(list(preds), refs, resources) for preds in systems]
        self.n_images = len(refs)
        columns: dict[tuple[int, ...], int] = {}
        gram_columns = [_gram_columns(s, columns) for s in stats]
        # columns in order of their images (those of one image side by side): faster products
        keys = sorted(columns)
        renumber = np.empty(len(keys) + 1, np.int64)
        renumber[[columns[k] for k in keys]] = np.arange(len(keys))
        renumber[-1] = -1
        columns = dict(zip(keys, range(len(keys))))
        gram_columns = [renumber.take(c) for c in gram_columns]
        self._df = _df_matrix(columns, self.n_images)
        self._ref_norms = _ref_norm_matrix(stats[0], gram_columns[0], len(columns))
        self._systems = [_system(s, col, len(columns)) for s, col in zip(stats, gram_columns)]

    def image_scores(self, weights: np.ndarray) -> list[np.ndarray]:
        """Per-image CIDEr-D of each system under the document frequencies of ``weights``
        ([r, N] draw counts, every row with the same total): one ``[N, r]`` array per system."""
        weights = np.atleast_2d(np.asarray(weights, dtype=float))
        total = int(weights[0].sum().round())
        if not np.all(np.abs(weights.sum(axis=1) - total) < 1e-9):
            raise ValueError("every weight row must draw the same number of images")
        # idf^2 for every possible document frequency 0..total, looked up instead of a log per entry.
        table = (math.log(total) - np.log(np.maximum(np.arange(total + 1), 1.0))) ** 2
        idf2 = table[np.rint(self._df @ weights.T).astype(np.int64)]  # [columns, r]
        ref_norm = np.sqrt(self._ref_norms @ idf2)  # [P, r]
        out = []
        for s in self._systems:
            num = s["num"] @ idf2  # [P, r]
            hyp_norm = np.sqrt(s["hyp"] @ idf2 + s["unseen"][:, None] * table[0])  # [4N, r]
            den = hyp_norm[s["q"]] * ref_norm  # [P, r]
            val = np.divide(num, den, out=num.copy(), where=den > 0)
            out.append(np.asarray(s["agg"] @ val))  # [N, r]
        return out

    def corpus(self, weights: np.ndarray) -> np.ndarray:
        """Corpus CIDEr-D per system and weight row: ``[S, r]``."""
        weights = np.atleast_2d(np.asarray(weights, dtype=float))
        scores = self.image_scores(weights)
        return np.stack([(weights * s.T).sum(axis=1) / weights.sum(axis=1) for s in scores])


def _gram_columns(s: CiderStats, columns: dict[tuple[int, ...], int]) -> np.ndarray:
    """The column of each n-gram (-1: in no reference), by the set of images whose references hold
    it; ``columns`` (set -> column) is shared by the systems, so their columns agree."""
    starts = np.flatnonzero(np.r_[len(s.pair_gram) > 0, s.pair_gram[1:] != s.pair_gram[:-1]])
    images, ends = s.pair_image.tolist(), [*starts[1:].tolist(), len(s.pair_image)]
    out = np.full(s.n_grams, -1, np.int64)
    out[s.pair_gram.take(starts)] = [columns.setdefault(tuple(images[a:b]), len(columns))
                                     for a, b in zip(starts.tolist(), ends)]
    return out


def _df_matrix(columns: dict[tuple[int, ...], int], n_images: int):
    """Columns x images: 1 where the column's n-grams are in the image's references."""
    from scipy import sparse

    sizes = np.fromiter(map(len, columns), np.int64, len(columns))
    rows = np.repeat(np.arange(len(columns)), sizes)
    cols = np.fromiter((i for k in columns for i in k), np.int64, int(sizes.sum()))
    return sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(columns), n_images))


def _entry_rows(s: CiderStats) -> np.ndarray:
    """For every (n-gram, sentence) entry its row: reference position x 4 + n - 1, or image x 4 +
    n - 1 for a prediction."""
    k = np.repeat(np.arange(4), np.diff(s.bounds))
    ref_pos = np.full(s.n_sentences, -1, np.int64)
    ref_pos[s.ref_sents] = np.arange(len(s.ref_sents))
    hyp_pos = np.full(s.n_sentences, -1, np.int64)
    hyp_pos[s.hyp_sent] = np.arange(s.n_images)
    pos = np.where(ref_pos.take(s.sent) >= 0, ref_pos.take(s.sent), hyp_pos.take(s.sent))
    return pos * 4 + k


def _csr(rows, cols, vals, shape):
    from scipy import sparse

    return sparse.csr_matrix((np.asarray(vals, float), (rows, cols)), shape=shape)


def _ref_norm_matrix(s: CiderStats, column: np.ndarray, n_columns: int):
    """(reference, n) x columns: the squared counts of the references' n-grams."""
    rows = _entry_rows(s)
    is_ref = np.zeros(s.n_sentences, bool)
    is_ref[s.ref_sents] = True
    ref = is_ref.take(s.sent)
    tf = s.tf[ref].astype(float)  # int32 counts: squared as floats, which hold them exactly
    return _csr(rows[ref], column.take(s.gram[ref]), tf * tf, (4 * len(s.ref_sents), n_columns))


def _system(s: CiderStats, column: np.ndarray, n_columns: int) -> dict:
    """One prediction list's sparse coefficients (see ``CiderD``)."""
    rows = _entry_rows(s)
    hyp = np.ones(s.n_sentences, bool)
    hyp[s.ref_sents] = False
    entries = np.flatnonzero(hyp.take(s.sent))
    col, tf2 = column.take(s.gram.take(entries)), s.tf.take(entries).astype(float) ** 2
    seen = col >= 0
    unseen = np.bincount(rows.take(entries)[~seen], tf2[~seen], 4 * s.n_images)
    h, r = s.tf.take(s.match_hyp).astype(float), s.tf.take(s.match_ref).astype(float)
    n_rows = 4 * len(s.ref_sents)
    weight = s.penalty * 10.0 / (4 * s.ref_count.take(s.ref_image))
    return {
        "num": _csr(rows.take(s.match_ref), column.take(s.gram.take(s.match_ref)), np.minimum(h, r) * r,
                    (n_rows, n_columns)),
        "hyp": _csr(rows.take(entries)[seen], col[seen], tf2[seen], (4 * s.n_images, n_columns)),
        "unseen": unseen,
        "q": (4 * s.ref_image[:, None] + np.arange(4)).ravel(),
        "agg": _csr(np.repeat(s.ref_image, 4), np.arange(n_rows), np.repeat(weight, 4), (s.n_images, n_rows)),
    }


@register("cider", outputs=("cider",), tokenized=True)
def cider(predictions: list[str], references: list[list[str]], images=None, **options) -> MetricResult:
    """CIDEr-D (pycocoevalcap ``Cider()``) of PTB-tokenized captions."""
    stats = cider_stats(predictions, references, options.get("resources"))
    scores = _image_scores(stats, None, float(np.log(float(stats.n_images))))
    return MetricResult({"cider": float(np.mean(scores))}, [{"cider": v} for v in scores.tolist()])
