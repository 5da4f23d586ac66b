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
from itertools import chain

import numpy as np

from captune.metrics.base import MetricResult, register

BETA = 1.2


@dataclass(frozen=True)
class RougeStats:
    scores: np.ndarray  # (N,) per-image ROUGE-L


def _ids(sentences: list[list[str]]) -> tuple[list[np.ndarray], int]:
    flat = list(chain.from_iterable(sentences))
    vocab = dict.fromkeys(flat)
    for i, w in enumerate(vocab):
        vocab[w] = i
    ids = np.fromiter(map(vocab.__getitem__, flat), np.int64, len(flat))
    return np.split(ids, np.cumsum([len(s) for s in sentences])[:-1]), len(vocab)


def _padded(seqs: list[np.ndarray], length: int, fill: int) -> np.ndarray:
    out = np.full((len(seqs), length), fill, np.int64)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = s
    return out


def lcs_lengths(a: list[np.ndarray], b: list[np.ndarray]) -> np.ndarray:
    """LCS length of each pair ``(a[i], b[i])`` of integer sequences (bit-parallel, all pairs at once)."""
    lens_b = np.array([len(x) for x in b], np.int64)
    out = np.zeros(len(a), np.int64)
    words = (lens_b + 63) // 64
    for w in np.unique(words):  # pairs grouped by the number of 64-bit words of ``b``
        sel = np.flatnonzero(words == w)
        if w == 0:
            continue
        out[sel] = _lcs_group([a[i] for i in sel], [b[i] for i in sel], int(w))
    return out


def _lcs_group(a: list[np.ndarray], b: list[np.ndarray], words: int) -> np.ndarray:
    la = max((len(x) for x in a), default=0)
    pa = _padded(a, max(la, 1), -1)  # (P, La); -1 matches nothing
    pb = _padded(b, 64 * words, -2)  # (P, 64 * W); -2 matches nothing
    lens_b = np.array([len(x) for x in b], np.int64)
    v = np.zeros((len(a), words), np.uint64)
    for k in range(words):  # all ones on the positions of b
        bits = np.clip(lens_b - 64 * k, 0, 64).astype(np.uint64)
        v[:, k] = np.where(bits == 64, np.uint64(2**64 - 1), (np.uint64(1) << bits) - np.uint64(1))
    full = v.copy()
    for t in range(la):
        eq = pb == pa[:, t : t + 1]  # (P, 64 W)
        match = np.packbits(eq, axis=1, bitorder="little").view(np.uint64)  # (P, W)
        u = v & match
        total = _add(v, u)
        v = (total | (v ^ u)) & full  # v - u == v ^ u because u's bits are a subset of v's
    ones = np.unpackbits(v.view(np.uint8), axis=1).sum(axis=1)
    return lens_b - ones


def _add(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Multi-word unsigned addition along axis 1 (word 0 is the least significant)."""
    if x.shape[1] == 1:
        return x + y
    out = np.empty_like(x)
    carry = np.zeros(len(x), np.uint64)
    for k in range(x.shape[1]):
        s = x[:, k] + y[:, k]
        c1 = s < x[:, k]
        s2 = s + carry
        carry = (c1 | (s2 < s)).astype(np.uint64)
        out[:, k] = s2
    return out


def rouge_stats(preds_tok: list[str], refs_tok: list[list[str]]) -> RougeStats:
    """Per-image ROUGE-L of tokenized predictions against their references."""
    if len(preds_tok) != len(refs_tok):
        raise ValueError(f"{len(preds_tok)} predictions but {len(refs_tok)} reference lists")
    hyp_tokens = [p.split(" ") for p in preds_tok]
    ref_tokens = [r.split(" ") for refs in refs_tok for r in refs]
    ids, _ = _ids(hyp_tokens + ref_tokens)
    hyp_ids, ref_ids = ids[: len(hyp_tokens)], ids[len(hyp_tokens) :]
    ref_image = np.repeat(np.arange(len(refs_tok)), [len(r) for r in refs_tok])
    lcs = lcs_lengths([hyp_ids[i] for i in ref_image], ref_ids).astype(float)
    prec = lcs / np.array([len(h) for h in hyp_tokens], float)[ref_image]
    rec = lcs / np.array([len(r) for r in ref_tokens], float)
    starts = np.concatenate([[0], np.cumsum([len(r) for r in refs_tok])[:-1]]).astype(np.int64)
    prec_max, rec_max = np.maximum.reduceat(prec, starts), np.maximum.reduceat(rec, starts)
    nonzero = (prec_max != 0) & (rec_max != 0)
    denom = np.where(nonzero, rec_max + BETA**2 * prec_max, 1.0)
    scores = np.where(nonzero, ((1 + BETA**2) * prec_max * rec_max) / denom, 0.0)
    return RougeStats(scores)


def rouge_from_stats(stats: RougeStats, indices: np.ndarray | None = None) -> dict[str, float]:
    scores = stats.scores if indices is None else stats.scores[np.asarray(indices)]
    return {"rouge_l": float(np.mean(scores))}


@register("rouge", outputs=("rouge_l",), tokenized=True)
def rouge(predictions: list[str], references: list[list[str]], images=None, **options) -> MetricResult:
    """ROUGE-L (pycocoevalcap ``Rouge()``) of PTB-tokenized captions."""
    stats = rouge_stats(predictions, references)
    return MetricResult(rouge_from_stats(stats), [{"rouge_l": float(s)} for s in stats.scores])
