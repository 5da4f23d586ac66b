"""Speed of the paired bootstrap + permutation test in `captune compare` against the slow way.

    python benchmarks/bootstrap.py [--images 5000] [--resamples 1000] [--baseline-resamples 5]

Data: shapes-world scenes with 5 plain reference captions each; system A captions each image
with a sixth plain caption of the same scene, system B with a caption of the next scene (so the
two differ a lot, as a base model and a fine-tuned one do). Measured: building the sufficient
statistics (BLEU, CIDEr-D, one per-image mean), then 1,000 bootstrap resamples and 1,000
permutation rounds for all of them. Baselines, in the same run, without the permutation rounds
(which flatters them): (1) pycocoevalcap's BleuScorer and CiderScorer on both systems'
resampled lists, timed on a few resamples and scaled to the same count; (2) the metrics' own
per-resample statistics, ``bleu_from_stats`` + ``cider_from_stats`` on every resample (one
resample at a time), timed on 100 resamples and scaled.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import time

import numpy as np


def captions(n_images: int, seed: int = 0) -> tuple[list[str], list[str], list[list[str]]]:
    from captune.demo.captions import plain_captions
    from captune.demo.scene import sample_scene

    rng = np.random.default_rng(seed)
    refs, a, b = [], [], []
    scenes = [sample_scene(rng) for _ in range(n_images + 1)]
    for i in range(n_images):
        caps = plain_captions(scenes[i], rng, n=6)
        refs.append([_tok(c) for c in caps[:5]])
        a.append(_tok(caps[5]))
        b.append(_tok(plain_captions(scenes[i + 1], rng, n=1)[0]))
    return a, b, refs


def _tok(text: str) -> str:
    return " ".join(text.lower().replace(".", " ").replace(",", " ").split())


def slow(a, b, refs, counts) -> None:
    from pycocoevalcap.bleu.bleu_scorer import BleuScorer
    from pycocoevalcap.cider.cider_scorer import CiderScorer

    for row in counts:
        idx = np.repeat(np.arange(len(refs)), row.astype(int))
        for preds in (a, b):
            bleu, cider = BleuScorer(n=4), CiderScorer(n=4, sigma=6.0)
            for i in idx:
                bleu += (preds[i], refs[i])
                cider += (preds[i], refs[i])
            bleu.compute_score(option="closest")
            cider.compute_score()


def per_resample_stats(a, b, refs, counts) -> float:
    from captune.metrics import MetricResources
    from captune.metrics.bleu import bleu_from_stats, bleu_stats
    from captune.metrics.cider import cider_from_stats, cider_stats

    t0 = time.process_time()
    res = MetricResources()  # BLEU and CIDEr-D share each system's n-gram counts
    stats = [(bleu_stats(p, refs, res), cider_stats(p, refs, res)) for p in (a, b)]
    for row in counts:
        idx = np.repeat(np.arange(len(refs)), row.astype(int))
        for bleu, cider in stats:
            bleu_from_stats(bleu, idx)
            cider_from_stats(cider, idx)
    return time.process_time() - t0


def main() -> None:
    from captune.evaluate.resample import BleuStat, CiderStat, MeanStat, bootstrap_counts, paired_test
    from captune.metrics import MetricResources

    p = argparse.ArgumentParser()
    p.add_argument("--images", type=int, default=5000)
    p.add_argument("--resamples", type=int, default=1000)
    p.add_argument("--baseline-resamples", type=int, default=5)
    args = p.parse_args()
    a, b, refs = captions(args.images)
    values = np.random.default_rng(1).random((2, args.images))
    t0, c0 = time.perf_counter(), time.process_time()
    res = MetricResources()  # as `captune compare`: BLEU and CIDEr-D share each system's n-gram counts
    stats = [BleuStat(a, b, refs, resources=res), CiderStat(a, b, refs, resources=res),
             MeanStat("rouge_l", values[0], values[1])]
    t1, c1 = time.perf_counter(), time.process_time()
    results = paired_test(stats, args.images, args.resamples, seed=0)
    t2, c2 = time.perf_counter(), time.process_time()
    counts = bootstrap_counts(np.random.default_rng(0), args.baseline_resamples, args.images)
    t3 = time.process_time()
    slow(a, b, refs, counts)
    per_resample = (time.process_time() - t3) / args.baseline_resamples
    baseline = per_resample * args.resamples
    second = per_resample_stats(a, b, refs, bootstrap_counts(np.random.default_rng(1), 100, args.images))
    second *= args.resamples / 100
    cpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    model = next((line.split(":", 1)[1].strip() for line in cpu.splitlines() if "Model name" in line), "?")
    print(
        f"machine: nproc {os.cpu_count()}, {model}, {platform.python_version()}, "
        f"load {os.getloadavg()[0]:.1f}"
    )
    print(f"{args.images} images, {args.resamples} resamples + {args.resamples} permutation rounds")
    print(f"build statistics: {t1 - t0:.2f} s wall ({c1 - c0:.2f} CPU s)")
    print(f"paired test:      {t2 - t1:.2f} s wall ({c2 - c1:.2f} CPU s)")
    ours = c2 - c0
    print(
        f"baseline (pycocoevalcap BLEU + CIDEr per resample, both systems): {per_resample:.2f} CPU s each, "
        f"{baseline:.0f} CPU s for {args.resamples} -> {baseline / ours:.0f}x the CPU time of build + test"
    )
    print(
        f"baseline (bleu_from_stats + cider_from_stats per resample, both systems): {second:.1f} CPU s for "
        f"{args.resamples} -> {second / ours:.1f}x the CPU time of build + test"
    )
    for name in ("bleu_4", "cider"):
        r = results[name]
        print(
            f"  {name}: A {r.a:.4f} B {r.b:.4f} delta {r.delta:+.4f} CI [{r.ci_low:+.4f}, {r.ci_high:+.4f}] "
            f"p {r.p_value:.4f}"
        )


if __name__ == "__main__":
    main()
