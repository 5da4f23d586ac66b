"""LoRA fine-tuning the shipped shapes captioner to the photography club's house style.

    python benchmarks/shipped_house_lora.py [--steps 120] [--train 300] [--eval 100] [--prompt "{event}"]

On a fresh shapes world (a seed the shipped models never saw) it captions held-out images with
the shipped base model (plain style), fine-tunes LoRA adapters on the house captions with
``captune.train.loop.finetune`` (``finetune.lm=lora``, ``finetune.qformer=lora``), captions
the same images again, and prints for both: the share of captions in house style, the share
naming the right event, object naming and colour/shape accuracy (``captune.demo.accuracy``),
and BLEU-4 / CIDEr-D against the house references (pycocoevalcap scorers on lower-cased,
punctuation-split text). Timings are wall-clock seconds on this machine, next to the CPU
seconds of the process.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import tempfile
import time
from pathlib import Path

import torch

from captune.config import load_config
from captune.demo.accuracy import house_style, object_accuracy
from captune.demo.captioner import caption
from captune.demo.world import generate
from captune.train.config import TrainConfig
from captune.train.loop import finetune


def _tokens(text: str) -> str:
    return " ".join(re.findall(r"[a-z]+|[^\sa-z]", text.lower()))


def reference_scores(captions: list[str], references: list[list[str]]) -> dict[str, float]:
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider

    res = {i: [_tokens(c)] for i, c in enumerate(captions)}
    gts = {i: [_tokens(r) for r in refs] for i, refs in enumerate(references)}
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    cider, _ = Cider().compute_score(gts, res)
    return {"bleu_4": round(bleu[3], 4), "cider": round(float(cider), 4)}


def figures(captions: list[str], records, scenes) -> dict[str, float]:
    events = [house_style(c) for c in captions]
    acc = object_accuracy(captions, scenes)
    return {
        "house_style": round(sum(e is not None for e in events) / len(captions), 4),
        "right_event": round(sum(e == r.meta["event"] for e, r in zip(events, records)) / len(captions), 4),
        **{k: round(acc[k], 4) for k in ("naming", "colour", "shape", "precision")},
        **reference_scores(captions, [r.captions for r in records]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--train", type=int, default=300, help="house-style training images")
    parser.add_argument("--eval", type=int, default=100, help="held-out images captioned before and after")
    parser.add_argument("--prompt", default="", help='prompt template, e.g. "{event}" (default: none)')
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--model", default="shapes-blip2-opt", help="base model name or folder")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from captune.models.loading import load_captioner, load_checkpoint

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["CAPTUNE_HOME"] = str(Path(tmp) / "home")  # the feature cache is built inside the timing
        world = generate(Path(tmp) / "world", n_images=args.train + args.eval, seed=args.seed, style="house",
                         n_events=8)
        train, held = world.house[: args.train], world.house[args.train:]
        from captune.data.records import write_records

        write_records(Path(tmp) / "train.jsonl", train)
        write_records(Path(tmp) / "held.jsonl", held)
        (Path(tmp) / "images").symlink_to(world.out_dir / "images")
        images = [str(world.out_dir / r.image) for r in held]
        scenes = [world.scenes[r.image_id] for r in held]
        beam = {"strategy": "beam", "num_beams": 5, "max_new_tokens": 48}
        metas = [r.meta for r in held]
        model, processor = load_captioner(args.model)
        t0 = time.perf_counter()
        before = caption(model, processor, images, beam)
        caption_seconds = time.perf_counter() - t0
        cfg = load_config(TrainConfig, None, [
            f"model.name={args.model}", f"data.train={Path(tmp) / 'train.jsonl'}", f"data.prompt={args.prompt}",
            f"output_dir={Path(tmp) / 'run'}", "data.captions=random", "finetune.lm=lora", "finetune.qformer=lora",
            "finetune.targets=all_linear", "finetune.r=16", "finetune.alpha=32", f"train.max_steps={args.steps}",
            "train.batch_size=16", f"train.lr={args.lr}", "train.warmup_ratio=0.1", "train.log_every_steps=20",
            f"train.seed={args.seed}"])
        t0, c0 = time.perf_counter(), time.process_time()
        summary = finetune(cfg, progress=False)
        train_seconds, train_cpu = time.perf_counter() - t0, time.process_time() - c0
        tuned, tuned_processor, _ = load_checkpoint(summary["best"], merge=True)
        after = caption(tuned, tuned_processor, images, beam, prompt=args.prompt, metas=metas)
        result = {
            "steps": args.steps, "train_images": args.train, "eval_images": args.eval, "prompt": args.prompt,
            "threads": torch.get_num_threads(), "finetune_seconds": round(train_seconds, 1),
            "finetune_cpu_seconds": round(train_cpu, 1), "trainable": summary["trainable"],
            "caption_seconds_beam5": round(caption_seconds, 1),
            "before": figures(before, held, scenes), "after": figures(after, held, scenes),
            "examples": [{"before": b, "after": a, "truth": r.captions[0]}
                         for b, a, r in list(zip(before, after, held))[:4]],
        }
    print(json.dumps(result, indent=2) if args.json else _table(result))


def _table(r: dict) -> str:
    keys = list(r["before"])
    lines = [f"LoRA {r['steps']} steps on {r['train_images']} house-style images, prompt {r['prompt']!r}: "
             f"{r['finetune_seconds']} s wall ({r['finetune_cpu_seconds']} CPU s, {r['threads']} threads); "
             f"beam-5 captions of {r['eval_images']} images: {r['caption_seconds_beam5']} s",
             "| | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for name in ("before", "after"):
        lines.append(f"| {name} | " + " | ".join(f"{r[name][k]:.3f}" for k in keys) + " |")
    lines += [f"  before: {e['before']}\n  after:  {e['after']}\n  truth:  {e['truth']}" for e in r["examples"]]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
