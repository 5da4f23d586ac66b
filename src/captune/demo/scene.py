"""Scenes of the shapes world: the vocabulary, the typed records and the seeded sampler.

A scene holds one to three objects (shape, colour, material, size, centre) on a background,
plus the spatial relations between consecutive objects. Positions are fractions of the image
side, so one scene renders at any size. Objects never overlap (their bounding boxes keep a
gap) and every stated relation holds for the object centres along a clearly dominant axis.

    >>> import numpy as np
    >>> scene = sample_scene(np.random.default_rng(0))
    >>> scene.describe()          # e.g. 'a small striped red circle to the left of a large ...'
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

SHAPES = ["circle", "square", "triangle", "star", "hexagon", "diamond"]
# name -> (fill, pattern shade). Each shade is darker or lighter than its fill but still
# nearer to it than to any other fill here, so a pattern never reads as a second colour.
COLOURS: dict[str, tuple[tuple[int, int, int], tuple[int, int, int]]] = {
    "red": ((215, 35, 35), (150, 20, 20)),
    "green": ((40, 165, 60), (25, 110, 40)),
    "blue": ((35, 80, 215), (20, 45, 140)),
    "yellow": ((245, 215, 35), (250, 235, 120)),
    "purple": ((140, 55, 185), (95, 30, 125)),
    "orange": ((240, 125, 20), (200, 100, 15)),
    "white": ((245, 245, 245), (200, 200, 200)),
    "black": ((25, 25, 25), (75, 75, 75)),
}
MATERIALS = ["solid", "striped", "dotted", "checkered"]
SIZES = ["small", "large"]
RELATIONS = ["left of", "right of", "above", "below"]
# The words captions use for each attribute: captions state facts only with these values.
ATTRIBUTE_VOCAB: dict[str, list[str]] = {
    "colour": list(COLOURS),
    "shape": list(SHAPES),
    "material": list(MATERIALS),
    "size": list(SIZES),
    "relation": list(RELATIONS),
}
# Object radius (half the bounding-box side) as a fraction of the image side.
RADIUS = {"small": 0.095, "large": 0.16}
_MARGIN = 0.03  # free border around the image
_GAP = 0.035  # least free space between two objects' bounding boxes


@dataclass(frozen=True)
class Background:
    rgb: tuple[int, int, int]
    dark: bool
    outdoors: bool


# Chosen far from every object colour; an object colour within 100 (RGB distance) of a
# background is never drawn on it (black on "night", white on "cream").
BACKGROUNDS: dict[str, Background] = {
    "grey": Background((150, 150, 155), dark=False, outdoors=False),
    "cream": Background((225, 215, 190), dark=False, outdoors=False),
    "sand": Background((200, 180, 140), dark=False, outdoors=True),
    "sky": Background((140, 185, 225), dark=False, outdoors=True),
    "mint": Background((165, 210, 180), dark=False, outdoors=True),
    "ice": Background((200, 225, 240), dark=False, outdoors=True),
    "night": Background((22, 28, 58), dark=True, outdoors=True),
    "dusk": Background((70, 48, 88), dark=True, outdoors=True),
}
BACKGROUND_STYLES = ["plain", "gradient", "noise"]
# Photo labels, as a photography club tags its photos; ``Scene.labels`` maps content to them.
LABELS = ["portrait", "group photo", "stage", "night", "outdoors", "indoors", "colourful"]


@dataclass(frozen=True)
class Theme:
    """What an event looks like: favoured backgrounds, colours, shapes and materials."""

    name: str
    backgrounds: tuple[str, ...]
    colours: tuple[str, ...] = ()
    shapes: tuple[str, ...] = ()
    materials: tuple[str, ...] = ()
    n_objects: tuple[float, float, float] = (0.3, 0.4, 0.3)  # weights for 1, 2, 3 objects
    near_duplicate_rate: float = 0.06


@dataclass(frozen=True)
class Obj:
    shape: str
    colour: str
    material: str
    size: str
    x: float  # centre, fraction of the image width from the left
    y: float  # centre, fraction of the image height from the top

    @property
    def radius(self) -> float:
        return RADIUS[self.size]

    def phrase(self, detail: str = "basic") -> str:
        """Noun phrase without article; ``detail`` is basic, size, material or full."""
        words = [self.size] if detail in ("size", "full") else []
        words += [self.material] if detail in ("material", "full") else []
        return " ".join([*words, self.colour, self.shape])


@dataclass(frozen=True)
class Scene:
    objects: tuple[Obj, ...]
    # (i, relation, j): objects[i] is <relation> objects[j]; one per consecutive pair.
    relations: tuple[tuple[int, str, int], ...]
    background: str
    background_style: str = "plain"
    brightness: float = 1.0
    noise_seed: int = 0

    def attributes(self) -> dict[str, list[str]]:
        """Attribute values in object order (one per object; relations one per pair)."""
        return {
            "colour": [o.colour for o in self.objects],
            "shape": [o.shape for o in self.objects],
            "material": [o.material for o in self.objects],
            "size": [o.size for o in self.objects],
            "relation": [r for _, r, _ in self.relations],
        }

    def labels(self) -> list[str]:
        """Photo labels from content: object count, a large centred object, the background."""
        bg = BACKGROUNDS[self.background]
        n = len(self.objects)
        rules = {
            "portrait": n == 1,
            "group photo": n == 3,
            "stage": any(o.size == "large" and abs(o.x - 0.5) < 0.15 and abs(o.y - 0.5) < 0.15
                         for o in self.objects),
            "night": bg.dark,
            "outdoors": bg.outdoors,
            "indoors": not bg.outdoors,
            "colourful": n == 3 and len({o.colour for o in self.objects}) == 3,
        }
        return [label for label in LABELS if rules[label]]

    def describe(self) -> str:
        """The canonical full description, e.g. 'a small striped red circle above a large ...'."""
        nps = [with_article(o.phrase("full")) for o in self.objects]
        if not self.relations:
            return nps[0]
        i, rel, j = self.relations[0]
        text = f"{nps[i]} {relation_phrase(rel)} {nps[j]}"
        if len(self.relations) > 1:
            i, rel, j = self.relations[1]
            text += f", which is {relation_phrase(rel)} {nps[j]}"
        return text

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["relations"] = [list(r) for r in self.relations]
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Scene:
        return cls(**{**d, "objects": tuple(Obj(**o) for o in d["objects"]),
                      "relations": tuple(tuple(r) for r in d["relations"])})

    def near_duplicate(self, rng: np.random.Generator) -> Scene:
        """The same scene shot again: the camera shifts a little, exposure changes a little."""
        dx, dy = (round(float(v), 4) for v in rng.uniform(-0.012, 0.012, size=2))
        objects = tuple(replace(o, x=round(o.x + dx, 4), y=round(o.y + dy, 4)) for o in self.objects)
        gain = pick(rng, (-1, 1)) * float(rng.uniform(0.02, 0.05))
        return replace(self, objects=objects, brightness=round(self.brightness + gain, 4))


def with_article(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def relation_phrase(relation: str) -> str:
    """'left of' -> 'to the left of'; the vocabulary words stay intact inside the phrase."""
    return f"to the {relation}" if relation.endswith(" of") else relation


def colour_distance(a: tuple[int, ...], b: tuple[int, ...]) -> float:
    return float(np.linalg.norm(np.subtract(a, b, dtype=float)))


def pick(rng: np.random.Generator, values):
    """A uniform choice from a sequence (``rng.choice`` is slow on small Python lists)."""
    return values[int(rng.integers(len(values)))]


def _weighted_pick(rng: np.random.Generator, values, weights):
    x = float(rng.random()) * sum(weights)
    for value, weight in zip(values, weights):
        x -= weight
        if x < 0:
            return value
    return values[-1]


def _favouring(rng: np.random.Generator, values: list[str], favoured: tuple[str, ...]) -> str:
    # Favoured values are three times as likely; the rest stay possible so that every
    # combination of attributes appears somewhere in the world.
    return _weighted_pick(rng, values, [3.0 if v in favoured else 1.0 for v in values])


def sample_scene(rng: np.random.Generator | int, theme: Theme | None = None) -> Scene:
    """Draw a random scene; ``theme`` biases background, colours, shapes and object count."""
    rng = np.random.default_rng(rng)
    theme = theme or Theme("any", tuple(BACKGROUNDS))
    background = pick(rng, theme.backgrounds)
    bg_rgb = BACKGROUNDS[background].rgb
    colours = [c for c, (rgb, _) in COLOURS.items() if colour_distance(rgb, bg_rgb) >= 100]
    n = _weighted_pick(rng, (1, 2, 3), theme.n_objects)
    kinds: list[tuple[str, str]] = []
    while len(kinds) < n:  # no two objects share both colour and shape: captions stay unambiguous
        kind = (_favouring(rng, SHAPES, theme.shapes), _favouring(rng, colours, theme.colours))
        if kind not in kinds:
            kinds.append(kind)
    materials = [_favouring(rng, MATERIALS, theme.materials) for _ in range(n)]
    centres = None
    while centres is None:  # some draws cannot fit (three large objects in one row): redraw them
        sizes = [pick(rng, SIZES) for _ in range(n)]
        relations = [pick(rng, RELATIONS) for _ in range(n - 1)]
        centres = _layout(rng, [RADIUS[s] for s in sizes], relations)
    objects = tuple(Obj(s, c, m, z, x, y) for (s, c), m, z, (x, y) in zip(kinds, materials, sizes, centres))
    return Scene(objects, tuple((i, r, i + 1) for i, r in enumerate(relations)), background,
                 pick(rng, BACKGROUND_STYLES), 1.0, int(rng.integers(2**31)))


def _layout(rng: np.random.Generator, radii: list[float],
            relations: list[str]) -> list[tuple[float, float]] | None:
    """Centres such that objects[i] <relations[i]> objects[i+1] and no two boxes overlap."""
    for _ in range(50):
        centres = [_free_point(rng, radii[0])]
        for k, rel in enumerate(relations):
            point = _place_next(rng, centres[-1], radii[k], radii[k + 1], rel, centres, radii)
            if point is None:
                break
            centres.append(point)
        else:
            return [(round(x, 4), round(y, 4)) for x, y in centres]
    return None


def _free_point(rng: np.random.Generator, r: float) -> tuple[float, float]:
    lo, hi = _MARGIN + r, 1 - _MARGIN - r
    return float(rng.uniform(lo, hi)), float(rng.uniform(lo, hi))


def _place_next(rng, anchor, r_anchor, r, rel, centres, radii) -> tuple[float, float] | None:
    # "a left of b": a's centre lies left of b's, and the offset along that axis is at least
    # 2.5 times the offset across it, so the relation reads the same to a person and to a test.
    lo, hi = _MARGIN + r, 1 - _MARGIN - r
    room = {"left of": hi - anchor[0], "right of": anchor[0] - lo,
            "above": hi - anchor[1], "below": anchor[1] - lo}[rel]
    nearest = r_anchor + r + _GAP
    for _ in range(20 if room >= nearest else 0):
        along = float(rng.uniform(nearest, room))
        across = float(rng.uniform(-0.4, 0.4)) * along
        dx, dy = {"left of": (along, across), "right of": (-along, across),
                  "above": (across, along), "below": (across, -along)}[rel]
        x, y = anchor[0] + dx, anchor[1] + dy
        inside = lo <= x <= hi and lo <= y <= hi
        clear = (max(abs(x - cx), abs(y - cy)) >= r + cr + _GAP for (cx, cy), cr in zip(centres, radii))
        if inside and all(clear):
            return x, y
    return None
