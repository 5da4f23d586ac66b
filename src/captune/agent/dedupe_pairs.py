"""The CLIP link of dedupe: pairs of photos shot within a burst window that CLIP finds alike.

    pairs = clip_burst_pairs(embeddings, timestamps, threshold=0.80, burst_seconds=10.0)

Two photos are linked when their cosine is at least ``threshold`` and their shooting times differ
by at most ``burst_seconds``. Comparing every pair costs n^2 dot products; here the photos are
sorted by time and each block of ``BLOCK`` consecutive photos is compared, in one matrix product,
only with the photos from its own start to the end of its time window, so the work grows with n
times the photos per window (``benchmarks/agent.py``: 10,000 photos, see ``benchmarks/RESULTS.md``).
The pairs are exactly those of the all-pairs rule (``tests/unit/agent/test_dedupe_pairs.py``).
"""

from __future__ import annotations

import numpy as np
from threadpoolctl import threadpool_limits

BLOCK = 256
"""Rows per matrix product: large enough to amortise numpy's overhead, small enough to stay in cache.
The products are small, so BLAS runs on one thread: a second one mostly waits for a core."""


def clip_burst_pairs(embeddings: np.ndarray, timestamps: np.ndarray, threshold: float,
                     burst_seconds: float) -> np.ndarray:
    """Index pairs ``(i, j)``, ``i < j``, sorted, of rows with cosine >= threshold shot within burst_seconds.

    ``embeddings`` are unit-norm rows ``(n, d)`` (cosine = dot product); ``timestamps`` are seconds
    ``(n,)``, NaN for a photo without a shooting time, which is never linked. Returns ``(m, 2)`` int64.
    """
    times = np.asarray(timestamps, dtype=np.float64)
    dated = np.flatnonzero(~np.isnan(times))
    order = dated[np.argsort(times[dated], kind="stable")]
    t = times[order]
    e = np.asarray(embeddings)[order]
    with threadpool_limits(1, user_api="blas"):
        found = [_block_pairs(e, t, order, start, burst_seconds, threshold) for start in range(0, len(order), BLOCK)]
    return _sorted_pairs(np.concatenate(found) if found else np.zeros((0, 2), np.int64))


def _block_pairs(e: np.ndarray, t: np.ndarray, order: np.ndarray, start: int, burst_seconds: float,
                 threshold: float) -> np.ndarray:
    """Pairs whose earlier photo (in time order) is in the block starting at ``start``."""
    stop = min(start + BLOCK, len(order))
    end = int(np.searchsorted(t, t[stop - 1] + burst_seconds, side="right"))  # the window's end
    sims = e[start:stop] @ e[start:end].T  # (rows, start..end)
    near = np.abs(t[start:end][None, :] - t[start:stop, None]) <= burst_seconds
    later = np.arange(start, end)[None, :] > np.arange(start, stop)[:, None]
    rows, cols = np.nonzero((sims >= threshold) & near & later)
    return np.stack([order[rows + start], order[cols + start]], axis=1)


def _sorted_pairs(pairs: np.ndarray) -> np.ndarray:
    """Each pair as (smaller, larger), rows in lexicographic order."""
    pairs = np.sort(pairs.astype(np.int64).reshape(-1, 2), axis=1)
    return pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]
