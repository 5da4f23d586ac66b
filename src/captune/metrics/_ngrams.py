"""N-gram counts of a whole evaluation set as flat numpy arrays, shared by BLEU and CIDEr.

Words become integer ids and an n-gram of ids becomes one integer (a base ``V + 1`` number with
digits ``1..V``, so n-grams of different lengths never collide), packed with its sentence index
into one int64 and sorted (a value sort, several times faster than an argsort). The result lists each distinct (n-gram, sentence) pair with its count, ordered by n-gram and then
by sentence. Sentences are numbered image by image, prediction first, so the references of the
image of a prediction sit right after it within an n-gram's run. Every corpus statistic of BLEU
(clipped counts) and CIDEr (document frequencies, tf-idf vectors, clipped dot products) is then a
segment reduction over these arrays.

Tokens are ``str.split()`` of the (PTB-tokenized) strings, as pycocoevalcap splits them.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from itertools import chain, repeat

import numpy as np

N_MAX = 4


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


def _sentences(preds: list[str], refs: list[list[str]], allow_no_refs: bool = False):
    """Sentences image by image (prediction, then its references) and the references per image."""
    if len(preds) != len(refs):
        raise ValueError(f"{len(preds)} predictions but {len(refs)} reference lists")
    counts = np.fromiter(map(len, refs), np.int64, len(refs))
    if len(refs) and counts.min() < 1 and not allow_no_refs:
        raise ValueError(f"image {int(np.argmin(counts))} has no reference caption")
    sentences = list(chain.from_iterable(chain((p,), r) for p, r in zip(preds, refs)))
    return sentences, counts


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


def _runs(sorted_values: np.ndarray) -> np.ndarray:
    """Boolean mask of the first element of each run of equal values."""
    start = np.empty(len(sorted_values), bool)
    start[:1] = True
    np.not_equal(sorted_values[1:], sorted_values[:-1], out=start[1:])
    return start


def _level(key: np.ndarray, sent: np.ndarray, sent_bits: int):
    """Distinct (n-gram, sentence) pairs of one n, sorted, with counts and dense n-gram ranks."""
    packed = np.sort((key << sent_bits) | sent)  # a plain sort: much faster than argsort
    first = np.flatnonzero(_runs(packed))
    pairs = packed[first]
    tf = _run_lengths(first, len(packed))
    rank = np.cumsum(_runs(pairs >> sent_bits), dtype=np.int32) - 1
    return rank, (pairs & ((1 << sent_bits) - 1)).astype(np.int32), tf


def _run_lengths(starts: np.ndarray, total: int) -> np.ndarray:
    out = np.empty(len(starts), np.int32)
    np.subtract(starts[1:], starts[:-1], out=out[:-1])
    if len(starts):
        out[-1] = total - starts[-1]
    return out


def _renumber(key: np.ndarray) -> np.ndarray:
    """Dense numbers for prefix keys (same key, same number), for very large vocabularies."""
    return np.unique(key, return_inverse=True)[1].astype(np.int64).reshape(key.shape)


def build(preds: list[str], refs: list[list[str]], allow_no_refs: bool = False) -> Corpus:
    """Count the n-grams of predictions and references (``allow_no_refs``: images may have none)."""
    sentences, ref_count = _sentences(preds, refs, allow_no_refs)
    tokens, lens, plain = split_tokens(sentences)
    ids, vocab = intern(tokens)
    first = np.concatenate([[0], np.cumsum(ref_count + 1)[:-1]]).astype(np.int64)
    sent_image = np.repeat(np.arange(len(preds), dtype=np.int32), ref_count + 1)
    sent_is_ref = np.ones(len(sentences), bool)
    sent_is_ref[first] = False
    sent_bits = max(1, len(sentences).bit_length())
    sent_of = np.repeat(np.arange(len(lens)), lens)
    left = np.repeat(np.cumsum(lens), lens) - np.arange(len(ids))  # tokens from here to the end
    key = np.zeros(len(ids), np.int64)
    levels, offset = [], 0
    for n in range(1, N_MAX + 1):
        if (int(key.max(initial=0)) + 1) * (vocab + 1) >= 1 << (62 - sent_bits):
            key = _renumber(key)  # keep n-gram numbers small enough to pack with a sentence index
        digit = np.zeros(len(ids), np.int64)
        digit[: len(ids) - n + 1] = ids[n - 1 :] + 1
        key = key * (vocab + 1) + digit  # digits 1..V: n-grams of different n never coincide
        valid = left >= n
        rank, sent, tf = _level(key[valid], sent_of[valid], sent_bits)
        levels.append((rank + offset, sent, np.full(len(rank), n, np.int8), tf))
        offset += int(rank[-1]) + 1 if len(rank) else 0
    gram, sent, order, tf = (np.concatenate(a) for a in zip(*levels))
    image = sent_image[sent]
    starts = _group_starts(gram, image)
    sizes = _run_lengths(starts, len(gram))
    return Corpus(len(preds), sent_image, sent_is_ref, lens, first, first + 1, ref_count, gram, sent, order, tf,
                  offset, starts, sizes, image, sent_is_ref[sent], ids, plain)


def _group_starts(gram: np.ndarray, image: np.ndarray) -> np.ndarray:
    start = np.empty(len(gram), bool)
    start[:1] = True
    start[1:] = (gram[1:] != gram[:-1]) | (image[1:] != image[:-1])
    return np.flatnonzero(start)


_CACHE: OrderedDict = OrderedDict()


def corpus(preds: list[str], refs: list[list[str]]) -> Corpus:
    """``build`` with a small cache, so BLEU and CIDEr on the same data count n-grams once."""
    key = (tuple(preds), tuple(map(tuple, refs)))
    hit = _CACHE.get(key)
    if hit is None:
        hit = _CACHE[key] = build(preds, refs)
        while len(_CACHE) > 2:
            _CACHE.popitem(last=False)
    return hit
