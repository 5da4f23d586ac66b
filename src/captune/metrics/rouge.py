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
from numpy.lib.stride_tricks import sliding_window_view

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
    b, wide = _bytes(joined)
    breaks = b == 10
    if np.count_nonzero(breaks) != len(sentences) - 1:  # a sentence holds a line break
        return _check(sentences, np.arange(len(sentences)))
    edge = np.empty(len(b) + 2, bool)  # a byte up to 32 (space, control, line break), or either end
    edge[0] = edge[-1] = True
    np.less_equal(b, 32, out=edge[1:-1])
    bad = (b < 32) & ~breaks  # a control character
    bad |= (b == 32) & (edge[:-2] | edge[2:])  # a space at a sentence end or next to another
    bad |= breaks & edge[:-2]  # a break after a break or at the start: the sentence before is empty
    at = np.concatenate([np.flatnonzero(bad), wide])
    last_empty = not len(b) or b[-1] == 10
    if not len(at) and not last_empty:
        return np.zeros(0, np.int64)
    found = np.searchsorted(np.flatnonzero(breaks), at)  # a break counts for the sentence before it
    return _check(sentences, np.union1d(found, [len(sentences) - 1] if last_empty else []).astype(np.int64))


def _bytes(text: str) -> tuple[np.ndarray, np.ndarray]:
    """The text's bytes (Latin-1 when it can, else UTF-8) and where its whitespace beyond ASCII
    starts."""
    try:
        b = np.frombuffer(text.encode("latin-1"), np.uint8)
        return b, (np.zeros(0, np.int64) if text.isascii() else np.flatnonzero((b == 0x85) | (b == 0xA0)))
    except UnicodeEncodeError:
        b = np.frombuffer(text.encode("utf-8", "surrogatepass"), np.uint8)
    lead = np.flatnonzero((b == 0xC2) | ((b >= 0xE1) & (b <= 0xE3)))  # lead bytes of _WIDE_SPACES
    tail = b[np.minimum(lead[:, None] + [0, 1, 2], len(b) - 1)].astype(np.int64)  # (L, 3)
    code = tail[:, 0] << 16 | tail[:, 1] << 8 | np.where(tail[:, 0] >= 0xE0, tail[:, 2], 0)
    return b, lead[np.isin(code, _WIDE_SPACES)]


def _check(sentences: list[str], candidates: np.ndarray) -> np.ndarray:
    odd = [i for i in candidates.tolist() if sentences[i].split(" ") != sentences[i].split()]
    return np.array(odd, np.int64)


def lcs_lengths(a_flat, a_starts, a_lens, b_flat, b_starts, b_lens) -> np.ndarray:
    """LCS length of each pair of sequences ``a[i]``, ``b[i]`` given as slices of flat id arrays.

    The longer sequence of each pair is the bit vector; pairs are grouped by its length so that it
    fits the smallest integer type (or a few 64-bit words)."""
    if a_flat is not b_flat:
        a_flat, b_starts = np.concatenate([a_flat, b_flat]), b_starts + len(a_flat)
    swap = a_lens > b_lens
    long_start, long_len = np.where(swap, a_starts, b_starts), np.maximum(a_lens, b_lens)
    short_start, short_len = np.where(swap, b_starts, a_starts), np.minimum(a_lens, b_lens)
    size = np.where(long_len <= 32, _SMALL_SIZES[np.minimum(long_len, 32)], 2 + (long_len + 63) // 64)
    top = int(short_len.max(initial=0)) + 1
    key = size * top + (top - 1 - short_len)  # by size, then longest shorter sequence first
    order = np.argsort(key.astype(np.int16) if int(key.max(initial=0)) < 1 << 15 else key, kind="stable")
    widths = np.where(size <= 2, 8 << size, 64 * (size - 2))
    # windows of the ids, padded so that every row of the widest bit vector exists (rows read past
    # their sequence's end: see _lcs_group)
    dtype = np.int16 if int(a_flat.max(initial=0)) < 1 << 15 else np.int64  # faster comparisons
    flat = np.concatenate([a_flat.astype(dtype), np.zeros(int(widths.max(initial=0)), dtype)])
    out = np.zeros(len(a_starts), np.int64)
    for sel in np.split(order, np.flatnonzero(np.diff(size[order])) + 1) if len(order) else ():
        if short_len[sel[0]]:
            b = sliding_window_view(flat, int(widths[sel[0]]))[long_start[sel]]  # (P, Lb)
            out[sel] = _lcs_group(flat, short_start[sel], short_len[sel], b, long_len[sel])
    return out


_SMALL_SIZES = np.array([0] * 9 + [1] * 8 + [2] * 16)  # bit vectors of 8 << size bits, up to 32


def _lcs_group(flat, starts_a, lens_a, b: np.ndarray, lens_b: np.ndarray) -> np.ndarray:
    """Allison-Dix bit-parallel LCS of sequences ``flat[starts_a[i]:][:lens_a[i]]`` against the rows
    of ``b`` (P, Lb), one bit vector each.

    ``lens_a`` is descending, so step t updates only the first ``active[t]`` pairs, those with
    more than t tokens in ``a``. Bits of ``b`` past a row's length hold other tokens: a bit only
    ever changes bits above it (by the addition's carry), so they are masked off at the end."""
    p, lb = b.shape
    dtype = {8: np.uint8, 16: np.uint16, 32: np.uint32}.get(lb, np.uint64)
    words = max(1, lb // 64) if dtype is np.uint64 else 1
    active = p - np.cumsum(np.bincount(lens_a))  # pairs with more than t tokens
    v = np.full((p, words), np.iinfo(dtype).max, dtype)
    eq = np.empty((p, lb), bool)
    for t, k in enumerate(active[: int(lens_a[0])].tolist()):
        np.equal(flat.take(starts_a[:k] + t)[:, None], b[:k], out=eq[:k])
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
    out = x + y
    if x.shape[1] == 1:
        return out
    carry_out = out < x  # (P, W) the word overflowed
    full = out == np.iinfo(x.dtype).max  # (P, W) a carry into the word passes on
    carry = carry_out[:, 0]
    for k in range(1, x.shape[1]):
        out[:, k] += carry
        carry = carry_out[:, k] | (carry & full[:, k])
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
