"""Paired resampling of corpus metrics: bootstrap confidence intervals and permutation p-values.

    from captune.evaluate.resample import BleuStat, CiderStat, MeanStat, paired_test
    stats = [BleuStat(a_tok, b_tok, refs_tok), CiderStat(a_tok, b_tok, refs_tok),
             MeanStat("clipscore", a_values, b_values)]
    results = paired_test(stats, n_images, resamples=1000, seed=0)   # {metric: PairedResult}

Both systems captioned the same images. A bootstrap resample draws N images with replacement;
the same draw is used for system A and system B (paired) and for every metric. Corpus metrics
are recomputed on each resample from per-image sufficient statistics, never by averaging
per-image scores:

- BLEU (pycocoevalcap's, "closest" reference length): per image the hypothesis length, the
  closest reference length and the clipped n-gram matches and totals (``bleu_stats`` of
  ``captune.metrics.bleu``); corpus BLEU is a function of their sums.
- CIDEr-D (pycocoevalcap's ``Cider``: sigma 6, clipped tf-idf, x10): the document frequencies
  and log N come from the resample itself (an image drawn twice counts twice, as it would in a
  list scored by pycocoevalcap). Everything CIDEr-D needs is linear in idf(g)^2, so a resample
  costs a few sparse-dense products instead of a pass over every n-gram in Python.
- Metrics that are means over images (ROUGE-L, CLIPScore, BERTScore, ...): sums of the value
  and of "has a value" per image.

The 95% interval is the percentile interval of the B - A differences over the resamples. The
p-value is a paired approximate-randomization (permutation) test of the same statistic: each
round swaps the two systems' captions on a random half of the images (each image independently
with probability 1/2) and recomputes B - A; p = (1 + #{|permuted| >= |observed|}) / (1 + rounds),
two-sided. Under the permutation the references, and so CIDEr's document frequencies, do not
change, which makes each image's CIDEr-D score fixed.

``captune.metrics.cider.cider_from_stats(stats, indices)`` recomputes CIDEr-D for one resample at
a time (about 20 ms for 5,000 images); ``CiderD`` here evaluates a block of resamples in a few
sparse-dense products, about 4 times faster over 1,000 resamples and two systems
(``benchmarks/bootstrap.py``). Both are tested against pycocoevalcap run on each resampled list.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import sparse

BLEU_SMALL, BLEU_TINY = 1e-9, 1e-15  # pycocoevalcap's constants
CIDER_N, CIDER_SIGMA = 4, 6.0
BLOCK = 32  # resamples per block: bounds memory at about 4 x 5,000 images x 5 refs x BLOCK floats


@dataclass
class PairedResult:
    a: float
    b: float
    delta: float
    ci_low: float
    ci_high: float
    p_value: float


@lru_cache(maxsize=1 << 17)
def ngram_counts(text: str, n: int = 4) -> dict[tuple[str, ...], int]:
    """n-gram counts (orders 1..n) of a tokenized text (words split on whitespace); read-only."""
    tokens = text.split()
    counts: dict[tuple[str, ...], int] = {}
    for k in range(1, n + 1):
        for i in range(len(tokens) - k + 1):
            g = tuple(tokens[i : i + k])
            counts[g] = counts.get(g, 0) + 1
    return counts


# ---- BLEU ------------------------------------------------------------------------------------
def bleu_rows(preds: Sequence[str], refs: Sequence[Sequence[str]]) -> np.ndarray:
    """Per image ``[hyp_len, closest_ref_len, guess_1..4, correct_1..4]`` of PTB-tokenized text
    (the counts of ``captune.metrics.bleu.bleu_stats``)."""
    from captune.metrics.bleu import bleu_stats

    s = bleu_stats(list(preds), [list(r) for r in refs])
    return np.column_stack([s.testlen, s.reflen, s.guess, s.correct]).astype(float)


def bleu_from_sums(sums: np.ndarray, n: int = 4) -> np.ndarray:
    """Corpus BLEU-1..n from summed ``bleu_rows``: ``[..., 2 + 2n] -> [..., n]``."""
    sums = np.asarray(sums, dtype=float)
    guess, correct = sums[..., 2 : 2 + n], sums[..., 2 + n : 2 + 2 * n]
    logp = np.log((correct + BLEU_TINY) / (guess + BLEU_SMALL))
    bleu = np.exp(np.cumsum(logp, axis=-1) / np.arange(1, n + 1))
    ratio = (sums[..., 0] + BLEU_TINY) / (sums[..., 1] + BLEU_SMALL)
    with np.errstate(divide="ignore", over="ignore"):
        brevity = np.where(ratio < 1, np.exp(1 - 1 / ratio), 1.0)
    return bleu * brevity[..., None]


# ---- CIDEr-D ---------------------------------------------------------------------------------
class CiderD:
    """pycocoevalcap's CIDEr-D for several hypothesis lists over the same references, with the
    document frequencies taken from a weighted sample of the images (weights = how often each
    image was drawn; all ones gives the ordinary score).

    With idf(g) = log N - log max(1, df(g)), every quantity CIDEr-D needs is a sum over n-grams of
    a fixed coefficient times idf(g)^2: the clipped dot product (min(tf_h, tf_r) * tf_r), and the
    squared norms (tf^2). Rows of the sparse matrices below are (image, reference, n-gram order)
    or (image, order); columns are the n-grams of the references. Hypothesis n-grams that no
    reference contains have df 0, so idf = log N for them whatever the resample.
    """

    def __init__(
        self,
        systems: Sequence[Sequence[str]],
        refs: Sequence[Sequence[str]],
        n: int = CIDER_N,
        sigma: float = CIDER_SIGMA,
    ):
        self.n, self.sigma, self.n_images = n, sigma, len(refs)
        self._vocab: dict[tuple[str, ...], int] = {}
        ref_counts = [[ngram_counts(r, n) for r in rs] for rs in refs]
        if any(not rs for rs in ref_counts):
            raise ValueError("CIDEr-D needs at least one reference per image")
        self._build_refs(ref_counts)
        self._systems = [
            self._build_system([ngram_counts(p, n) for p in preds], ref_counts) for preds in systems
        ]

    def _build_refs(self, ref_counts) -> None:
        n, images_of, norms = self.n, [], ([], [], [])
        self.offsets, self.ref_lengths, row = [], [], 0
        for i, rs in enumerate(ref_counts):
            self.offsets.append(row)
            for g in {g for counts in rs for g in counts}:
                gid = self._vocab.setdefault(g, len(self._vocab))
                if gid == len(images_of):
                    images_of.append([])
                images_of[gid].append(i)
            for counts in rs:
                self.ref_lengths.append(sum(c for g, c in counts.items() if len(g) == 2))
                for g, c in counts.items():
                    _append(norms, row + len(g) - 1, self._vocab[g], float(c * c))
                row += n
        self.n_rows = row  # [P] rows: one per (image, reference, n-gram order)
        # n-grams found in the references of the same images have the same df in every resample:
        # they share a column (most n-grams belong to one image, so columns <= N + shared sets).
        sets: dict[tuple[int, ...], int] = {}
        self._column = np.array(
            [sets.setdefault(tuple(imgs), len(sets)) for imgs in images_of], dtype=np.int64
        )
        rows = np.concatenate([np.full(len(k), c) for k, c in sets.items()]) if sets else np.zeros(0)
        cols = np.concatenate([np.array(k) for k in sets]) if sets else np.zeros(0)
        self._df = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(sets), self.n_images))
        self._ref_norms = self._csr(norms, self.n_rows)

    def _csr(self, triplets, n_rows: int) -> sparse.csr_matrix:
        """Rows x df-columns; coefficients of n-grams that share a column are summed."""
        rows, gids, vals = triplets
        cols = self._column[np.asarray(gids, dtype=np.int64)]
        return sparse.csr_matrix((vals, (rows, cols)), shape=(n_rows, self._df.shape[0]))

    def _build_system(self, hyps, ref_counts) -> dict:
        n, num, hyp = self.n, ([], [], []), ([], [], [])
        unseen = np.zeros(n * self.n_images)  # sum of tf^2 over hypothesis n-grams in no reference
        agg, q_of_row = ([], [], []), np.zeros(self.n_rows, dtype=np.int64)
        for i, (h, rs) in enumerate(zip(hyps, ref_counts)):
            for g, c in h.items():
                col = self._vocab.get(g)
                if col is None:
                    unseen[n * i + len(g) - 1] += c * c
                else:
                    _append(hyp, n * i + len(g) - 1, col, float(c * c))
            h_len = sum(c for g, c in h.items() if len(g) == 2)
            for j, r in enumerate(rs):
                row = self.offsets[i] + n * j
                for g, c in h.items():
                    if g in r:
                        _append(num, row + len(g) - 1, self._vocab[g], float(min(c, r[g]) * r[g]))
                delta = h_len - self.ref_lengths[row // n]
                weight = math.exp(-(delta**2) / (2 * self.sigma**2)) * 10.0 / (n * len(rs))
                for k in range(n):
                    _append(agg, i, row + k, weight)
                q_of_row[row : row + n] = np.arange(n * i, n * i + n)
        agg_matrix = sparse.csr_matrix((agg[2], (agg[0], agg[1])), shape=(self.n_images, self.n_rows))
        return {
            "num": self._csr(num, self.n_rows),
            "hyp": self._csr(hyp, n * self.n_images),
            "unseen": unseen,
            "q": q_of_row,
            "agg": agg_matrix,
        }

    def image_scores(self, weights: np.ndarray) -> list[np.ndarray]:
        """Per-image CIDEr-D of each system under the document frequencies of ``weights``
        ([r, N] draw counts, every row with the same total): one ``[N, r]`` array per system."""
        weights = np.atleast_2d(np.asarray(weights, dtype=float))
        total = int(weights[0].sum().round())
        if not np.all(np.abs(weights.sum(axis=1) - total) < 1e-9):
            raise ValueError("every weight row must draw the same number of images")
        # idf^2 for every possible document frequency 0..total, looked up instead of a log per entry.
        table = (math.log(total) - np.log(np.maximum(np.arange(total + 1), 1.0))) ** 2
        df = np.rint(self._df @ weights.T).astype(np.int64)  # [columns, r]
        idf2 = table[df]  # [columns, r]
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


def _append(triplets, row: int, col: int, value: float) -> None:
    triplets[0].append(row)
    triplets[1].append(col)
    triplets[2].append(value)


# ---- statistics --------------------------------------------------------------------------------
class AdditiveStat:
    """A corpus value that is a function of per-image rows summed with the draw counts."""

    def __init__(self, names: Sequence[str], rows_a: np.ndarray, rows_b: np.ndarray, fn):
        self.names = tuple(names)
        self.rows_a, self.rows_b, self.fn = np.asarray(rows_a, float), np.asarray(rows_b, float), fn

    def bootstrap(self, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.fn(counts @ self.rows_a), self.fn(counts @ self.rows_b)  # [r, k] each

    def permute(self, swap: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        moved = swap @ (self.rows_b - self.rows_a)  # [r, cols]: what the swapped images change
        return self.fn(self.rows_a.sum(0) + moved), self.fn(self.rows_b.sum(0) - moved)


class MeanStat(AdditiveStat):
    """The mean of a per-image value over the images that have one (None/NaN: no value)."""

    def __init__(self, name: str, values_a: Sequence[float | None], values_b: Sequence[float | None]):
        super().__init__((name,), _value_rows(values_a), _value_rows(values_b), _ratio)


class BleuStat(AdditiveStat):
    """Corpus BLEU-1..4 from PTB-tokenized hypotheses and references."""

    def __init__(
        self,
        preds_a: Sequence[str],
        preds_b: Sequence[str],
        refs: Sequence[Sequence[str]],
        names: Sequence[str] = ("bleu_1", "bleu_2", "bleu_3", "bleu_4"),
    ):
        super().__init__(names, bleu_rows(preds_a, refs), bleu_rows(preds_b, refs), bleu_from_sums)


class CiderStat:
    """Corpus CIDEr-D; on bootstrap resamples the document frequencies follow the resample."""

    def __init__(
        self,
        preds_a: Sequence[str],
        preds_b: Sequence[str],
        refs: Sequence[Sequence[str]],
        name: str = "cider",
    ):
        self.names = (name,)
        self.cider = CiderD([preds_a, preds_b], refs)
        full = self.cider.image_scores(np.ones((1, len(refs))))
        self._fixed = AdditiveStat(self.names, _value_rows(full[0][:, 0]), _value_rows(full[1][:, 0]), _ratio)

    def bootstrap(self, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        a, b = self.cider.corpus(counts)
        return a[:, None], b[:, None]

    def permute(self, swap: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self._fixed.permute(swap)


def _value_rows(values) -> np.ndarray:
    v = np.array([np.nan if x is None else x for x in values], dtype=float)
    present = ~np.isnan(v)
    return np.stack([np.where(present, v, 0.0), present.astype(float)], axis=1)


def _ratio(sums: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return (sums[..., 0] / sums[..., 1])[..., None]


# ---- the test -------------------------------------------------------------------------------
def bootstrap_counts(rng: np.random.Generator, resamples: int, n: int) -> np.ndarray:
    """How often each of ``n`` images is drawn in each resample: ``[resamples, n]``."""
    idx = rng.integers(0, n, size=(resamples, n)) + (np.arange(resamples) * n)[:, None]
    return np.bincount(idx.ravel(), minlength=resamples * n).reshape(resamples, n).astype(float)


def resample_blocks(n: int, resamples: int, seed: int) -> Iterator[np.ndarray]:
    """The bootstrap draw counts, block by block (the same seed gives the same draws)."""
    rng = np.random.default_rng([seed, 0])
    for start in range(0, resamples, BLOCK):
        yield bootstrap_counts(rng, min(BLOCK, resamples - start), n)


def swap_blocks(n: int, rounds: int, seed: int) -> Iterator[np.ndarray]:
    """Permutation rounds: 1 where the two systems' captions trade places, ``[r, n]`` per block."""
    rng = np.random.default_rng([seed, 1])
    for start in range(0, rounds, BLOCK):
        yield (rng.random((min(BLOCK, rounds - start), n)) < 0.5).astype(float)


def paired_test(
    stats: Sequence, n: int, resamples: int = 1000, seed: int = 0, confidence: float = 0.95
) -> dict[str, PairedResult]:
    """B - A for every metric of ``stats``, with its bootstrap interval and permutation p-value."""
    if resamples < 1:
        raise ValueError("resamples must be >= 1")
    full = [s.bootstrap(np.ones((1, n))) for s in stats]
    boot = _collect(stats, resample_blocks(n, resamples, seed), "bootstrap")
    perm = _collect(stats, swap_blocks(n, resamples, seed), "permute")
    tail = (1 - confidence) / 2 * 100
    out = {}
    for s, (a, b), d_boot, d_perm in zip(stats, full, boot, perm):
        for k, name in enumerate(s.names):
            observed = float(b[0, k] - a[0, k])
            low, high = np.nanpercentile(d_boot[:, k], [tail, 100 - tail])
            tol = 1e-9 * max(1.0, abs(observed))
            extreme = int(np.sum(np.abs(d_perm[:, k]) >= abs(observed) - tol))
            out[name] = PairedResult(
                float(a[0, k]),
                float(b[0, k]),
                observed,
                float(low),
                float(high),
                (1 + extreme) / (1 + resamples),
            )
    return out


def _collect(stats, blocks, method: str) -> list[np.ndarray]:
    parts: list[list[np.ndarray]] = [[] for _ in stats]
    for block in blocks:
        for part, s in zip(parts, stats):
            a, b = getattr(s, method)(block)
            part.append(b - a)
    return [np.concatenate(p) for p in parts]
