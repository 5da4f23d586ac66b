"""Does a caption tell the truth about a shapes-world scene? Object naming and attribute accuracy.

A caption's object mentions are its noun phrases ``[size] [material] colour shape`` (the words
of ``ATTRIBUTE_VOCAB``, in the order the world's captions use them, in either caption style).
Repeated mentions of one object ("... and the yellow square is ...") count once. Mentions are
matched to the scene's objects so that the most attributes agree, then:

- ``naming``: share of objects whose "colour shape" the caption states;
- ``colour``, ``shape``: share of objects whose matched mention has the right colour (shape);
  an object with no mention counts as wrong;
- ``material``, ``size``: share right among matched mentions that state one;
- ``precision``: share of mentions that name a real object (colour and shape);
- ``count``: share of captions with as many distinct mentions as the scene has objects.

``house_style`` tells whether a caption uses the photography club's frames and which event it
names.

    >>> object_accuracy(["a red circle above a blue square"], [scene])["naming"]
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import permutations

from captune.demo.captions import OPENERS
from captune.demo.scene import COLOURS, MATERIALS, SHAPES, SIZES, Scene

_MENTION = re.compile(
    rf"\b(?:({'|'.join(SIZES)})\s+)?(?:({'|'.join(MATERIALS)})\s+)?({'|'.join(COLOURS)})\s+({'|'.join(SHAPES)})\b",
    re.IGNORECASE,
)
_HOUSE = re.compile(rf"^(?:(?:{'|'.join(OPENERS)}) (?P<a>[^:]+):|What a day at (?P<b>[^!]+)!)")
CATEGORIES = ("colour", "shape", "material", "size")


@dataclass(frozen=True)
class Mention:
    colour: str
    shape: str
    material: str | None = None
    size: str | None = None


def mentions(caption: str) -> list[Mention]:
    """Distinct object mentions in order of first appearance; repeats add the words they state."""
    found: dict[tuple[str, str], Mention] = {}
    for size, material, colour, shape in _MENTION.findall(caption):
        key = (colour.lower(), shape.lower())
        old = found.get(key)
        found[key] = Mention(*key, (old and old.material) or material.lower() or None,
                             (old and old.size) or size.lower() or None)
    return list(found.values())


def _agreement(m: Mention, obj) -> int:
    # colour and shape outweigh size and material, so a mention with the right colour and shape
    # is never matched away from its object for the sake of a size word
    return 4 * (m.colour == obj.colour) + 4 * (m.shape == obj.shape) + (m.material == obj.material) + (
        m.size == obj.size)


def match(found: list[Mention], scene: Scene) -> list[tuple[int, Mention]]:
    """``(object index, mention)`` pairs: the one-to-one matching with the most agreement."""
    objs = scene.objects
    k = min(len(found), len(objs))
    best, best_score = [], -1
    for chosen in permutations(range(len(found)), k):
        for targets in permutations(range(len(objs)), k):
            score = sum(_agreement(found[m], objs[t]) for m, t in zip(chosen, targets))
            if score > best_score:
                best, best_score = list(zip(targets, (found[m] for m in chosen))), score
    return best


def object_accuracy(captions: list[str], scenes: list[Scene]) -> dict[str, float]:
    """Naming, per-category, precision and count accuracy of ``captions`` over ``scenes``."""
    right = dict.fromkeys(("naming", *CATEGORIES, "precision", "count"), 0)
    total = dict.fromkeys(right, 0)
    for caption, scene in zip(captions, scenes, strict=True):
        found = mentions(caption)
        named = {(o.colour, o.shape) for o in scene.objects}
        right["naming"] += sum((m.colour, m.shape) in named for m in found)
        total["naming"] += len(scene.objects)
        right["precision"] += sum((m.colour, m.shape) in named for m in found)
        total["precision"] += len(found)
        right["count"] += len(found) == len(scene.objects)
        total["count"] += 1
        for i, m in match(found, scene):
            obj = scene.objects[i]
            right["colour"] += m.colour == obj.colour
            right["shape"] += m.shape == obj.shape
            for cat in ("material", "size"):
                said = getattr(m, cat)
                if said is not None:
                    right[cat] += said == getattr(obj, cat)
                    total[cat] += 1
        total["colour"] += len(scene.objects)
        total["shape"] += len(scene.objects)
    return {k: right[k] / total[k] if total[k] else float("nan") for k in right}


def house_style(caption: str) -> str | None:
    """The event a house-style caption names ("Moments from Spring Fair: ..."), else None."""
    m = _HOUSE.match(caption.strip())
    if not m:
        return None
    return (m.group("a") or m.group("b")).strip()
