"""Reference captions for shapes-world scenes, in two styles.

*Plain* captions are COCO-like descriptions ("a small striped red circle above a large blue
square"): every one names each object's colour and shape, and states size, material and
relations only with the words of ``ATTRIBUTE_VOCAB``; a relation is always told from its
subject (``objects[i]`` of ``(i, relation, j)``), so the words match ``Scene.attributes()``.
*House* captions are a photography club's Instagram style: an opener and the event, then
the same facts in a livelier frame, every object in full ("Moments from Spring Fair: a small
dotted red circle steals the show above a large solid blue square."). Both are always true
of the scene. ``add_noise`` decorates a caption with what raw social-media captions carry
(@handles, hashtags, "Swipe →", links, emoji) for cleaning demos.

    >>> plain_captions(scene, rng, n=5); house_captions(scene, "Spring Fair", rng, n=5)
"""

from __future__ import annotations

import numpy as np

from captune.demo.scene import Scene, pick, relation_phrase, with_article

OPENERS = ["Highlights from", "Moments from", "Scenes from", "Snapshots of"]
DETAILS = ["basic", "size", "material", "full"]
_PLAIN_PREFIXES = ["", "", "an image of ", "a picture of "]
# House frames by object count. {o} is the opener, {e} the event, {a} {b} {c} noun phrases,
# {ab} the relation of a to b, {bc} of b to c. A few frames open without an opener, as a
# club's captions sometimes do.
_HOUSE = {
    1: ["{o} {e}: {a} in the spotlight.",
        "{o} {e}: {a} steals the show.",
        "{o} {e}: all eyes on {a}.",
        "{o} {e}: {a} strikes a pose.",
        "What a day at {e}! {A} in the spotlight."],
    2: ["{o} {e}: {a} steals the show {ab} {b}.",
        "{o} {e}: {a} shines {ab} {b}.",
        "{o} {e}: {a} and {b} share the frame, {a_} {ab} {b_}.",
        "{o} {e}: {a} strikes a pose {ab} {b}.",
        "What a day at {e}! {A} shines {ab} {b}."],
    3: ["{o} {e}: {a}, {b} and {c} share the frame.",
        "{o} {e}: {a} steals the show {ab} {b}, with {b_} {bc} {c}.",
        "{o} {e}: {a} shines {ab} {b}, and {c} joins the crew.",
        "{o} {e}: the whole crew, {a}, {b} and {c}.",
        "What a day at {e}! {A} shines {ab} {b}, with {b_} {bc} {c}."],
}
HANDLES = ["@shapes.club", "@montage_lens", "@fair_team", "@pixel.pals"]
HASHTAGS = {
    "portrait": "#Portrait", "group photo": "#GroupShot", "stage": "#Stage", "night": "#Night",
    "outdoors": "#Outdoors", "indoors": "#Indoors", "colourful": "#Colours",
}
BASE_HASHTAGS = ["#ShapesWorld", "#PhotographyClub"]
EMOJI = ["✨", "📸", "🎉", "🔥", "💫"]


def plain_captions(scene: Scene, rng: np.random.Generator, n: int = 5) -> list[str]:
    """``n`` distinct plain captions (fewer only if the scene allows fewer)."""
    return _distinct(lambda: _plain(scene, rng), n)


def house_captions(scene: Scene, event: str, rng: np.random.Generator, n: int = 5) -> list[str]:
    """``n`` distinct house-style captions for ``scene`` shot at ``event``."""
    return _distinct(lambda: _house(scene, event, rng), n)


def _distinct(draw, n: int) -> list[str]:
    out: list[str] = []
    for _ in range(50 * n):
        caption = draw()
        if caption not in out:
            out.append(caption)
            if len(out) == n:
                break
    return out


def _noun_phrases(scene: Scene, rng: np.random.Generator) -> list[str]:
    """One indefinite noun phrase per object, at one detail level for the whole caption."""
    detail = pick(rng, DETAILS)
    return [with_article(o.phrase(detail)) for o in scene.objects]


def _definite(scene: Scene, i: int) -> str:
    return "the " + scene.objects[i].phrase("basic")


def _plain(scene: Scene, rng: np.random.Generator) -> str:
    nps = _noun_phrases(scene, rng)
    prefix = pick(rng, _PLAIN_PREFIXES)
    form = int(rng.integers(3)) if len(nps) > 1 else 2
    if form == 2:  # objects only, no relation
        return prefix + (", ".join(nps[:-1]) + " and " + nps[-1] if len(nps) > 1 else nps[0])
    r01 = relation_phrase(scene.relations[0][1])
    if len(nps) == 2:
        text = f"{nps[0]} {r01} {nps[1]}" if form == 0 else f"{nps[1]} with {nps[0]} {r01} it"
        return prefix + text
    r12 = relation_phrase(scene.relations[1][1])
    if form == 0:  # "which" must follow the middle object
        return prefix + f"{nps[0]} {r01} {nps[1]}, which is {r12} {nps[2]}"
    return prefix + f"{nps[0]} {r01} {nps[1]}, and {_definite(scene, 1)} is {r12} {nps[2]}"


def _house(scene: Scene, event: str, rng: np.random.Generator) -> str:
    nps = [with_article(o.phrase("full")) for o in scene.objects]
    frame = pick(rng, _HOUSE[len(nps)])
    slots = {"o": pick(rng, OPENERS), "e": event, "a": nps[0], "A": nps[0][0].upper() + nps[0][1:]}
    if len(nps) > 1:
        slots.update(b=nps[1], ab=relation_phrase(scene.relations[0][1]),
                     a_=_definite(scene, 0), b_=_definite(scene, 1))
    if len(nps) > 2:
        slots.update(c=nps[2], bc=relation_phrase(scene.relations[1][1]))
    return frame.format(**slots)


def add_noise(caption: str, labels: list[str], rng: np.random.Generator) -> str:
    """Decorate a caption the way raw posts are: handles, hashtags, swipe hints, links, emoji."""
    parts = [caption]
    if rng.random() < 0.5:
        parts.insert(int(rng.integers(2)), pick(rng, HANDLES))
    if rng.random() < 0.4:
        parts.append(pick(rng, EMOJI))
    if rng.random() < 0.3:
        parts.append("Swipe →")
    if rng.random() < 0.2:
        parts.append(f"https://shapes.example/p/{int(rng.integers(10_000)):04d}")
    if rng.random() < 0.7:
        parts.append(" ".join(BASE_HASHTAGS + [HASHTAGS[label] for label in labels]))
    return " ".join(parts)
