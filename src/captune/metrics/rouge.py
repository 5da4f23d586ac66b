"""ROUGE-L exactly as pycocoevalcap's ``Rouge()`` computes it.

Per image: the longest common subsequence (LCS) of the prediction with each reference, precision
and recall maximized separately over the references, F with beta = 1.2; the corpus score is the
mean over images. Tokens are ``str.split(" ")`` as in the reference code (an empty caption is one
empty token). The LCS lengths of all (prediction, reference) pairs are computed at once with the
bit-parallel algorithm of Allison and Dix (1986): a reference is a bit vector, and each token of
the prediction updates it with one addition and a few bit operations, for all pairs in parallel.

``rouge_stats`` keeps the per-image scores; ``rouge_from_stats(stats, indices)`` is their mean
over a resample (ROUGE-L's corpus score is a plain mean).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import chain, repeat

import numpy as np

from captune.metrics import _ngrams
from captune.metrics.base import MetricResult, register

BETA = 1.2


@dataclass(frozen=True)
class RougeStats:
    scores: np.ndarray  # (N,) per-image ROUGE-L


def _ids(sentences: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Flat token ids of ``s.split(" ")`` for every sentence, and the tokens per sentence."""
    lens = np.fromiter(map(str.count, sentences, repeat(" ")), np.int64, len(sentences)) + 1
    flat = " ".join(sentences).split(" ")
    vocab = dict.fromkeys(flat)
    for i, w in enumerate(vocab):
        vocab[w] = i
    return np.fromiter(map(vocab.__getitem__, flat), np.int64, len(flat)), lens


def _rows(flat: np.ndarray, starts: np.ndarray, lens: np.ndarray, width: int, fill: int, dtype) -> np.ndarray:
    """Sequences ``flat[starts[i] : starts[i] + lens[i]]`` as rows padded with ``fill`` to ``width``."""
    cols = np.arange(width)
    if not len(flat):
        return np.full((len(starts), width), fill, dtype)
    out = flat.take(starts[:, None] + cols, mode="clip").astype(dtype, copy=False)
    np.putmask(out, cols >= lens[:, None], fill)
    return out


def lcs_lengths(a_flat, a_starts, a_lens, b_flat, b_starts, b_lens) -> np.ndarray:
    """LCS length of each pair of sequences ``a[i]``, ``b[i]`` given as slices of flat id arrays.

    Pairs are grouped by the length of ``b`` so that its bit vector fits the smallest integer type
    (or a few 64-bit words); each group runs the bit-parallel recurrence once for all its pairs.
    """
    out = np.zeros(len(a_starts), np.int64)
    widths = np.select([b_lens <= 8, b_lens <= 16, b_lens <= 32], [8, 16, 32], 64 * ((b_lens + 63) // 64))
    top = max(int(a_flat.max(initial=0)), int(b_flat.max(initial=0)))
    ids = np.int16 if top < 1 << 15 else np.int64  # small ids: faster comparisons (-1, -2 pad)
    for width in sorted(set(widths.tolist())):
        sel = np.flatnonzero(widths == width)
        la = int(a_lens[sel].max(initial=0))
        if la == 0:
            continue
        a = _rows(a_flat, a_starts[sel], a_lens[sel], la, -1, ids)
        b = _rows(b_flat, b_starts[sel], b_lens[sel], width, -2, ids)
        out[sel] = _lcs_group(a, b, b_lens[sel])
    return out


def _lcs_group(a: np.ndarray, b: np.ndarray, lens_b: np.ndarray) -> np.ndarray:
    """Allison-Dix bit-parallel LCS for rows of ``a`` (P, La) against rows of ``b`` (P, Lb)."""
    p, lb = b.shape
    dtype = {8: np.uint8, 16: np.uint16, 32: np.uint32}.get(lb, np.uint64)
    words = max(1, lb // 64) if dtype is np.uint64 else 1
    eq = a[:, :, None] == b[:, None, :]  # (P, La, Lb)
    # Lb is a multiple of 8, so packing the flat array packs each row on its own (and much faster)
    match = np.packbits(eq.reshape(-1), bitorder="little").view(dtype).reshape(p, a.shape[1], words)
    full = np.packbits((np.arange(lb) < lens_b[:, None]).reshape(-1), bitorder="little").view(dtype)
    full = full.reshape(p, words)
    v = full.copy()
    for t in range(a.shape[1]):
        u = v & match[:, t]
        v = (_add(v, u) | (v ^ u)) & full  # v - u == v ^ u: u's bits are a subset of v's
    ones = np.unpackbits(v.view(np.uint8), axis=1).sum(axis=1)
    return lens_b - ones


def _add(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Unsigned addition of multi-word integers along axis 1 (word 0 least significant)."""
    if x.shape[1] == 1:
        return x + y
    out = np.empty_like(x)
    carry = np.zeros(len(x), x.dtype)
    for k in range(x.shape[1]):
        s = x[:, k] + y[:, k]
        s2 = s + carry
        carry = ((s < x[:, k]) | (s2 < s)).astype(x.dtype)
        out[:, k] = s2
    return out


def rouge_stats(preds_tok: list[str], refs_tok: list[list[str]], resources=None) -> RougeStats:
    """Per-image ROUGE-L of tokenized predictions against their references (``resources``: see
    ``bleu_stats``)."""
    c = _ngrams.corpus(preds_tok, refs_tok, resources)
    if c.plain:  # the n-gram counter's token ids are those of split(" ")
        ids, lens = c.ids, c.sent_len
    else:
        ids, lens = _ids(list(chain.from_iterable(chain((p,), r) for p, r in zip(preds_tok, refs_tok))))
    starts = np.cumsum(lens) - lens
    ref_sents = np.flatnonzero(c.sent_is_ref)
    hyp_sents = c.hyp_sent[c.sent_image[ref_sents]]
    hyp_len, ref_len = lens[hyp_sents], lens[ref_sents]
    lcs = lcs_lengths(ids, starts[hyp_sents], hyp_len, ids, starts[ref_sents], ref_len).astype(float)
    prec, rec = lcs / hyp_len, lcs / ref_len
    first = (np.cumsum(c.ref_count) - c.ref_count).astype(np.int64)
    prec_max, rec_max = np.maximum.reduceat(prec, first), np.maximum.reduceat(rec, first)
    nonzero = (prec_max != 0) & (rec_max != 0)
    denom = np.where(nonzero, rec_max + BETA**2 * prec_max, 1.0)
    return RougeStats(np.where(nonzero, ((1 + BETA**2) * prec_max * rec_max) / denom, 0.0))


def rouge_from_stats(stats: RougeStats, indices: np.ndarray | None = None) -> dict[str, float]:
    scores = stats.scores if indices is None else stats.scores[np.asarray(indices)]
    return {"rouge_l": float(np.mean(scores))}


@register("rouge", outputs=("rouge_l",), tokenized=True)
def rouge(predictions: list[str], references: list[list[str]], images=None, **options) -> MetricResult:
    """ROUGE-L (pycocoevalcap ``Rouge()``) of PTB-tokenized captions."""
    stats = rouge_stats(predictions, references, options.get("resources"))
    return MetricResult(rouge_from_stats(stats), [{"rouge_l": v} for v in stats.scores.tolist()])
