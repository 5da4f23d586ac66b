"""Accuracy of ``captune data enhance`` where the truth is known: single-object shapes-world images.

    python benchmarks/enhance.py [--images 1000] [--seed 0] [--clip-model shapes-clip] [--prompt ...]

Draws ``--images`` scenes of one object each (any background, style and size), renders them at
64 px, captions each with its shape alone ("a circle") and runs ``enhance_file`` with the colour
and material (pattern) vocabulary of the shapes world. Prints, per category, the share of images
whose best value is the object's own (accuracy), and for several ``--min-margin`` values the
share kept and the accuracy among the kept.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

VOCAB_CATEGORIES = ("colour", "material")
MARGINS = (0.0, 0.1, 0.2, 0.3, 0.5)


def single_object_world(out: Path, n_images: int, seed: int) -> tuple[Path, dict[str, dict[str, str]]]:
    """Records of ``n_images`` one-object scenes (captions: the shape alone) and each image's truth."""
    from captune.data.records import CaptionRecord, write_records
    from captune.demo.render import render
    from captune.demo.scene import BACKGROUNDS, Theme, sample_scene

    theme = Theme("single object", tuple(BACKGROUNDS), n_objects=(1.0, 0.0, 0.0))
    (out / "images").mkdir(parents=True, exist_ok=True)
    records, truth = [], {}
    for i in range(n_images):
        obj = sample_scene(np.random.default_rng([seed, i]), theme).objects[0]
        image_id = f"single_{i:05d}"
        render(sample_scene(np.random.default_rng([seed, i]), theme), 64).save(out / "images" / f"{image_id}.png")
        records.append(CaptionRecord(image_id, f"images/{image_id}.png", [f"a {obj.shape}"]))
        truth[image_id] = {"colour": obj.colour, "material": obj.material}
    write_records(out / "records.jsonl", records)
    return out / "records.jsonl", truth


def vocabulary() -> dict[str, list[str]]:
    from captune.demo.scene import ATTRIBUTE_VOCAB

    return {c: list(ATTRIBUTE_VOCAB[c]) for c in VOCAB_CATEGORIES}


def measure(records_path: Path, truth: dict[str, dict[str, str]], clip_model: str = "shapes-clip",
            prompt: str | None = None) -> dict:
    """Accuracy per category, and kept share and accuracy among the kept per margin."""
    from captune.data.enhance import DEFAULT_PROMPT, enhance_file
    from captune.io import read_jsonl

    out = records_path.parent / "enhanced.jsonl"
    t0 = time.perf_counter()
    summary = enhance_file(records_path, vocabulary(), clip_model, out, prompt=prompt or DEFAULT_PROMPT)
    seconds = time.perf_counter() - t0
    rows = read_jsonl(out)
    figures = {"images": len(rows), "seconds": round(seconds, 2), "prompt": summary["prompt"], "categories": {}}
    for category in VOCAB_CATEGORIES:  # at min_margin 0 every category keeps its best value
        right = [r["meta"]["enhanced_attributes"][category] == truth[r["image_id"]][category] for r in rows]
        figures["categories"][category] = {"accuracy": round(float(np.mean(right)), 4),
                                           "chance": round(1 / len(vocabulary()[category]), 4)}
    figures["by_margin"] = _by_margin(rows, truth)
    return figures


def _by_margin(rows: list[dict], truth: dict) -> dict:
    """Share kept and accuracy among the kept, per category and margin (from the stored margins)."""
    table = {}
    for category in VOCAB_CATEGORIES:
        cells = []
        for m in MARGINS:
            kept = [r for r in rows if r["meta"]["enhanced_margins"][category] >= m]
            right = [r["meta"]["enhanced_attributes"][category] == truth[r["image_id"]][category] for r in kept]
            cells.append({"min_margin": m, "kept": round(len(kept) / len(rows), 4),
                          "accuracy": round(float(np.mean(right)), 4) if right else None})
        table[category] = cells
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--clip-model", default="shapes-clip")
    parser.add_argument("--prompt", default=None)
    parser.add_argument("--out", type=Path, default=Path("runs/bench-enhance"))
    args = parser.parse_args()
    records, truth = single_object_world(args.out, args.images, args.seed)
    print(json.dumps(measure(records, truth, args.clip_model, args.prompt), indent=2))


if __name__ == "__main__":
    main()
