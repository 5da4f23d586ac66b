"""Batched captioning (as ``captune caption`` does it) against a per-image ``model.generate`` loop.

Writes ``--images`` shapes-world PNGs (64 px, seed 0), then for each model:

- captune: ``captune.generate.caption_to_files`` with the greedy preset (what ``captune caption
  --decoding greedy`` runs): the model loaded once, batches of ``--batch-size``, images decoded and
  preprocessed in worker threads while the model runs (``IMAGE_WORKERS``), and once more with the
  threads off;
- the per-image loop of a typical script: load the model with ``load_captioner``, then for each
  image ``load_image``, ``processor(images=..., text=prompt)``, ``model.generate(...,
  do_sample=False, num_beams=1, max_new_tokens=30)`` and decode;

after an untimed warm-up, ``--repeat`` rounds; checks that every image gets the same caption
and prints median seconds, images per second and the ratio of each round. Models: the shipped captioner (``shapes-blip2-opt``) and the BLIP-2-shaped tiny model of
``captune.models.tiny`` (``build_tiny_blip2("opt")``, random weights, saved to a folder).

    python benchmarks/caption.py [--images 256] [--batch-size 32] [--repeat 3] [--models shapes-blip2-opt,tiny]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from captune import generate as gen
from captune.data.images import load_image
from captune.demo.world import generate as world
from captune.io import read_jsonl
from captune.models.loading import load_captioner


def captune_run(items, model: str, out: Path, batch_size: int, workers: int) -> tuple[dict[str, str], float, str]:
    """Captions by image id, seconds (model loading included) and the prompt used."""
    gen.IMAGE_WORKERS = workers
    t = time.perf_counter()
    summary = gen.caption_to_files(items, {"greedy": out}, {"greedy": gen.decoding_preset("greedy")}, model=model,
                                   batch_size=batch_size, dtype="float32", progress=False, postprocess=False)
    seconds = time.perf_counter() - t
    return {r["image_id"]: r["caption"] for r in read_jsonl(out)}, seconds, summary["prompt"]


def per_image_run(items, model: str, prompt: str) -> tuple[dict[str, str], float]:
    """One ``generate`` per image, as a script that loops over its photos does."""
    t = time.perf_counter()
    net, processor = load_captioner(model, dtype="float32")
    net.eval()
    text_config = net.config.text_config
    out = {}
    with torch.inference_mode():
        for it in items:
            inputs = processor(images=load_image(it.image), text=prompt, return_tensors="pt")
            ids = net.generate(**inputs, do_sample=False, num_beams=1, max_new_tokens=30,
                               eos_token_id=text_config.eos_token_id, pad_token_id=text_config.pad_token_id)
            new = ids[:, inputs["input_ids"].shape[1]:]  # OPT returns the prompt too
            out[it.image_id] = " ".join(processor.batch_decode(new, skip_special_tokens=True)[0].split())
    return out, time.perf_counter() - t


def tiny_model_folder(root: Path) -> str:
    from captune.models.tiny import build_tiny_blip2

    net, processor = build_tiny_blip2("opt")
    folder = root / "tiny-blip2-opt"
    net.save_pretrained(folder)
    processor.save_pretrained(folder)
    return str(folder)


def bench(name: str, model: str, items, root: Path, args) -> None:
    """Untimed warm-up of both paths, then ``--repeat`` rounds of the three runs; medians."""
    runs = {"ours": [], "inline": [], "theirs": []}
    for k in range(args.repeat + 1):
        some = items if k else items[:4]
        for old in root.glob(f"{name}*.jsonl"):
            old.unlink()  # captune would resume from them
        ours, ours_s, prompt = captune_run(some, model, root / f"{name}.jsonl", args.batch_size, workers=2)
        inline, inline_s, _ = captune_run(some, model, root / f"{name}-inline.jsonl", args.batch_size, workers=0)
        theirs, theirs_s = per_image_run(some, model, prompt)
        if k:
            for key, seconds in (("ours", ours_s), ("inline", inline_s), ("theirs", theirs_s)):
                runs[key].append(seconds)
    ours_s, inline_s, theirs_s = (statistics.median(runs[key]) for key in ("ours", "inline", "theirs"))
    ratios = ", ".join(f"{t / o:.1f}x" for t, o in zip(runs["theirs"], runs["ours"]))
    differ = [i for i in theirs if theirs[i] != ours.get(i)]
    if differ or inline != ours:
        raise SystemExit(f"{name}: {len(differ)} captions differ, e.g. {differ[:3]} "
                         f"({[(ours.get(i), theirs[i]) for i in differ[:3]]}); threads change captions: {inline != ours}")
    n = len(items)
    print(f"{name}: {n} images, same greedy captions (e.g. {ours[items[0].image_id]!r}); "
          f"captune {ours_s:.1f} s ({n / ours_s:.0f} img/s), threads off {inline_s:.1f} s ({n / inline_s:.0f} img/s); "
          f"per-image loop {theirs_s:.1f} s ({n / theirs_s:.1f} img/s); ratio {theirs_s / ours_s:.1f}x "
          f"(threads off {theirs_s / inline_s:.1f}x); per round {ratios}; load average {os.getloadavg()[0]:.2f}",
          flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--models", default="shapes-blip2-opt,tiny")
    ap.add_argument("--repeat", type=int, default=3, help="timed rounds (medians reported)")
    args = ap.parse_args()
    print(f"nproc {os.cpu_count()}; torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"batch {args.batch_size}; load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory(prefix="captune-caption-bench-") as tmp:
        root = Path(tmp)
        images = world(root / "world", n_images=args.images, seed=0, image_size=64, style="plain").files["images"]
        items = gen.items_from_input(images)
        for name in args.models.split(","):
            bench(name, tiny_model_folder(root) if name == "tiny" else name, items, root, args)


if __name__ == "__main__":
    main()
