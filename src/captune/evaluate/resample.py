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
  closest reference length and the clipped n-gram matches and totals
  (``captune.metrics.bleu.bleu_rows``); corpus BLEU is ``bleu_from_sums`` of their sums.
- CIDEr-D (pycocoevalcap's ``Cider``: sigma 6, clipped tf-idf, x10): the document frequencies
  and log N come from the resample itself (an image drawn twice counts twice, as it would in a
  list scored by pycocoevalcap); ``captune.metrics.cider.CiderD`` scores a block of resamples.
- Metrics that are means over images (ROUGE-L, CLIPScore, BERTScore, ...): sums of the value
  and of "has a value" per image.

The 95% interval is the percentile interval of the B - A differences over the resamples. The
p-value is a paired approximate-randomization (permutation) test of the same statistic: each
round swaps the two systems' captions on a random half of the images (each image independently
with probability 1/2) and recomputes B - A; p = (1 + #{|permuted| >= |observed|}) / (1 + rounds),
two-sided. Under the permutation the references, and so CIDEr's document frequencies, do not
change, which makes each image's CIDEr-D score fixed.

The metrics themselves live in ``captune.metrics``; this module only draws the resamples and
the permutations. ``captune.metrics.cider.cider_from_stats(stats, indices)`` recomputes CIDEr-D
for one resample at a time (about 20 ms for 5,000 images); ``CiderD`` evaluates a block of
resamples in a few sparse-dense products, about 4 times faster over 1,000 resamples and two
systems (``benchmarks/bootstrap.py``). Both are tested against pycocoevalcap run on each
resampled list.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from captune.metrics.bleu import OUTPUTS as BLEU_OUTPUTS
from captune.metrics.bleu import bleu_from_sums, bleu_rows
from captune.metrics.cider import CiderD

BLOCK = 32  # resamples per block: bounds memory at about 4 x 5,000 images x 5 refs x BLOCK floats


@dataclass
class PairedResult:
    a: float
    b: float
    delta: float
    ci_low: float
    ci_high: float
    p_value: float


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
    """Corpus BLEU-1..4 from PTB-tokenized hypotheses and references (``resources``: a
    ``MetricResources`` whose n-gram counts ``CiderStat`` can reuse)."""

    def __init__(
        self,
        preds_a: Sequence[str],
        preds_b: Sequence[str],
        refs: Sequence[Sequence[str]],
        names: Sequence[str] = BLEU_OUTPUTS,
        resources=None,
    ):
        rows_a, rows_b = bleu_rows(preds_a, refs, resources), bleu_rows(preds_b, refs, resources)
        super().__init__(names, rows_a, rows_b, bleu_from_sums)


class CiderStat:
    """Corpus CIDEr-D; on bootstrap resamples the document frequencies follow the resample."""

    def __init__(
        self,
        preds_a: Sequence[str],
        preds_b: Sequence[str],
        refs: Sequence[Sequence[str]],
        name: str = "cider",
        resources=None,
    ):
        self.names = (name,)
        self.cider = CiderD([preds_a, preds_b], refs, resources)
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
