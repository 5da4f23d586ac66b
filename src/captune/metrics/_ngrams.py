"""N-gram counts of a whole evaluation set as flat numpy arrays, shared by BLEU and CIDEr.

Words become integer ids and an n-gram of ids becomes one integer (a base ``V + 1`` number with
digits ``1..V``, so n-grams of different lengths never collide). All occurrences are sorted once;
the result lists each distinct (n-gram, sentence) pair with its count, ordered by n-gram and then
by sentence. Sentences are numbered image by image, prediction first, so the references of the
image of a prediction sit right after it within an n-gram's run. Every corpus statistic of BLEU
(clipped counts) and CIDEr (document frequencies, tf-idf vectors, clipped dot products) is then a
segment reduction over these arrays.

Tokens are ``str.split()`` of the (PTB-tokenized) strings, as pycocoevalcap splits them.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from itertools import chain

import numpy as np

N_MAX = 4
_SENT_BITS = 26  # sentences per evaluation: up to 67 million


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


def _sentences(preds: list[str], refs: list[list[str]]) -> tuple[list[str], np.ndarray]:
    """Sentences image by image (prediction, then its references) and the references per image."""
    if len(preds) != len(refs):
        raise ValueError(f"{len(preds)} predictions but {len(refs)} reference lists")
    counts = np.fromiter(map(len, refs), np.int64, len(refs))
    if len(refs) and counts.min() < 1:
        raise ValueError(f"image {int(np.argmin(counts))} has no reference caption")
    sentences = list(chain.from_iterable(chain((p,), r) for p, r in zip(preds, refs)))
    return sentences, counts


def _token_ids(sentences: list[str]) -> tuple[np.ndarray, np.ndarray, int]:
    """Flat token ids, tokens per sentence, vocabulary size."""
    tokens = list(map(str.split, sentences))
    lens = np.fromiter(map(len, tokens), np.int64, len(tokens))
    flat = list(chain.from_iterable(tokens))
    vocab = dict.fromkeys(flat)
    for i, w in enumerate(vocab):
        vocab[w] = i
    ids = np.fromiter(map(vocab.__getitem__, flat), np.int64, len(flat))
    return ids, lens, len(vocab)


def _ngram_keys(ids: np.ndarray, lens: np.ndarray, vocab: int):
    """Key, sentence and n of every n-gram occurrence, n = 1..4 (in sentence order for each n)."""
    sent_of = np.repeat(np.arange(len(lens)), lens)
    left = np.repeat(np.cumsum(lens), lens) - np.arange(len(ids))  # tokens from here to the end
    base = vocab + 1
    exact = base**N_MAX < 2**62
    digits = ids + 1
    keys, sents, orders = [], [], []
    key = np.zeros(len(ids), np.int64)
    for n in range(1, N_MAX + 1):
        shifted = np.zeros(len(ids), np.int64)
        shifted[: len(ids) - n + 1] = digits[n - 1 :]
        key = key * base + shifted if exact else _dense(key, shifted, base)
        valid = left >= n
        keys.append(key[valid] if exact else key[valid] + (n << 58))
        sents.append(sent_of[valid])
        orders.append(np.full(int(valid.sum()), n, np.int8))
    return np.concatenate(keys), np.concatenate(sents), np.concatenate(orders)


def _dense(prev: np.ndarray, digit: np.ndarray, base: int) -> np.ndarray:
    """N-gram ids for vocabularies too large for exact base arithmetic: renumber at each step."""
    return np.unique(prev * base + digit, return_inverse=True)[1].astype(np.int64)


def build(preds: list[str], refs: list[list[str]]) -> Corpus:
    sentences, ref_count = _sentences(preds, refs)
    ids, lens, vocab = _token_ids(sentences)
    per_image = ref_count + 1
    first = np.concatenate([[0], np.cumsum(per_image)[:-1]]).astype(np.int64)
    sent_image = np.repeat(np.arange(len(preds)), per_image)
    sent_is_ref = np.ones(len(sentences), bool)
    sent_is_ref[first] = False
    keys, sents, orders = _ngram_keys(ids, lens, vocab)
    perm = np.argsort(keys)
    keys, sents, orders = keys[perm], sents[perm], orders[perm]
    new_key = np.empty(len(keys), bool)
    new_key[:1] = True
    np.not_equal(keys[1:], keys[:-1], out=new_key[1:])
    rank = np.cumsum(new_key) - 1
    packed = np.sort((rank << _SENT_BITS) | sents)  # nearly sorted already: cheap
    start = np.empty(len(packed), bool)
    start[:1] = True
    np.not_equal(packed[1:], packed[:-1], out=start[1:])
    where = np.flatnonzero(start)
    tf = np.diff(np.append(where, len(packed)))
    pairs = packed[where]
    gram = pairs >> _SENT_BITS
    order_of_gram = orders[new_key]
    return Corpus(len(preds), sent_image, sent_is_ref, lens, first, first + 1, ref_count,
                  gram, pairs & ((1 << _SENT_BITS) - 1), order_of_gram[gram], tf, int(rank[-1] + 1) if len(rank) else 0)


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


def groups(c: Corpus, mask: np.ndarray | None = None) -> np.ndarray:
    """Start index of each run of pairs with the same n-gram and image (optionally among ``mask``)."""
    gram, image = c.gram, c.sent_image[c.sent]
    if mask is not None:
        gram, image = gram[mask], image[mask]
    start = np.empty(len(gram), bool)
    start[:1] = True
    start[1:] = (gram[1:] != gram[:-1]) | (image[1:] != image[:-1])
    return np.flatnonzero(start)
