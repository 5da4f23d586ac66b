"""Precision and recall of the error-analysis flags where the truth is known: the shapes world.

    python benchmarks/error_flags.py [--images 200] [--seed 0] [--style house|plain] [--no-clip]

Each image of a fresh shapes world gets its five references (house or plain style) and
candidate captions whose truth the scene tells:

- correct: another caption of the same style for the same scene (``other reference``) and,
  against plain references, the scene's canonical full description;
- planted errors: one object's colour, shape or pattern changed to one the scene does not
  have; an extra object (scenes of one or two objects); one object dropped (scenes of two or
  three); against house references, the canonical description, which leaves out the event.

Truth, from the scene: a caption *hallucinates* when it uses a colour, shape, pattern or size
word that no object of the scene has (``unsupported`` is scored against the same truth); it
*omits* when it leaves out an object's phrase at the detail the reference style always gives
(house: "large striped red circle" and the event; plain: "red circle"). Prints, per flag, how
many captions it fired on, precision and recall; the hallucination flag uses the shipped tiny CLIP.
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

FLAGS = ("omission", "unsupported", "hallucination")


@dataclass
class Case:
    kind: str
    caption: str
    references: list[str]
    image: str
    truth: dict[str, bool] = field(default_factory=dict)


def other_caption(scene, event: str, style: str, references: list[str], rng) -> str | None:
    """A caption of ``style`` for the scene that is not one of its references (None if none is left)."""
    from captune.demo.captions import house_captions, plain_captions

    draw = house_captions(scene, event, rng, 10) if style == "house" else plain_captions(scene, rng, 10)
    return next((c for c in draw if c not in references), None)


def replace_attribute(caption: str, scene, i: int, category: str, rng) -> str | None:
    """``caption`` with object ``i``'s colour, shape or material changed to one the scene lacks."""
    from captune.demo.scene import COLOURS, MATERIALS, SHAPES

    values = {"colour": list(COLOURS), "shape": SHAPES, "material": MATERIALS}[category]
    obj = scene.objects[i]
    used = {getattr(o, category) for o in scene.objects}
    new = str(rng.choice([v for v in values if v not in used]))
    old_phrase = (
        f"{obj.material} {obj.colour} {obj.shape}" if category == "material" else f"{obj.colour} {obj.shape}"
    )
    new_phrase = old_phrase.replace(getattr(obj, category), new)
    changed = re.sub(rf"\b{old_phrase}\b", new_phrase, caption)
    return changed if changed != caption else None


def with_extra_object(scene, rng):
    """The scene with one more object whose colour and shape it does not have (for captions only)."""
    from captune.demo.scene import COLOURS, SHAPES, Obj

    colour = str(rng.choice([c for c in COLOURS if c not in {o.colour for o in scene.objects}]))
    shape = str(rng.choice([s for s in SHAPES if s not in {o.shape for o in scene.objects}]))
    extra = Obj(shape, colour, "solid", "small", 0.5, 0.5)
    n = len(scene.objects)
    return replace(
        scene, objects=(*scene.objects, extra), relations=(*scene.relations, (n - 1, "left of", n))
    )


def without_last_object(scene):
    return replace(scene, objects=scene.objects[:-1], relations=scene.relations[:-1])


def truth(caption: str, scene, event: str, style: str) -> dict[str, bool]:
    """What is really wrong with ``caption`` (see the module docstring)."""
    from captune.demo.world import ATTRIBUTE_VOCAB

    text = caption.lower()
    words = set(re.findall(r"[a-z]+", text))
    present = {v for o in scene.objects for v in (o.colour, o.shape, o.material, o.size)}
    stated = {v for c in ("colour", "shape", "material", "size") for v in ATTRIBUTE_VOCAB[c] if v in words}
    detail = "full" if style == "house" else "basic"
    facts = [o.phrase(detail) for o in scene.objects] + ([event.lower()] if style == "house" else [])
    wrong = bool(stated - present)
    return {
        "hallucination": wrong,
        "unsupported": wrong,
        "omission": any(not re.search(rf"\b{f}\b", text) for f in facts),
    }


def image_cases(record, root: Path, style: str, rng) -> list[Case]:
    """Correct and planted-error captions for one image, each with its truth."""
    from captune.demo.captions import house_captions, plain_captions
    from captune.demo.scene import Scene

    scene, event, refs = Scene.from_json(record.meta["scene"]), record.meta["event"], list(record.captions)

    def style_caption(s):
        return house_captions(s, event, rng, 1)[0] if style == "house" else plain_captions(s, rng, 1)[0]

    good = other_caption(scene, event, style, refs, rng)
    drafts = {"other reference": good, "full description": scene.describe()}
    i = int(rng.integers(len(scene.objects)))
    for category in ("colour", "shape", "material"):
        drafts[f"wrong {category}"] = good and replace_attribute(good, scene, i, category, rng)
    if len(scene.objects) < 3:
        drafts["extra object"] = style_caption(with_extra_object(scene, rng))
    if len(scene.objects) > 1:
        drafts["dropped object"] = style_caption(without_last_object(scene))
    image = str(root / record.image)
    return [Case(kind, c, refs, image, truth(c, scene, event, style)) for kind, c in drafts.items() if c]


def world_cases(root: Path, n_images: int, seed: int, style: str) -> list[Case]:
    """Every image's cases for a freshly generated world in ``root``."""
    from captune.demo.world import generate

    world = generate(root, n_images=n_images, seed=seed, style=style)
    records = world.house if style == "house" else world.plain
    rng = np.random.default_rng([seed, 7])
    return [case for r in records for case in image_cases(r, root, style, rng)]


def precision_recall(cases: list[Case], per_image: list[dict[str, list[str]]], flag: str) -> dict[str, float]:
    fired = [flag in f for f in per_image]
    true = [c.truth[flag] for c in cases]
    hits = sum(f and t for f, t in zip(fired, true))
    return {
        "fired": sum(fired),
        "true": sum(true),
        "precision": hits / sum(fired) if any(fired) else float("nan"),
        "recall": hits / sum(true) if any(true) else float("nan"),
    }


def flag_cases(cases: list[Case], clip_model: str | None) -> list[dict[str, list[str]]]:
    """The error analysis of every case's caption against its references."""
    from captune.evaluate.error_analysis import analyze_errors

    return analyze_errors(
        [c.caption for c in cases],
        [c.references for c in cases],
        [c.image for c in cases],
        clip_model=clip_model,
    ).per_image


def measure(cases: list[Case], per_image: list[dict[str, list[str]]]) -> dict[str, dict[str, float]]:
    """Per flag: captions it fired on, captions truly wrong that way, precision and recall."""
    checked = [f for f in FLAGS if f != "hallucination" or any(f in flags for flags in per_image)]
    return {f: precision_recall(cases, per_image, f) for f in checked}


def fire_rates(cases: list[Case], per_image: list[dict[str, list[str]]]) -> dict[str, dict[str, float]]:
    """Per kind of case: the share of its captions each flag fired on."""
    rates = {}
    for kind in dict.fromkeys(c.kind for c in cases):
        mine = [f for c, f in zip(cases, per_image) if c.kind == kind]
        rates[kind] = {f: round(sum(f in x for x in mine) / len(mine), 3) for f in FLAGS}
    return rates


def main() -> None:
    import tempfile

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--style", choices=("house", "plain"), default="house")
    ap.add_argument("--no-clip", action="store_true", help="leave out the hallucination flag")
    args = ap.parse_args()
    from captune.demo.shipped import shipped_path

    with tempfile.TemporaryDirectory() as tmp:
        cases = world_cases(Path(tmp), args.images, args.seed, args.style)
        per_image = flag_cases(cases, None if args.no_clip else str(shipped_path("clip")))
    for kind, rates in fire_rates(cases, per_image).items():
        print(json.dumps({"kind": kind, "captions": sum(c.kind == kind for c in cases)} | rates))
    for flag, row in measure(cases, per_image).items():
        print(json.dumps({"flag": flag} | {k: round(v, 3) for k, v in row.items()}))
    false = [
        (c.kind, f)
        for c, flags in zip(cases, per_image)
        for f in flags.get("unsupported", [])
        if not c.truth["unsupported"]
    ]
    print("false unsupported words:", Counter(w for _, w in false).most_common(12))
    false = [
        w for c, flags in zip(cases, per_image) for w in flags.get("omission", []) if not c.truth["omission"]
    ]
    print("false omission words:", Counter(false).most_common(12))


if __name__ == "__main__":
    main()
