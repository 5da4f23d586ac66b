"""N-gram counts of a whole evaluation set as flat numpy arrays, shared by BLEU, CIDEr and ROUGE-L.

Words become integer ids. Each n lists the positions where an n-gram starts in (n-gram, position)
order, built from the order of n - 1 with one stable sort by token (radix passes over 16-bit
digits in numpy), the n-grams numbered by rank: no key packs several tokens, nothing is
value-sorted. The result lists each distinct (n-gram, sentence) pair with its count, ordered by
n-gram (by its ids, left to right) and then by sentence. Sentences are numbered image by image,
prediction first, so the references of the image of a prediction sit right after it within an
n-gram's run.
Every corpus statistic of BLEU (clipped counts) and CIDEr (document frequencies, tf-idf vectors,
clipped dot products) is then a segment reduction over these arrays.

Tokens are ``str.split()`` of the (PTB-tokenized) strings, as pycocoevalcap splits them. Text
that the Python PTB tokenizer of the same ``MetricResources`` has just produced comes with its
token ids (``_ptb_python.encodings``), so it is neither split nor interned again here.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from itertools import chain, repeat
from typing import NamedTuple

import numpy as np

from captune.metrics import _ptb_python

N_MAX = 4


class Matches(NamedTuple):
    """Reference entries that share their n-gram and image with the image's prediction."""

    hyp: np.ndarray  # (H,) the prediction's entry of each (n-gram, image) run that holds references too
    offsets: np.ndarray  # (H,) where the run's reference entries start in ``ref``
    ref: np.ndarray  # (M,) the reference entries, run after run (so in entry order)
    ref_hyp: np.ndarray  # (M,) the prediction's entry of each


@dataclass(frozen=True)
class Corpus:
    """Sentences of an evaluation set and the counts of their n-grams (n = 1..4)."""

    n_images: int
    sent_image: np.ndarray  # (S,) image of each sentence
    sent_is_ref: np.ndarray  # (S,) False for the prediction, True for references
    sent_len: np.ndarray  # (S,) number of tokens
    hyp_sent: np.ndarray  # (N,) sentence index of each image's prediction
    ref_start: np.ndarray  # (N,) first reference sentence of each image
    ref_count: np.ndarray  # (N,) number of references of each image
    gram: np.ndarray  # (E,) dense n-gram id of each distinct (n-gram, sentence) pair
    sent: np.ndarray  # (E,) sentence of the pair
    order: np.ndarray  # (E,) n of the n-gram (1..4)
    tf: np.ndarray  # (E,) occurrences of the n-gram in the sentence
    n_grams: int  # number of distinct n-grams
    group_starts: np.ndarray  # start of each run of pairs with the same n-gram and image
    group_sizes: np.ndarray  # length of each run
    group_has_hyp: np.ndarray  # whether the run starts with the prediction's pair (then the only one)
    ids: np.ndarray  # flat token ids of all sentences
    plain: bool  # sentences are tokens joined by single spaces: split(" ") == split()
    bounds: np.ndarray  # (5,) where the entries of each n start (n = 1..4), then their end

    @cached_property
    def matches(self) -> Matches:
        both = self.group_has_hyp & (self.group_sizes > 1)
        hyp, counts = np.compress(both, self.group_starts), np.compress(both, self.group_sizes) - 1
        offsets = np.cumsum(counts) - counts
        ref = np.repeat(hyp + 1 - offsets, counts) + np.arange(int(counts.sum()))
        return Matches(hyp, offsets, ref, np.repeat(hyp, counts))


def _ref_counts(preds: list[str], refs: list[list[str]], allow_no_refs: bool) -> np.ndarray:
    if len(preds) != len(refs):
        raise ValueError(f"{len(preds)} predictions but {len(refs)} reference lists")
    counts = np.fromiter(map(len, refs), np.int64, len(refs))
    if len(refs) and counts.min() < 1 and not allow_no_refs:
        raise ValueError(f"image {int(np.argmin(counts))} has no reference caption")
    return counts


def split_tokens(sentences: list[str]) -> tuple[list[str], np.ndarray, bool]:
    """All tokens (``str.split()`` of each sentence) in one list, the number per sentence, and
    whether ``split(" ")`` gives the same tokens (single spaces only, no empty sentence)."""
    joined = " ".join(sentences)
    if _plain(joined):
        counts = np.fromiter(map(str.count, sentences, repeat(" ")), np.int64, len(sentences)) + 1
        return joined.split(" "), counts, True
    tokens = list(map(str.split, sentences))
    return list(chain.from_iterable(tokens)), np.fromiter(map(len, tokens), np.int64, len(tokens)), False


def _plain(joined: str) -> bool:
    """ASCII words separated by single spaces (so no sentence is empty or has spaces at its ends)."""
    if not joined or not joined.isascii() or joined[0] == " " or joined[-1] == " ":
        return False
    b = np.frombuffer(joined.encode("ascii"), np.uint8)
    return not (b < 32).any() and not ((b[1:] == 32) & (b[:-1] == 32)).any()  # < 32: \t \n \r ...


def intern(tokens: list[str]) -> tuple[np.ndarray, int]:
    """Integer ids (in order of first appearance) and the vocabulary size."""
    vocab = dict.fromkeys(tokens)
    for i, w in enumerate(vocab):
        vocab[w] = i
    return np.fromiter(map(vocab.__getitem__, tokens), np.int64, len(tokens)), len(vocab)


def _from_strings(preds: list[str], refs: list[list[str]]):
    sentences = list(chain.from_iterable(chain((p,), r) for p, r in zip(preds, refs)))
    tokens, lens, plain = split_tokens(sentences)
    ids, vocab = intern(tokens)
    return ids, lens, vocab, plain


def _from_encodings(hyp: _ptb_python.Encoding, ref: _ptb_python.Encoding, ref_count: np.ndarray):
    """Token ids in sentence order (image by image, prediction first), renumbered densely."""
    n, lens_all = len(hyp.lens), np.concatenate([hyp.lens, ref.lens])
    order = np.empty(len(lens_all), np.int64)  # source sentence (predictions, then references)
    first = np.cumsum(ref_count + 1) - (ref_count + 1)
    is_ref = np.ones(len(order), bool)
    is_ref[first] = False
    order[first] = np.arange(n)
    order[is_ref] = np.arange(n, len(order))
    lens = lens_all[order]
    src = (np.cumsum(lens_all) - lens_all)[order]
    ids = np.concatenate([hyp.ids, ref.ids])[np.repeat(src - (np.cumsum(lens) - lens), lens) + np.arange(int(lens.sum()))]
    present = np.bincount(ids) > 0
    dense = (np.cumsum(present) - 1).astype(np.int32)
    return dense[ids], lens, int(dense[-1]) + 1 if len(dense) else 0, hyp.plain and ref.plain


def build(preds: list[str], refs: list[list[str]], allow_no_refs: bool = False, resources=None) -> Corpus:
    """Count the n-grams of predictions and references (``allow_no_refs``: images may have none)."""
    ref_count = _ref_counts(preds, refs, allow_no_refs)
    tokenizer = resources.recent_tokenizer() if resources is not None else None
    encoded = _ptb_python.encodings(tokenizer, preds, list(chain.from_iterable(refs)))
    if encoded is None:
        ids, lens, vocab, plain = _from_strings(preds, refs)
    else:
        ids, lens, vocab, plain = _from_encodings(*encoded, ref_count)
    return _count(ids, lens, vocab, ref_count, plain)


def _count(ids: np.ndarray, lens: np.ndarray, vocab: int, ref_count: np.ndarray, plain: bool) -> Corpus:
    n_sent = len(lens)
    first = (np.cumsum(ref_count + 1) - (ref_count + 1)).astype(np.int64)
    sent_image = np.repeat(np.arange(len(ref_count), dtype=np.int64), ref_count + 1)
    sent_is_ref = np.ones(n_sent, bool)
    sent_is_ref[first] = False
    # every level's pairs go straight into one set of arrays (at most one pair per n-gram position)
    sizes = [int(np.maximum(lens - (n - 1), 0).sum()) for n in range(1, N_MAX + 1)]
    if sizes[0] >= 1 << 31:
        raise ValueError(f"{sizes[0]} tokens: n-gram counting takes fewer than 2**31; score the set in parts")
    # int32 throughout (fewer than 2**31 tokens): half the fresh memory of int64, which costs as
    # much as the counting itself
    gram, sent, tf = (np.empty(sum(sizes), np.int32) for _ in range(3))
    new_group = np.empty(sum(sizes), bool)
    bounds = _levels(ids, lens, vocab, (gram, sent, tf, new_group))
    gram, sent, tf, new_group = (a[: bounds[-1]] for a in (gram, sent, tf, new_group))
    image = sent_image.astype(np.int32).take(sent)
    new_group[1:] |= image[1:] != image[:-1]  # runs of one n-gram in one image
    starts = np.flatnonzero(new_group).astype(np.int32)
    order = np.repeat(np.arange(1, N_MAX + 1, dtype=np.int8), np.diff(bounds))
    n_grams = int(gram[-1]) + 1 if len(gram) else 0
    has_hyp = ~sent_is_ref.take(sent.take(starts))
    return Corpus(len(ref_count), sent_image, sent_is_ref, lens, first, first + 1, ref_count, gram, sent, order, tf,
                  n_grams, starts, _run_lengths(starts, len(gram)), has_hyp, ids, plain, np.array(bounds))


def _levels(ids: np.ndarray, lens: np.ndarray, vocab: int, out) -> list[int]:
    """Fill ``out`` = (dense n-gram id, sentence, count, first-of-n-gram flag) of the distinct
    (n-gram, sentence) pairs, n = 1 first; returns where each n starts, then the end.

    Each level lists its positions in (n-gram, position) order, level n from level n - 1 (an LSD
    radix step): the positions one to the left of level n - 1's, in its order, stably sorted by
    their own token. A stable sort of 16-bit keys is a radix sort in numpy, and the n-gram ranks
    stay level-local, so no key ever packs several tokens."""
    dtype = np.uint16 if vocab < 1 << 16 else ids.dtype
    tokens = ids.astype(dtype)
    before = np.empty_like(tokens)  # the token to the left, ``vocab`` at a sentence start (sorts last)
    before[1:] = tokens[:-1]
    before[(np.cumsum(lens) - lens)[lens > 0]] = vocab
    perm = _stable_order(tokens, vocab)  # level 1: positions by token, then position
    new_gram = _changes(tokens.take(perm))
    sent = np.repeat(np.arange(len(lens), dtype=np.int32), lens).take(perm)  # sentence of each position
    bounds = [0]
    for n in range(2, N_MAX + 2):
        rank = np.cumsum(new_gram, dtype=np.int32)  # 1-based rank of the (n - 1)-gram (int32: a bool
        # cumsum into int64 is several times slower; a level has fewer than 2**31 positions)
        bounds.append(_write_pairs(new_gram, rank, sent, bounds[-1], out))
        if n <= N_MAX:
            perm, new_gram, sent = _extend(perm, rank, sent, before, vocab, int(np.maximum(lens - (n - 1), 0).sum()))
    return bounds


def _extend(perm: np.ndarray, rank: np.ndarray, sent: np.ndarray, before: np.ndarray, vocab: int, size: int):
    """The ``size`` positions of level n in (n-gram, position) order, where a new n-gram starts,
    and their sentences, from level n - 1's positions ``perm`` in that order, their n-gram
    ``rank`` and their ``sent``ences (a position and the one to its left share a sentence; the
    level's own order gathers them faster than the sentence of each position)."""
    first = before.take(perm)
    order = _stable_order(first, vocab + 1)[:size]  # sentence starts (``vocab``) come last: dropped
    new_perm = perm.take(order)
    new_perm -= 1
    return new_perm, _changes(first.take(order)) | _changes(rank.take(order)), sent.take(order)


def _write_pairs(new_gram, rank, sent_sorted, at: int, out) -> int:
    """Write level n's distinct (n-gram, sentence) pairs into ``out`` from ``at``; returns the end."""
    first = np.flatnonzero(new_gram | _changes(sent_sorted))
    end = at + len(first)
    gram, sent, tf, first_of_gram = (x[at:end] for x in out)
    np.add(rank.take(first), int(out[0][at - 1]) if at else -1, out=gram)
    sent[:] = sent_sorted.take(first)
    new_gram.take(first, out=first_of_gram)
    np.subtract(first[1:], first[:-1], out=tf[:-1])
    tf[-1:] = len(sent_sorted) - first[-1:]
    return end


def _stable_order(keys: np.ndarray, bound: int) -> np.ndarray:
    """``argsort(keys, kind="stable")`` for keys in ``0..bound - 1``, as 16-bit radix passes."""
    if bound <= 1 << 16:
        return np.argsort(keys.astype(np.uint16, copy=False), kind="stable")
    order = np.arange(len(keys))
    for shift in range(0, (bound - 1).bit_length(), 16):
        digit = ((keys.take(order) >> shift) & 0xFFFF).astype(np.uint16)
        order = order.take(np.argsort(digit, kind="stable"))
    return order


def _run_lengths(starts: np.ndarray, total: int) -> np.ndarray:
    out = np.empty(len(starts), np.int32)
    np.subtract(starts[1:], starts[:-1], out=out[:-1])
    if len(starts):
        out[-1] = total - starts[-1]
    return out


def _changes(values: np.ndarray) -> np.ndarray:
    """Boolean mask of the first element of each run of equal values."""
    start = np.empty(len(values), bool)
    start[:1] = True
    np.not_equal(values[1:], values[:-1], out=start[1:])
    return start


def corpus(preds: list[str], refs: list[list[str]], resources=None) -> Corpus:
    """``build``, kept in ``resources.ngrams`` (a ``MetricResources``) when given, so BLEU, CIDEr
    and ROUGE-L on the same data count n-grams once."""
    if resources is None:
        return build(preds, refs)
    key = (tuple(preds), tuple(map(len, refs)), tuple(chain.from_iterable(refs)))
    return resources.ngrams.get_or_make(key, lambda: build(preds, refs, resources=resources))
