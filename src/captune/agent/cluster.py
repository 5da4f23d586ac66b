"""Events and groups: the usable photos split into events by shooting time, each event into groups by content.

    photos, info = cluster_photos(photos, cfg.cluster, embeddings, label_scores)

- Events: the photos with status ``ok`` in shooting-time order; a gap longer than
  ``time_gap_minutes`` starts a new event, numbered ``e01``, ``e02``, ... in time order. Photos
  without a shooting time form one event of their own, ``e00`` ("undated").
- Groups: k-means on the CLIP embeddings (L2-normalised), or, with ``use_label_features``, on
  ``[embedding, label_weight * label scores]`` (each label's scores z-scored over all the photos
  clustered when ``label_norm: zscore``; the fused vector L2-normalised when ``fuse_normalize``).
  ``k: auto`` tries k = 2 .. min(max_k, n - 1, n / min_mean_images_per_post) and keeps the best
  silhouette (euclidean distance between the feature vectors, which on unit vectors is monotone
  in cosine distance). The bound n / 3 is there because on photos of distinct scenes the
  silhouette keeps rising with k: on the demo photos it chose k = 10 for an event of 20 photos and
  the run made 43 posts of 1-2 photos from 92. An event is one group, with the reason recorded,
  when it has fewer than 3 photos (silhouette needs 2 <= k <= n - 1), when no k >= 2 is allowed,
  or when its best silhouette is below ``SILHOUETTE_FLOOR``. A number k is
  capped by the event's photos. Groups are named ``e01-c01``, ... in order of their first photo.
- No group holds more than ``max_images_per_post``: a larger one is split by 2-means, again and
  again (recursive bisection); a group 2-means cannot split (identical vectors) is cut in time order.

k-means is a small numpy implementation (greedy k-means++ seeding, Lloyd iterations, the best of
``N_INIT`` runs by inertia) that runs every k of an event in one batch, on the event's vectors
expressed in their own span (same distances, at most n columns): scikit-learn's KMeans and
silhouette_score take ~57 ms for k = 2..12 on an event of 33 photos, 17 s for 300 events. The
silhouette is scikit-learn's definition (tested against it). Everything is seeded by ``cfg.seed``
and the event's number, so the same seed gives the same groups. The matrix products are small, so
BLAS runs on one thread here: with two on a busy 2-core machine, 10,000 photos took 35 s instead
of 3.3 s (``benchmarks/agent.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from captune.agent.config import ClusterSection
from captune.agent.records import Photo

N_INIT = 4
"""k-means runs per k; the one with the lowest inertia is kept."""
MAX_ITER = 100
SILHOUETTE_FLOOR = 0.1
"""An event whose best silhouette is below this is one group (see benchmarks/RESULTS.md, "Agent")."""
SILHOUETTE_SAMPLE = 2000
"""Events with more photos score the silhouette on a seeded sample of this many (as scikit-learn's sample_size)."""
UNDATED = "e00"


def cluster_photos(photos: list[Photo], cfg: ClusterSection, embeddings: Mapping[str, np.ndarray],
                   label_scores: Mapping[str, np.ndarray] | None = None) -> tuple[list[Photo], dict]:
    """Set ``event`` and ``cluster`` on the photos with status ok (others unchanged, order kept).

    ``embeddings`` and ``label_scores`` are keyed by ``photo.sha256``. Returns the photos and the
    info: ``events`` maps each event id to its photos ``n``, ``start`` and ``end`` times, the k
    k-means chose, ``silhouette`` (None, with the ``reason``, when the event is one group), the
    silhouettes ``tried`` per k, the ``bisections`` the size cap made, and its ``groups`` and their
    sizes (``clusters``); overall ``n_events``, ``n_clusters`` and the ``mean_silhouette`` of the
    events with k >= 2.
    """
    if not isinstance(cfg.k, str) and cfg.k < 1:
        raise ValueError(f"cluster.k: must be auto or at least 1, got {cfg.k}")
    with threadpool_limits(1, user_api="blas"):  # tiny products: a second BLAS thread only waits (see module)
        return _cluster(photos, cfg, embeddings, label_scores)


def _cluster(photos: list[Photo], cfg: ClusterSection, embeddings: Mapping[str, np.ndarray],
             label_scores: Mapping[str, np.ndarray] | None) -> tuple[list[Photo], dict]:
    index = [i for i, p in enumerate(photos) if p.status == "ok"]
    usable = [photos[i] for i in index]
    vectors = features(usable, cfg, embeddings, label_scores)
    out = list(photos)
    events: dict[str, dict] = {}
    for number, (event, members) in enumerate(split_events(usable, cfg.time_gap_minutes)):
        rng = np.random.default_rng([cfg.seed, number])
        labels, decision = cluster_event(vectors[members], cfg, rng)
        for m, label in zip(members, labels, strict=True):
            out[index[m]] = replace(usable[m], event=event, cluster=f"{event}-c{label + 1:02d}")
        sizes = np.bincount(labels)
        events[event] = {"n": len(members), "start": usable[members[0]].taken_at,
                         "end": usable[members[-1]].taken_at, **decision, "groups": len(sizes),
                         "clusters": {f"{event}-c{c + 1:02d}": int(s) for c, s in enumerate(sizes)}}
    scored = [e["silhouette"] for e in events.values() if e["silhouette"] is not None]
    return out, {"n_events": len(events), "n_clusters": sum(e["groups"] for e in events.values()),
                 "mean_silhouette": float(np.mean(scored)) if scored else None,
                 "silhouette_floor": SILHOUETTE_FLOOR, "silhouette_metric": "euclidean", "events": events}


def features(photos: list[Photo], cfg: ClusterSection, embeddings: Mapping[str, np.ndarray],
             label_scores: Mapping[str, np.ndarray] | None) -> np.ndarray:
    """The vectors clustered, one row per photo: unit embeddings, optionally fused with label scores."""
    if not photos:
        return np.zeros((0, 1))
    e = _unit(np.stack([_lookup(embeddings, p, "embedding") for p in photos]).astype(np.float64))
    if not cfg.use_label_features:
        return e
    if label_scores is None:
        raise ValueError("cluster.use_label_features is true but no label scores were given: "
                         "run categorize first, or set cluster.use_label_features=false")
    s = np.stack([_lookup(label_scores, p, "label scores") for p in photos]).astype(np.float64)
    if cfg.label_norm == "zscore":
        std = s.std(axis=0)
        s = (s - s.mean(axis=0)) / np.where(std > 0, std, 1.0)
    fused = np.hstack([e, cfg.label_weight * s])
    return _unit(fused) if cfg.fuse_normalize else fused


def split_events(photos: list[Photo], gap_minutes: float) -> list[tuple[str, list[int]]]:
    """``[(event id, photo indexes in time order)]``: dated events first (e01, ...), then e00 if any undated."""
    dated = sorted((i for i, p in enumerate(photos) if p.timestamp is not None),
                   key=lambda i: (photos[i].timestamp, photos[i].id))
    events: list[list[int]] = []
    for i in dated:
        if events and photos[i].timestamp - photos[events[-1][-1]].timestamp <= gap_minutes * 60:
            events[-1].append(i)
        else:
            events.append([i])
    named = [(f"e{k + 1:02d}", members) for k, members in enumerate(events)]
    undated = sorted((i for i, p in enumerate(photos) if p.timestamp is None), key=lambda i: photos[i].id)
    return named + ([(UNDATED, undated)] if undated else [])


def cluster_event(x: np.ndarray, cfg: ClusterSection, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Group labels 0, 1, ... (in order of first photo) for one event's vectors, and what was decided."""
    y = _span(np.asarray(x, dtype=np.float64))  # (n, min(n, d)): same distances, cheaper k-means
    labels, info = choose_k(y, cfg, rng)
    capped = cap_sizes(y, labels, cfg.max_images_per_post, rng)
    info["bisections"] = int(capped.max() - labels.max())
    return capped, info


def choose_k(x: np.ndarray, cfg: ClusterSection, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """k-means labels with k auto (best silhouette) or fixed, and ``{k, silhouette, reason, tried}``."""
    n = len(x)
    one = np.zeros(n, dtype=int)
    if cfg.k == "auto":
        if n < 3:
            return one, _decision(1, None, f"single cluster: {n} photo(s); silhouette needs at least 3")
        top = min(cfg.max_k, n - 1, n // cfg.min_mean_images_per_post)
        if top < 2:
            return one, _decision(1, None, f"single cluster: {n} photos; two groups would average fewer than "
                                           f"{cfg.min_mean_images_per_post} (cluster.min_mean_images_per_post)")
        ks = list(range(2, top + 1))
        labelings = kmeans(x, ks, N_INIT, rng)
        scores = silhouettes_sampled(x, labelings, rng)
        tried = {str(k): _round(s) for k, s in zip(ks, scores, strict=True)}
        best = int(np.nanargmax(scores)) if not np.isnan(scores).all() else None
        if best is None or scores[best] < SILHOUETTE_FLOOR:
            found = "no k splits it" if best is None else f"best silhouette {scores[best]:.3f} (k={ks[best]})"
            return one, _decision(1, None, f"single cluster: {found}, below the floor {SILHOUETTE_FLOOR}", tried)
        labels = _first_appearance(labelings[best])
        return labels, _decision(int(labels.max()) + 1, _round(scores[best]), None, tried)
    k = min(int(cfg.k), n)
    if k == 1:
        return one, _decision(1, None, "single cluster: cluster.k is 1")
    if k == n:
        return np.arange(n), _decision(n, None, f"k = n = {n}: one photo per group; silhouette needs k <= n - 1")
    labels = _first_appearance(kmeans(x, [k], N_INIT, rng)[0])
    score = silhouettes_sampled(x, labels[None], rng)[0]
    return labels, _decision(int(labels.max()) + 1, None if np.isnan(score) else _round(score), None)


def cap_sizes(x: np.ndarray, labels: np.ndarray, cap: int, rng: np.random.Generator) -> np.ndarray:
    """Split every group larger than ``cap`` by recursive 2-means; labels renumbered by first photo."""
    groups: list[np.ndarray] = []
    for g in range(int(labels.max()) + 1 if len(labels) else 0):
        groups.extend(_bisect(x, np.flatnonzero(labels == g), cap, rng))
    out = np.empty(len(labels), dtype=int)
    for g, members in enumerate(sorted(groups, key=lambda m: m[0])):
        out[members] = g
    return out


def _bisect(x: np.ndarray, members: np.ndarray, cap: int, rng: np.random.Generator) -> list[np.ndarray]:
    if len(members) <= cap:
        return [members]
    halves = kmeans(x[members], [2], N_INIT, rng)[0]
    if halves.min() == halves.max():  # identical vectors: cut in time order
        halves = (np.arange(len(members)) >= len(members) // 2).astype(int)
    return _bisect(x, members[halves == 0], cap, rng) + _bisect(x, members[halves == 1], cap, rng)


def kmeans(x: np.ndarray, ks: list[int], n_init: int, rng: np.random.Generator) -> np.ndarray:
    """k-means labels ``(len(ks), n)``, one row per k: the best of ``n_init`` k-means++ runs by inertia."""
    y = np.asarray(x, dtype=np.float64)
    run_k = np.repeat(ks, n_init)  # (R,) the k of each run
    centres = _kmeans_pp(y, run_k, rng)  # (R, K, m)
    valid = np.arange(max(ks))[None, :] < run_k[:, None]  # (R, K): centres a run uses
    labels, inertia = _lloyd(y, centres, valid)
    best = [np.flatnonzero(run_k == k)[np.argmin(inertia[run_k == k])] for k in ks]
    return labels[best]


def _kmeans_pp(y: np.ndarray, run_k: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Greedy k-means++ seeding, all runs at once (as scikit-learn's).

    Each next centre is the best, by the summed squared distance it leaves, of 2 + log(k)
    candidates drawn with probability proportional to the squared distance to the nearest centre.
    """
    n, runs, k_max = len(y), len(run_k), int(run_k.max())
    trials = 2 + int(np.log(k_max))
    sq = (y ** 2).sum(1)
    chosen = np.empty((runs, k_max), dtype=int)
    chosen[:, 0] = rng.integers(n, size=runs)
    d2 = _sq_distances(y, sq, chosen[:, :1])[:, 0]  # (R, n) to the nearest centre so far
    for j in range(1, k_max):
        cum = np.where(d2.sum(1, keepdims=True) > 0, d2, 1.0).cumsum(1)  # (R, n); all alike: uniform
        draws = rng.random((runs, trials)) * cum[:, -1:]
        candidates = np.minimum((cum[:, None, :] < draws[:, :, None]).sum(2), n - 1)  # (R, T)
        left = np.minimum(d2[:, None, :], _sq_distances(y, sq, candidates))  # (R, T, n)
        best = left.sum(2).argmin(1)  # (R,)
        chosen[:, j] = candidates[np.arange(runs), best]
        d2 = left[np.arange(runs), best]
    return y[chosen]


def _sq_distances(y: np.ndarray, sq: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Squared distances ``(R, T, n)`` from the points ``rows`` ``(R, T)`` to every point."""
    return np.maximum(sq[rows][:, :, None] + sq[None, None, :] - 2 * y[rows] @ y.T, 0)


def _lloyd(y: np.ndarray, centres: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd iterations until no label changes; an emptied centre stays where it was."""
    k_max = centres.shape[1]
    previous = None
    for _ in range(MAX_ITER):
        d = (centres ** 2).sum(2)[:, None, :] - 2 * y @ centres.transpose(0, 2, 1)  # (R, n, K) minus |y|^2
        d = np.where(valid[:, None, :], d, np.inf)
        labels = d.argmin(2)  # (R, n)
        if previous is not None and np.array_equal(labels, previous):
            break
        previous = labels
        onehot = (labels[:, :, None] == np.arange(k_max)).astype(np.float64)  # (R, n, K)
        counts = onehot.sum(1)[:, :, None]  # (R, K, 1)
        centres = np.where(counts > 0, onehot.transpose(0, 2, 1) @ y / np.maximum(counts, 1), centres)
    inertia = np.take_along_axis(d, labels[:, :, None], 2)[:, :, 0].sum(1) + (y ** 2).sum()
    return labels, inertia


def silhouettes(distances: np.ndarray, labelings: np.ndarray) -> np.ndarray:
    """Mean silhouette of each row of ``labelings`` ``(B, n)`` given the distance matrix ``(n, n)``.

    As ``sklearn.metrics.silhouette_score``: a photo alone in its group scores 0; NaN for a
    labelling with fewer than 2 groups or as many groups as photos (undefined there).
    """
    k_max = int(labelings.max()) + 1
    onehot = (labelings[:, :, None] == np.arange(k_max)).astype(np.float64)  # (B, n, K)
    counts = onehot.sum(1)  # (B, K)
    sums = distances @ onehot  # (B, n, K): summed distance of each photo to each group
    own_n = np.take_along_axis(counts, labelings, 1)  # (B, n)
    a = np.take_along_axis(sums, labelings[:, :, None], 2)[:, :, 0] / np.maximum(own_n - 1, 1)
    others = np.where((onehot == 0) & (counts[:, None, :] > 0), sums / np.maximum(counts, 1)[:, None, :], np.inf)
    b = others.min(2)
    b = np.where(np.isfinite(b), b, a)  # a single group: no other group to compare with
    top = np.maximum(a, b)
    s = np.where((own_n > 1) & (top > 0), (b - a) / np.where(top > 0, top, 1), 0.0)
    groups = (counts > 0).sum(1)
    return np.where((groups >= 2) & (groups <= labelings.shape[1] - 1), s.mean(1), np.nan)


def silhouettes_sampled(x: np.ndarray, labelings: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``silhouettes`` on euclidean distances, on a seeded sample when the event is large."""
    rows = np.arange(len(x))
    if len(x) > SILHOUETTE_SAMPLE:
        rows = np.sort(rng.choice(len(x), SILHOUETTE_SAMPLE, replace=False))
    y = np.asarray(x[rows], dtype=np.float64)
    sq = (y ** 2).sum(1)
    d = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2 * y @ y.T, 0))
    np.fill_diagonal(d, 0)
    return silhouettes(d, labelings[:, rows])


def _span(x: np.ndarray) -> np.ndarray:
    """The rows, centred, in coordinates of their own span: same pairwise distances, at most n columns."""
    centred = x - x.mean(0)
    if len(x) >= x.shape[1]:
        return centred
    u, s, _ = np.linalg.svd(centred, full_matrices=False)
    return u * s


def _first_appearance(labels: np.ndarray) -> np.ndarray:
    """Labels renumbered 0, 1, ... in order of first occurrence (the photos are in time order)."""
    _, first = np.unique(labels, return_index=True)
    rename = np.empty(int(labels.max()) + 1, dtype=int)
    rename[labels[np.sort(first)]] = np.arange(len(first))
    return rename[labels]


def _decision(k: int, silhouette: float | None, reason: str | None, tried: dict | None = None) -> dict[str, Any]:
    return {"k": k, "silhouette": silhouette, "reason": reason, "tried": tried or {}}


def _round(value: float) -> float | None:
    return None if np.isnan(value) else round(float(value), 4)


def _unit(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


def _lookup(table: Mapping[str, np.ndarray], photo: Photo, what: str) -> np.ndarray:
    if photo.sha256 not in table:
        raise ValueError(f"cluster: no {what} for photo {photo.id} (sha256 {photo.sha256}); every photo with "
                         f"status ok needs one: run the embeddings and categorize stages first")
    return np.asarray(table[photo.sha256])
