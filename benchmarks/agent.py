"""Dedupe links and clustering of 10,000 photos with given 512-d embeddings, against the all-pairs way.

    python benchmarks/agent.py [--photos 10000] [--events 300] [--threads 2] [--repeats 3]

Data (synthetic, seeded): events 6 hours apart, each with 2-6 scenes; a photo is its scene's unit
centre plus Gaussian noise (cosine about 0.6 between two photos of one scene, 0 across scenes),
shot every 5-120 s; 3% are planted near-duplicates (the vector plus a little noise, cosine about
0.99, shot 0.5-3 s after) and 1% have no shooting time. Measured, best of ``--repeats``:

1. dedupe's CLIP link (cosine >= 0.80 within 10 s) and union-find groups: ``clip_burst_pairs``
   (sorted by time, blockwise products within the window) against the all-pairs rule (the full
   n x n cosine and time-difference test, in row blocks of 1,000 to bound memory) with the same
   union-find; the pairs and groups must be identical.
2. ``cluster_photos`` with the default config on the photos left after dedupe, and for
   reference scikit-learn's KMeans (n_init=4) + silhouette_score for k = 2..12 on 20 events,
   scaled to all events (what the same search costs with them), on one thread as cluster_photos.
3. The silhouette floor: the best silhouette over k = 2..12 of structureless events (unit
   vectors with an isotropic and with a decaying spectrum, as real embeddings have) and of the
   planted events, as ``cluster.SILHOUETTE_FLOOR`` is chosen from.

Threads: ``--threads`` (default 2) caps numpy's BLAS and OpenMP pools before numpy loads; the
all-pairs baseline runs with them (one large product per row block), while ``clip_burst_pairs``
and ``cluster_photos`` hold BLAS to one thread themselves (their products are small).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time


def threads_from_argv() -> str:
    """The --threads value, read before numpy is imported (its pools are sized at import)."""
    argv = sys.argv[1:]
    return argv[argv.index("--threads") + 1] if "--threads" in argv else "2"


for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = threads_from_argv()

import numpy as np

BURST, THRESHOLD, DIM = 10.0, 0.80, 512


def synthetic(n: int, n_events: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Embeddings ``(n, 512)`` float32, times ``(n,)`` (NaN: none), truth event and duplicate-of (-1: none)."""
    rng = np.random.default_rng(seed)
    event = np.sort(rng.integers(0, n_events, size=n))
    scenes = rng.integers(2, 7, size=n_events)
    scene = (rng.random(n) * scenes[event]).astype(int)
    centres = rng.normal(size=(n_events, 7, DIM))
    x = centres[event, scene] / np.sqrt(DIM) + 0.8 * rng.normal(size=(n, DIM)) / np.sqrt(DIM)
    first = np.r_[True, event[1:] != event[:-1]]  # each event's first photo
    elapsed = np.cumsum(np.where(first, 0.0, rng.uniform(5, 120, size=n)))
    times = event * 6 * 3600.0 + elapsed - np.maximum.accumulate(np.where(first, elapsed, 0.0))
    duplicate_of = np.full(n, -1)
    for i in np.flatnonzero(rng.random(n) < 0.03)[1:]:
        if event[i - 1] == event[i]:
            duplicate_of[i] = i - 1
            x[i] = x[i - 1] + 0.1 * rng.normal(size=DIM) / np.sqrt(DIM)
            times[i] = times[i - 1] + rng.uniform(0.5, 3)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    times[rng.random(n) < 0.01] = np.nan
    return x.astype(np.float32), times, event, duplicate_of


def all_pairs(e: np.ndarray, t: np.ndarray, threshold: float, burst: float, block: int = 1000) -> np.ndarray:
    """The rule on every pair: n x n cosines and time differences, a row block at a time."""
    found = []
    for a in range(0, len(e), block):
        sims = e[a:a + block] @ e.T  # (block, n)
        close = np.abs(t[a:a + block, None] - t[None, :]) <= burst  # NaN: never close
        upper = np.arange(len(e))[None, :] > np.arange(a, min(a + block, len(e)))[:, None]
        i, j = np.nonzero((sims >= threshold) & close & upper)
        found.append(np.stack([i + a, j], axis=1))
    return np.concatenate(found).astype(np.int64)


def best_of(repeats: int, fn):
    """(result, best wall seconds, CPU seconds of that run)."""
    best = None
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        result = fn()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        if best is None or wall < best[1]:
            best = (result, wall, cpu)
    return best


def dedupe(e, t, repeats):
    from captune.agent.dedupe_pairs import clip_burst_pairs
    from captune.data.near_duplicates import components

    def fast():
        pairs = clip_burst_pairs(e, t, THRESHOLD, BURST)
        return pairs, components(len(e), pairs)

    def slow():
        pairs = all_pairs(e, t, THRESHOLD, BURST)
        return pairs, components(len(e), pairs)

    (pairs, groups), fast_s, fast_cpu = best_of(repeats, fast)
    (ref_pairs, ref_groups), slow_s, slow_cpu = best_of(repeats, slow)
    same = np.array_equal(pairs, ref_pairs) and groups == ref_groups
    print(f"dedupe links + groups: {fast_s:.3f} s wall ({fast_cpu:.3f} CPU s); all pairs {slow_s:.3f} s "
          f"({slow_cpu:.3f} CPU s): {slow_s / fast_s:.0f}x; {len(pairs)} pairs, "
          f"{len(set(groups))} groups; identical pairs and groups: {same}")
    if not same:
        raise SystemExit("the windowed pairs differ from all pairs")
    return groups, fast_s


def photos_after_dedupe(e, t, groups):
    from captune.agent.records import Photo

    seen: set[int] = set()
    photos = []
    for i in range(len(e)):
        status = "duplicate" if groups[i] in seen else "ok"
        seen.add(groups[i])
        photos.append(Photo(id=f"{i:05d}.jpg", path=f"/p/{i:05d}.jpg", sha256=f"{i:064x}", status=status,
                            timestamp=None if np.isnan(t[i]) else float(t[i])))
    return photos, {p.sha256: e[i] for i, p in enumerate(photos)}


def clustering(e, t, groups, truth_event, repeats):
    from captune.agent.cluster import cluster_photos
    from captune.agent.config import ClusterSection
    from captune.agent.metrics import cluster_scores

    photos, embeddings = photos_after_dedupe(e, t, groups)
    (out, info), wall, cpu = best_of(repeats, lambda: cluster_photos(photos, ClusterSection(), embeddings))
    scores = cluster_scores(out, {p.id: str(truth_event[i]) for i, p in enumerate(out)})["events"]
    sizes = [s for ev in info["events"].values() for s in ev["clusters"].values()]
    print(f"cluster_photos on {sum(p.status == 'ok' for p in photos)} photos: {wall:.3f} s wall ({cpu:.3f} CPU s); "
          f"{info['n_events']} events (ARI {scores['ari']:.4f} against the planted ones), {info['n_clusters']} "
          f"groups of at most {max(sizes)}, mean silhouette {info['mean_silhouette']:.4f}")
    return out, info, wall


def sklearn_reference(out, embeddings_by_index, info, n_events: int = 20) -> None:
    """KMeans + silhouette_score over the same k range on a few events, scaled to all of them."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score
    from threadpoolctl import threadpool_limits

    members: dict[str, list[int]] = {}
    for i, p in enumerate(out):
        if p.event not in (None, "e00"):
            members.setdefault(p.event, []).append(i)
    chosen = sorted(members)[:n_events]
    t0 = time.perf_counter()
    theirs = []
    with threadpool_limits(1):  # as cluster_photos; with two threads on a busy machine it is ~15x slower
        for ev in chosen:
            x = embeddings_by_index[members[ev]]
            ks = range(2, min(12, len(x) - 1) + 1)
            theirs.append(max(silhouette_score(x, KMeans(k, n_init=4, random_state=0).fit_predict(x)) for k in ks))
    per_event = (time.perf_counter() - t0) / len(chosen)
    ours = [info["events"][ev]["silhouette"] or max(info["events"][ev]["tried"].values()) for ev in chosen]
    print(f"scikit-learn KMeans + silhouette_score, k 2..12: {per_event * 1000:.0f} ms an event, "
          f"{per_event * len(members):.1f} s for {len(members)} events; best silhouette on {len(chosen)} events: "
          f"mean {np.mean(theirs):.4f} (ours {np.mean(ours):.4f})")


def floor(info) -> None:
    from captune.agent.cluster import cluster_event
    from captune.agent.config import ClusterSection

    rng = np.random.default_rng(1)
    spectra = {"isotropic": np.ones(DIM), "decaying (rank^-0.7)": np.arange(1, DIM + 1) ** -0.7}
    for name, scale in spectra.items():
        null = {}
        for n in (3, 5, 8, 12, 20, 33, 60):
            x = [(rng.normal(size=(n, DIM)) + 3 * rng.normal(size=DIM)) * scale for _ in range(50)]
            null[n] = [max(cluster_event(v / np.linalg.norm(v, axis=1, keepdims=True), ClusterSection(),
                                         np.random.default_rng(k))[1]["tried"].values()) for k, v in enumerate(x)]
        print(f"best silhouette of structureless events, {name} (50 each), 99th percentile / max: " + ", ".join(
            f"n={n} {np.quantile(v, 0.99):.3f}/{max(v):.3f}" for n, v in null.items()))
    planted = [max(ev["tried"].values()) for ev in info["events"].values() if ev["tried"]]
    print(f"best silhouette of the planted events: min {min(planted):.3f}, 1st percentile "
          f"{np.quantile(planted, 0.01):.3f}, median {np.median(planted):.3f}")


def machine() -> str:
    cpu = subprocess.run(["lscpu"], check=False, capture_output=True, text=True).stdout
    model = next((line.split(":", 1)[1].strip() for line in cpu.splitlines() if "Model name" in line), "?")
    uptime = subprocess.run(["uptime"], check=False, capture_output=True, text=True).stdout.strip()
    return (f"machine: nproc {os.cpu_count()}, {model}, Python {platform.python_version()}, numpy "
            f"{np.__version__}, {os.environ['OMP_NUM_THREADS']} threads; uptime: {uptime}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--photos", type=int, default=10000)
    p.add_argument("--events", type=int, default=300)
    p.add_argument("--threads", default="2", help="BLAS/OpenMP threads (read before numpy loads)")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    print(machine())
    e, t, truth_event, _ = synthetic(args.photos, args.events)
    print(f"{args.photos} photos, {args.events} events, {DIM}-d embeddings, {int(np.isnan(t).sum())} without a time")
    groups, dedupe_s = dedupe(e, t, args.repeats)
    out, info, cluster_s = clustering(e, t, groups, truth_event, args.repeats)
    print(f"dedupe + clustering: {dedupe_s + cluster_s:.2f} s")
    sklearn_reference(out, e, info)
    floor(info)
    print(f"load after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
