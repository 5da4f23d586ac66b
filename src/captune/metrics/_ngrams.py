"""N-gram counts of a whole evaluation set as flat numpy arrays, shared by BLEU, CIDEr and ROUGE-L.

Words become integer ids and an n-gram of ids becomes one integer (a base ``V + 1`` number with
digits ``1..V``), packed with its sentence index into one int64 and sorted (a value sort, several
times faster than an argsort). The result lists each distinct (n-gram, sentence) pair with its
count, ordered by n-gram and then by sentence. Sentences are numbered image by image, prediction
first, so the references of the image of a prediction sit right after it within an n-gram's run.
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
    entry_image: np.ndarray  # (E,) image of the pair's sentence
    entry_is_ref: np.ndarray  # (E,) whether the pair's sentence is a reference
    ids: np.ndarray  # flat token ids of all sentences
    plain: bool  # sentences are tokens joined by single spaces: split(" ") == split()
    bounds: np.ndarray  # (5,) where the entries of each n start (n = 1..4), then their end

    @cached_property
    def matches(self) -> Matches:
        starts, sizes = self.group_starts, self.group_sizes
        both = ~self.entry_is_ref.take(starts) & (sizes > 1)  # the prediction's entry comes first in its run
        hyp, counts = starts[both], sizes[both] - 1
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
    gram, sent, tf = (np.empty(sum(sizes), np.int64) for _ in range(3))
    new_group = np.empty(sum(sizes), bool)
    bounds = _levels(ids, lens, vocab, max(1, n_sent.bit_length()), (gram, sent, tf, new_group))
    gram, sent, tf, new_group = (a[: bounds[-1]] for a in (gram, sent, tf, new_group))
    image = sent_image.take(sent)
    new_group[1:] |= image[1:] != image[:-1]  # runs of one n-gram in one image
    starts = np.flatnonzero(new_group)
    order = np.repeat(np.arange(1, N_MAX + 1, dtype=np.int8), np.diff(bounds))
    n_grams = int(gram[-1]) + 1 if len(gram) else 0
    return Corpus(len(ref_count), sent_image, sent_is_ref, lens, first, first + 1, ref_count, gram, sent, order, tf,
                  n_grams, starts, _run_lengths(starts, len(gram)), image, sent_is_ref.take(sent), ids, plain,
                  np.array(bounds))


def _levels(ids: np.ndarray, lens: np.ndarray, vocab: int, sent_bits: int, out) -> list[int]:
    """Fill ``out`` = (dense n-gram id, sentence, count, first-of-n-gram flag) of the distinct
    (n-gram, sentence) pairs, n = 1 first; returns where each n starts, then the end."""
    sent_of = np.repeat(np.arange(len(lens), dtype=np.int64), lens)
    left = np.repeat(np.cumsum(lens), lens) - np.arange(len(ids))  # tokens from here to the sentence end
    key = ids.astype(np.int64) + 1  # digits 1..V
    packed = np.empty(len(ids), np.int64)
    bound, bounds = vocab + 1, [0]  # keys are below ``bound``
    for n in range(1, N_MAX + 1):
        if n > 1:
            if (bound * (vocab + 1)) << sent_bits >= 1 << 63:
                key, bound = _renumber(key)  # keep n-gram numbers small enough to pack with a sentence
            key *= vocab + 1
            key[: max(len(ids) - n + 1, 0)] += ids[n - 1 :] + 1  # the last n - 1 positions are never valid
            bound *= vocab + 1
        np.left_shift(key, sent_bits, out=packed)
        packed |= sent_of
        level = packed[left >= n] if n > 1 else packed
        level.sort()  # a plain sort: much faster than argsort
        first = np.flatnonzero(_runs(level))
        pairs = level.take(first)
        a, b = bounds[-1], bounds[-1] + len(first)
        gram, sent, tf, new_gram = (x[a:b] for x in out)
        np.right_shift(pairs, sent_bits, out=sent)  # n-gram keys, for now
        new_gram[:1] = True
        np.not_equal(sent[1:], sent[:-1], out=new_gram[1:])
        np.cumsum(new_gram, out=gram)
        gram += (int(out[0][a - 1]) if a else -1)
        np.bitwise_and(pairs, (1 << sent_bits) - 1, out=sent)
        np.subtract(first[1:], first[:-1], out=tf[:-1])
        tf[-1:] = len(level) - first[-1:]
        bounds.append(b)
    return bounds


def _run_lengths(starts: np.ndarray, total: int) -> np.ndarray:
    out = np.empty(len(starts), np.int64)
    np.subtract(starts[1:], starts[:-1], out=out[:-1])
    if len(starts):
        out[-1] = total - starts[-1]
    return out


def _runs(sorted_values: np.ndarray) -> np.ndarray:
    """Boolean mask of the first element of each run of equal values."""
    start = np.empty(len(sorted_values), bool)
    start[:1] = True
    np.not_equal(sorted_values[1:], sorted_values[:-1], out=start[1:])
    return start


def _renumber(key: np.ndarray) -> tuple[np.ndarray, int]:
    """Dense numbers for prefix keys (same key, same number), for very large vocabularies."""
    values, inverse = np.unique(key, return_inverse=True)
    return inverse.astype(np.int64).reshape(key.shape), len(values)


def corpus(preds: list[str], refs: list[list[str]], resources=None) -> Corpus:
    """``build``, kept in ``resources.ngrams`` (a ``MetricResources``) when given, so BLEU, CIDEr
    and ROUGE-L on the same data count n-grams once."""
    if resources is None:
        return build(preds, refs)
    key = (tuple(preds), tuple(map(len, refs)), tuple(chain.from_iterable(refs)))
    return resources.ngrams.get_or_make(key, lambda: build(preds, refs, resources=resources))
