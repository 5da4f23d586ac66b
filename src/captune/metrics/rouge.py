"""ROUGE-L exactly as pycocoevalcap's ``Rouge()`` computes it.

Per image: the longest common subsequence (LCS) of the prediction with each reference, precision
and recall maximized separately over the references, F with beta = 1.2; the corpus score is the
mean over images. Tokens are ``str.split(" ")`` as in the reference code (an empty caption is one
empty token). They are the n-gram counter's token ids (``str.split()``), except in the few
sentences where the two splits differ (an empty sentence, a doubled or end space, another
whitespace character such as the no-break space of "5\xa01/2"): only those are split again.

The LCS lengths of all (prediction, reference) pairs are computed at once with the bit-parallel
algorithm of Allison and Dix (1986): LCS is symmetric, so the longer sequence of a pair is a bit
vector and each token of the shorter one updates it with one addition and a few bit operations.
Pairs are grouped by the bit vector's width and sorted by the shorter length, longest first, so
step t updates only the pairs still that long (a prefix of the group): a short pair never pays for
a long one.

``rouge_stats`` keeps the per-image scores; ``rouge_from_stats(stats, indices)`` is their mean
over a resample (ROUGE-L's corpus score is a plain mean).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import chain

import numpy as np

from captune.metrics import _ngrams
from captune.metrics.base import MetricResult, register

BETA = 1.2

# Whitespace beyond ASCII that str.split() splits on, as UTF-8 numbers (first three bytes, the
# third 0 for a two-byte character)
_WIDE_SPACES = np.array([int.from_bytes(ch.encode().ljust(3, b"\0"), "big") for ch in
                         "\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
                         "\u2028\u2029\u202f\u205f\u3000"])


@dataclass(frozen=True)
class RougeStats:
    scores: np.ndarray  # (N,) per-image ROUGE-L


def space_split_ids(c: _ngrams.Corpus, preds: list[str], refs: list[list[str]]):
    """Token ids of ``split(" ")`` of every sentence of ``c`` (flat) and the tokens per sentence.

    The corpus ids serve wherever ``split(" ") == split()``; an odd sentence gets the corpus ids
    of its ordinary tokens and fresh ids (one per distinct string) for its other tokens, which
    are empty or hold whitespace and so are never corpus tokens."""
    if c.plain:
        return c.ids, c.sent_len
    flat_refs = list(chain.from_iterable(refs))
    odd_hyp, odd_ref = odd_sentences(preds), odd_sentences(flat_refs)
    sents = np.concatenate([c.hyp_sent[odd_hyp], np.flatnonzero(c.sent_is_ref)[odd_ref]])
    if not len(sents):
        return c.ids, c.sent_len
    texts = [preds[i] for i in odd_hyp.tolist()] + [flat_refs[i] for i in odd_ref.tolist()]
    order = np.argsort(sents, kind="stable")
    sents, texts = sents[order], [texts[i] for i in order.tolist()]
    starts = np.cumsum(c.sent_len) - c.sent_len
    fresh: dict[str, int] = {"": int(c.ids.max(initial=-1)) + 1}
    new = [[fresh[""]] if not t else _resplit(t, c.ids[s : s + n].tolist(), fresh)
           for t, s, n in zip(texts, starts[sents].tolist(), c.sent_len[sents].tolist())]
    return _splice(c.ids, c.sent_len, starts, sents, new)


def _resplit(sentence: str, ids: list[int], fresh: dict[str, int]) -> list[int]:
    """Ids of ``sentence.split(" ")`` given the ids of its ``split()`` tokens."""
    out, pos = [], 0
    for piece in sentence.split(" "):
        words = piece.split()
        if len(words) == 1 and words[0] == piece:
            out.append(ids[pos])
        else:  # an empty piece or one holding other whitespace
            out.append(fresh.setdefault(piece, fresh[""] + len(fresh)))
        pos += len(words)
    return out


def _splice(ids: np.ndarray, lens: np.ndarray, starts: np.ndarray, sents: np.ndarray, new: list[list[int]]):
    """``ids`` with the tokens of sentences ``sents`` (ascending) replaced by ``new``."""
    old_lens, new_lens = lens[sents], np.fromiter(map(len, new), np.int64, len(new))
    before = np.cumsum(old_lens) - old_lens  # odd tokens ahead of each odd sentence
    dropped = np.repeat(starts[sents] - before, old_lens) + np.arange(int(old_lens.sum()))
    kept = np.delete(ids, dropped)
    out = np.insert(kept, np.repeat(starts[sents] - before, new_lens), list(chain.from_iterable(new)))
    lens = lens.copy()
    lens[sents] = new_lens
    return out, lens


def odd_sentences(sentences: list[str]) -> np.ndarray:
    """Indices of the sentences whose ``split(" ")`` differs from ``split()``.

    The bytes of the sentences joined by line breaks point at candidates (an empty sentence, a
    space next to a space or a sentence end, a control character, a whitespace character beyond
    ASCII); only those are split to check."""
    if not sentences:
        return np.zeros(0, np.int64)
    joined = "\n".join(sentences)
    b = np.frombuffer(joined.encode("utf-8", "surrogatepass"), np.uint8)
    low = np.flatnonzero(b <= 32)  # spaces, line breaks, control characters
    kind = b[low]
    ends = low[kind == 10]
    if len(ends) != len(sentences) - 1:  # a sentence holds a line break
        return _check(sentences, np.arange(len(sentences)))
    bounds = np.concatenate([[-1], ends, [len(b)]])
    empty = np.flatnonzero(np.diff(bounds) == 1)
    near = np.zeros(len(low), bool)  # next to another such byte or an end of the text
    gap = np.diff(low, prepend=-1, append=len(b)) == 1
    near |= gap[:-1]
    near |= gap[1:]
    at = [low[(kind == 32) & near], low[(kind < 32) & (kind != 10)]]
    if not joined.isascii():
        lead = np.flatnonzero((b == 0xC2) | ((b >= 0xE1) & (b <= 0xE3)))  # lead bytes of _WIDE_SPACES
        tail = b[np.minimum(lead[:, None] + [0, 1, 2], len(b) - 1)].astype(np.int64)  # (L, 3)
        code = tail[:, 0] << 16 | tail[:, 1] << 8 | np.where(tail[:, 0] >= 0xE0, tail[:, 2], 0)
        at.append(lead[np.isin(code, _WIDE_SPACES)])
    found = np.searchsorted(ends, np.concatenate(at))
    return np.union1d(_check(sentences, np.setdiff1d(found, empty)), empty)


def _check(sentences: list[str], candidates: np.ndarray) -> np.ndarray:
    odd = [i for i in candidates.tolist() if sentences[i].split(" ") != sentences[i].split()]
    return np.array(odd, np.int64)


def lcs_lengths(a_flat, a_starts, a_lens, b_flat, b_starts, b_lens) -> np.ndarray:
    """LCS length of each pair of sequences ``a[i]``, ``b[i]`` given as slices of flat id arrays.

    The longer sequence of each pair is the bit vector; pairs are grouped by its length so that it
    fits the smallest integer type (or a few 64-bit words)."""
    if a_flat is not b_flat:
        a_flat, b_starts = np.concatenate([a_flat, b_flat]), b_starts + len(a_flat)
    flat = a_flat.astype(np.int16 if int(a_flat.max(initial=0)) < 1 << 15 else np.int64)  # faster comparisons
    swap = a_lens > b_lens
    long_start, long_len = np.where(swap, a_starts, b_starts), np.maximum(a_lens, b_lens)
    short_start, short_len = np.where(swap, b_starts, a_starts), np.minimum(a_lens, b_lens)
    widths = np.where(long_len <= 32, _SMALL_WIDTHS[np.minimum(long_len, 32)], 64 * ((long_len + 63) // 64))
    top = int(short_len.max(initial=0)) + 1
    order = np.argsort(widths * top + (top - 1 - short_len))  # by width, then longest shorter sequence first
    cuts = np.flatnonzero(np.diff(widths[order])) + 1
    out = np.zeros(len(a_starts), np.int64)
    for sel in np.split(order, cuts) if len(order) else ():
        la, width = int(short_len[sel[0]]), int(widths[sel[0]])
        if la and len(flat):  # a row's tokens past its end are read but never used: see _lcs_group
            a = flat.take(short_start[sel] + np.arange(la)[:, None], mode="clip")  # (La, P)
            b = flat.take(long_start[sel][:, None] + np.arange(width), mode="clip")  # (P, Lb)
            out[sel] = _lcs_group(a, b, short_len[sel], long_len[sel])
    return out


_SMALL_WIDTHS = np.array([8] * 9 + [16] * 8 + [32] * 16)  # bit vector width by length, up to 32


def _lcs_group(a: np.ndarray, b: np.ndarray, lens_a: np.ndarray, lens_b: np.ndarray) -> np.ndarray:
    """Allison-Dix bit-parallel LCS of columns of ``a`` (La, P) against rows of ``b`` (P, Lb).

    ``lens_a`` is descending, so step t updates only the first ``active[t]`` pairs, those with
    more than t tokens in ``a``. Bits of ``b`` past a row's length hold other tokens: a bit only
    ever changes bits above it (by the addition's carry), so they are masked off at the end."""
    p, lb = b.shape
    dtype = {8: np.uint8, 16: np.uint16, 32: np.uint32}.get(lb, np.uint64)
    words = max(1, lb // 64) if dtype is np.uint64 else 1
    active = p - np.cumsum(np.bincount(lens_a, minlength=len(a)))  # pairs with more than t tokens
    v = np.full((p, words), np.iinfo(dtype).max, dtype)
    eq = np.empty((p, lb), bool)
    for t, k in enumerate(active[: len(a)].tolist()):
        np.equal(a[t, :k, None], b[:k], out=eq[:k])
        # Lb is a multiple of 8, so packing the flat array packs each row on its own (and much faster)
        match = np.packbits(eq[:k].reshape(-1), bitorder="little").view(dtype).reshape(k, words)
        x = v[:k]
        u = x & match
        np.bitwise_or(_add(x, u), x ^ u, out=x)  # x - u == x ^ u: u's bits are a subset of x's
    valid = np.packbits((np.arange(lb) < lens_b[:, None]).reshape(-1), bitorder="little").view(dtype)
    zeros = ~v & valid.reshape(p, words)  # the LCS length is the number of zero bits
    return np.unpackbits(zeros.view(np.uint8), axis=1).sum(axis=1)


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
    ids, lens = space_split_ids(c, preds_tok, refs_tok)
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
