"""COCO caption metrics: captune's Python path against pycocoevalcap, same data, same process.

Builds a synthetic but realistic evaluation set (default 5,000 images x 5 references + 1
prediction, fixed seed), then, in each of ``--rounds`` rounds, times

- pycocoevalcap: PTBTokenizer (the Java jar) on references and predictions, Bleu(4), Rouge(), Cider();
- captune: ``captune.metrics.score(..., metrics=["bleu", "rouge_l", "cider"])`` with the Python
  tokenizer (tokenization + BLEU-1..4 + ROUGE-L + CIDEr-D, per-image values included): the first
  call (a fresh ``MetricResources``, median of ``--repeat`` calls) and a repeated call as in a
  training loop that keeps one ``MetricResources``: the same references, new predictions (other
  captions of the same images), the tokenizer's caches warm, every count redone;

checks that every corpus and per-image value is identical (to 1e-9) and prints times and the
ratio of each round (both libraries run in the same round, so a busy machine slows both), then
the medians over the rounds, and where captune's time goes (``--steps``).

    python benchmarks/metrics_vs_pycocoevalcap.py [--images 5000] [--refs 5] [--seed 0] [--rounds 3] [--steps]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import subprocess
import time

import numpy as np

ADJ = ("red blue green yellow white black brown gray orange pink purple large small big little tall short old young "
       "wooden metal plastic empty crowded busy quiet sunny snowy wet dry dirty clean colorful striped spotted "
       "fluffy shiny broken open closed long fresh ripe cute happy smiling").split()
SUBJ = ("man woman boy girl child baby person guy lady player skier surfer skateboarder cyclist biker chef "
        "dog puppy cat kitten horse cow sheep elephant giraffe zebra bear bird pigeon duck train bus truck car "
        "motorcycle bicycle airplane boat plate pizza sandwich cake donut banana broccoli laptop couch bed "
        "table kitchen bathroom toilet clock sign fire hydrant umbrella kite frisbee teddy bear vase").split()
VERB = ("riding holding sitting on standing next to looking at eating walking down playing with parked on "
        "flying over lying on carrying throwing catching jumping over running across waiting at crossing "
        "driving down leaning against resting on near covered with filled with topped with hanging from "
        "grazing in swimming in climbing posing with").split(" ")
OBJ = ("surfboard bench street pizza frisbee beach kite table field building water skateboard laptop umbrella "
       "wave fence grass sandwich road sidewalk snow hill tree river station track counter window sink "
       "mirror desk shelf plate bowl cup tennis racket baseball bat ball motorcycle horse truck bus sign "
       "pole wall floor rug couch pillow blanket").split()
PLACE = ("in the park|on a sunny day|at night|near the ocean|in a kitchen|on the field|in front of a store|"
         "under a tree|during a game|at the station|on top of a hill|next to a road|in a city|in the snow|"
         "on the beach|in a living room|at the zoo|on a farm|in the rain|by the river").split("|")
COUNT = "a a a a the one two three several some a couple of a group of many 2 3".split(" ")


def scene(rng: random.Random) -> dict:
    return {"subj": rng.choice(SUBJ), "adj": rng.choice(ADJ), "verb": rng.choice(VERB), "obj": rng.choice(OBJ),
            "obj_adj": rng.choice(ADJ), "place": rng.choice(PLACE)}


def caption(rng: random.Random, s: dict, noise: float) -> str:
    pick = (lambda key, pool: rng.choice(pool) if rng.random() < noise else s[key])
    words = [rng.choice(COUNT)]
    if rng.random() < 0.7:
        words.append(pick("adj", ADJ))
    words += [pick("subj", SUBJ), pick("verb", VERB), rng.choice(["a", "the", "a", "some"])]
    if rng.random() < 0.5:
        words.append(pick("obj_adj", ADJ))
    words.append(pick("obj", OBJ))
    if rng.random() < 0.6:
        words.append(pick("place", PLACE))
    if rng.random() < 0.15:
        words += [",", "with", rng.choice(["a", "the"]), rng.choice(OBJ)]
    text = " ".join(words).replace(" ,", ",")
    if rng.random() < 0.8:
        text = text[:1].upper() + text[1:]
    return text + rng.choice([".", ".", ".", "", " .", "!"])


def dataset(images: int, refs: int, seed: int, more: int = 0):
    """Predictions and references, plus ``more`` other prediction sets for the same images."""
    rng = random.Random(seed)
    scenes = [scene(rng) for _ in range(images)]
    references = [[caption(rng, s, 0.15) for _ in range(refs)] for s in scenes]
    predictions = [caption(rng, s, 0.35) for s in scenes]
    if not more:
        return predictions, references
    return predictions, references, [[caption(rng, s, 0.35) for s in scenes] for _ in range(more)]


def run_pycocoevalcap(preds, refs) -> tuple[dict, dict, dict]:
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    times = {}
    t0 = time.perf_counter()
    tok = PTBTokenizer()
    gts = tok.tokenize({i: [{"caption": c} for c in r] for i, r in enumerate(refs)})
    res = tok.tokenize({i: [{"caption": p}] for i, p in enumerate(preds)})
    times["tokenize (java)"] = time.perf_counter() - t0
    values, per_image = {}, {}
    for name, scorer in (("bleu", Bleu(4)), ("rouge", Rouge()), ("cider", Cider())):
        t = time.perf_counter()
        kwargs = {"verbose": 0} if name == "bleu" else {}
        score, scores = scorer.compute_score(gts, res, **kwargs)
        times[name] = time.perf_counter() - t
        if name == "bleu":
            for k in range(4):
                values[f"bleu_{k + 1}"], per_image[f"bleu_{k + 1}"] = score[k], np.array(scores[k])
        else:
            key = "rouge_l" if name == "rouge" else "cider"
            values[key], per_image[key] = float(score), np.array(scores)
    times["total"] = time.perf_counter() - t0
    return values, per_image, times


def run_captune(preds, refs, resources=None):
    """``score`` with ``resources`` (None: a fresh one, closed before returning)."""
    from captune.metrics import score

    t = time.perf_counter()
    corpus, per_item = score(preds, refs, metrics=["bleu", "rouge_l", "cider"], resources=resources)
    return corpus, per_item, time.perf_counter() - t


def captune_steps(preds, refs, repeat: int) -> dict[str, float]:
    """Median seconds of each step of a first call (fresh resources): what ``score`` runs."""
    import captune.metrics as m
    from captune.metrics import _ngrams, bleu, cider, rouge

    times: dict[str, list[float]] = {}
    for _ in range(repeat):
        res = m.MetricResources()
        t = [time.perf_counter()]
        p, r = m._tokenized(preds, refs, "python", res)
        t.append(time.perf_counter())
        _ngrams.corpus(p, r, res)
        t.append(time.perf_counter())
        for fn in (bleu.bleu, rouge.rouge, cider.cider):
            fn(p, r, resources=res)
            t.append(time.perf_counter())
        for k, name in enumerate(["tokenize", "n-gram counts", "BLEU", "ROUGE-L", "CIDEr-D"]):
            times.setdefault(name, []).append(t[k + 1] - t[k])
    return {k: statistics.median(v) for k, v in times.items()}


def captune_round(preds, refs, others, repeat: int):
    """First calls (fresh resources) and repeated calls (same references, new predictions, the
    resources of the last first call kept, as a training loop keeps them): medians."""
    from captune.metrics import MetricResources

    cold = []
    for _ in range(repeat):
        kept = MetricResources()
        corpus, per_item, seconds = run_captune(preds, refs, kept)
        cold.append(seconds)
    warm, results = [], []
    for other in others:  # the tokenizer has seen the references (and most words) before
        *result, seconds = run_captune(other, refs, kept)
        warm.append(seconds)
        results.append(result)
    kept.close()
    for other, result in zip(others, results):
        assert list(run_captune(other, refs)[:2]) == result, "a repeated call differs from a first call"
    return corpus, per_item, statistics.median(cold), statistics.median(warm)


def machine() -> str:
    cpu = subprocess.run("lscpu | grep 'Model name'", shell=True, capture_output=True, text=True, check=False).stdout.strip()
    nproc = subprocess.run(["nproc"], capture_output=True, text=True, check=False).stdout.strip()
    import torch

    return (f"nproc {nproc}; {' '.join(cpu.split())}; Python {platform.python_version()}, "
            f"numpy {np.__version__}, torch {torch.__version__}")


def check(corpus, per_item, values, per_image) -> tuple[float, float]:
    worst = max(abs(corpus[k] - v) for k, v in values.items())
    worst_item = max(float(np.max(np.abs(np.array([d[k] for d in per_item]) - v))) for k, v in per_image.items())
    assert worst <= 1e-9 and worst_item <= 1e-9, (worst, worst_item)
    return worst, worst_item


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=5000)
    ap.add_argument("--refs", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=3, help="rounds of both libraries; medians reported")
    ap.add_argument("--repeat", type=int, default=5, help="captune calls of each kind per round (median)")
    ap.add_argument("--steps", action="store_true", help="also time each step of captune's first call")
    args = ap.parse_args()
    preds, refs, others = dataset(args.images, args.refs, args.seed, more=args.repeat)
    print(f"{args.images} images x {args.refs} references + 1 prediction; {machine()}")

    import captune.metrics  # noqa: F401  (import time is not part of a scoring call)

    rounds = []
    for r in range(args.rounds):
        corpus, per_item, cold_s, warm_s = captune_round(preds, refs, others, args.repeat)
        values, per_image, times = run_pycocoevalcap(preds, refs)
        worst = check(corpus, per_item, values, per_image)
        rounds.append((times["total"], cold_s, warm_s))
        print(f"round {r + 1}: pycocoevalcap {times['total']:.2f} s ("
              + " / ".join(f"{k} {v:.2f}" for k, v in times.items() if k != "total")
              + f"); captune first call {cold_s:.3f} s, repeated call {warm_s:.3f} s; "
              f"{times['total'] / cold_s:.1f}x first call, {times['total'] / warm_s:.1f}x repeated")
    print("values: " + ", ".join(f"{k} {v:.6f}" for k, v in values.items()))
    print(f"identical: largest difference {worst[0]:.1e} (corpus), {worst[1]:.1e} (per image)")
    py, cold, warm = (statistics.median(x) for x in zip(*rounds))
    first = statistics.median(t / c for t, c, _ in rounds)
    again = statistics.median(t / w for t, _, w in rounds)
    print(f"medians over {args.rounds} rounds: pycocoevalcap {py:.2f} s, captune first call {cold:.3f} s, "
          f"repeated call {warm:.3f} s; speed-up {first:.1f}x first call, {again:.1f}x repeated call")
    if args.steps:
        steps = captune_steps(preds, refs, args.repeat)
        print("captune first call by step: " + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in steps.items()))
    print("load average (1, 5, 15 min): " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
