"""The shapes world: a seeded, procedural image-caption dataset that needs no downloads.

Scenes of one to three coloured, patterned shapes are grouped into events (a "Spring Fair"
on mint and sky backgrounds, a "Night Market" on dark ones ...), the way a photography club's
photos group by event. Each image gets photo labels, attribute annotations, plain (COCO-like)
and house-style (club Instagram) reference captions, and some events hold near-duplicate
shots marked ``near_duplicate_of``. The same seed gives byte-identical files.

    from captune.demo.world import generate
    data = generate("runs/world", n_images=500, seed=0)   # or: captune demo world --out runs/world

writes ``images/*.png``, ``plain.jsonl`` and ``house.jsonl`` (caption records, one per image,
same image ids), ``house_rows.jsonl`` (one raw ``{"image", "event", "labels", "caption"}`` row
per house caption) and ``world.json`` (parameters and counts).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from captune.data.records import CaptionRecord, write_records
from captune.demo.captions import OPENERS, add_noise, house_captions, plain_captions
from captune.demo.render import object_box, render
from captune.demo.scene import ATTRIBUTE_VOCAB, BACKGROUNDS, COLOURS, LABELS, Obj, Scene, Theme, sample_scene
from captune.errors import ConfigError
from captune.io import write_json, write_jsonl

__all__ = [
    "ATTRIBUTE_VOCAB",
    "BACKGROUNDS",
    "COLOURS",
    "LABELS",
    "OPENERS",
    "STYLES",
    "THEMES",
    "Event",
    "Obj",
    "Scene",
    "Theme",
    "WorldData",
    "generate",
    "object_box",
    "render",
    "sample_events",
    "sample_scene",
]

THEMES: list[Theme] = [
    Theme("Spring Fair", ("mint",), ("green", "yellow", "purple"), ("star", "circle", "diamond"), ("dotted",)),
    Theme("Night Market", ("night",), ("orange", "yellow", "white"), ("circle", "hexagon", "square"),
          ("solid", "checkered"), near_duplicate_rate=0.15),
    Theme("Sports Day", ("sand",), ("red", "blue", "white"), ("circle", "triangle", "star"),
          ("striped",), n_objects=(0.15, 0.35, 0.5)),
    Theme("Harbour Festival", ("sky",), ("blue", "white", "red"), ("triangle", "diamond", "square"),
          ("striped", "solid")),
    Theme("Winter Gala", ("ice",), ("blue", "purple", "black"), ("hexagon", "star", "diamond"),
          ("checkered",), n_objects=(0.5, 0.3, 0.2), near_duplicate_rate=0.1),
    Theme("Science Expo", ("grey",), ("green", "blue", "orange"), ("hexagon", "square", "triangle"),
          ("checkered", "dotted")),
    Theme("Summer Concert", ("dusk",), ("purple", "orange", "red"), ("star", "circle"),
          ("striped", "dotted"), near_duplicate_rate=0.12),
    Theme("Art Walk", ("cream",), (), (), ("striped", "checkered")),
]
STYLES = ("plain", "house", "both")


@dataclass
class Event:
    """One event: its name, its theme and the ids of its images, in shooting order."""

    name: str
    theme: Theme
    image_ids: list[str] = field(default_factory=list)


@dataclass
class WorldData:
    """What ``generate`` wrote: paths, the records of each style, events and scenes."""

    out_dir: Path
    files: dict[str, Path]  # "images", "plain", "house", "house_rows", "world" (those written)
    plain: list[CaptionRecord]
    house: list[CaptionRecord]
    events: list[Event]
    scenes: dict[str, Scene]  # image_id -> scene

    def summary(self, n_examples: int = 3) -> dict[str, Any]:
        records = self.house or self.plain
        near = sum(1 for r in records if "near_duplicate_of" in r.meta)
        return {
            "out_dir": str(self.out_dir),
            "images": len(self.scenes),
            "near_duplicates": near,
            "captions": {"plain": sum(len(r.captions) for r in self.plain),
                         "house": sum(len(r.captions) for r in self.house)},
            "events": {e.name: len(e.image_ids) for e in self.events},
            "files": {k: str(v) for k, v in self.files.items()},
            "examples": [{"image": r.image, "plain": p.captions[0] if p else None,
                          "house": h.captions[0] if h else None}
                         for r, p, h in _examples(self.plain, self.house, n_examples)],
        }


def _examples(plain: list[CaptionRecord], house: list[CaptionRecord], n: int):
    records = house or plain
    step = max(1, len(records) // n)
    for k in range(0, min(len(records), n * step), step):
        yield records[k], (plain[k] if plain else None), (house[k] if house else None)


def sample_events(rng: np.random.Generator, n_images: int, n_events: int) -> list[Event]:
    """Pick ``n_events`` themes and share ``n_images`` between them unevenly (each gets one)."""
    if not 1 <= n_events <= min(len(THEMES), n_images):
        raise ConfigError(f"n_events={n_events}: must be between 1 and {min(len(THEMES), n_images)} "
                          f"(there are {len(THEMES)} event themes and {n_images} images)")
    themes = [THEMES[int(i)] for i in rng.permutation(len(THEMES))[:n_events]]
    weights = rng.uniform(0.6, 1.4, size=n_events)
    counts = 1 + np.floor(weights / weights.sum() * (n_images - n_events)).astype(int)
    counts[: n_images - int(counts.sum())] += 1  # hand out the remainder, one each
    events, next_id = [], 0
    for theme, count in zip(themes, counts):
        events.append(Event(theme.name, theme, [f"world_{k:05d}" for k in range(next_id, next_id + count)]))
        next_id += int(count)
    return events


def _event_scenes(event: Event, seed: int) -> tuple[dict[str, Scene], dict[str, str]]:
    """Scenes of one event, and which of them re-shoot an earlier scene of the same event."""
    scenes: dict[str, Scene] = {}
    near: dict[str, str] = {}
    originals: list[str] = []
    for image_id in event.image_ids:
        rng = np.random.default_rng([seed, 0, _index(image_id)])
        if originals and rng.random() < event.theme.near_duplicate_rate:
            near[image_id] = originals[int(rng.integers(len(originals)))]
            scenes[image_id] = scenes[near[image_id]].near_duplicate(rng)
        else:
            scenes[image_id] = sample_scene(rng, event.theme)
            originals.append(image_id)
    return scenes, near


def generate(out_dir: str | os.PathLike, n_images: int = 500, seed: int = 0, image_size: int = 64,
             style: str = "both", n_events: int = 6, refs_per_image: int = 5,
             noisy: bool = False) -> WorldData:
    """Write a shapes-world dataset to ``out_dir`` and return what was written.

    ``style`` picks the caption files: "plain", "house" (with ``house_rows.jsonl``) or "both".
    ``noisy`` decorates about half of the house captions with handles, hashtags, swipe hints,
    links and emoji (the clean ones stay in ``meta["clean_captions"]``).
    """
    _check(n_images, image_size, style, refs_per_image)
    events = sample_events(np.random.default_rng([seed, 9]), n_images, n_events)
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    plain, house, scenes = [], [], {}
    # a bar only for long runs, and only on a terminal (None: tqdm stays quiet elsewhere)
    bar = tqdm(total=n_images, desc="shapes world", unit="img", disable=None if n_images >= 5000 else True)
    for event in events:
        event_scenes, near = _event_scenes(event, seed)
        for image_id, scene in event_scenes.items():
            # Plain writes: an fsync per image would cost more than drawing it. The records,
            # written last and atomically, are what make a folder a dataset.
            render(scene, image_size).save(out / "images" / f"{image_id}.png", format="PNG")
            meta = _meta(scene, event.name, near.get(image_id))
            rngs = [np.random.default_rng([seed, stream, _index(image_id)]) for stream in (1, 2, 3)]
            if style in ("plain", "both"):
                caps = plain_captions(scene, rngs[0], refs_per_image)
                plain.append(CaptionRecord(image_id, f"images/{image_id}.png", caps, dict(meta)))
            if style in ("house", "both"):
                house.append(_house_record(scene, image_id, event.name, meta, rngs[1:], refs_per_image,
                                           noisy))
            bar.update()
        scenes.update(event_scenes)
    bar.close()
    _remove_stale_images(out / "images", scenes)
    params = {"n_images": n_images, "seed": seed, "image_size": image_size, "style": style,
              "n_events": n_events, "refs_per_image": refs_per_image, "noisy": noisy}
    return WorldData(out, _write(out, plain, house, events, params), plain, house, events, scenes)


def _index(image_id: str) -> int:
    """``world_00042`` -> 42: each image's random streams are keyed by (seed, stream, index)."""
    return int(image_id.rsplit("_", 1)[1])


def _remove_stale_images(images: Path, scenes: dict[str, Scene]) -> None:
    # an earlier, larger run into the same folder must not leave images no record names
    for path in images.glob("world_*.png"):
        if path.stem not in scenes:
            path.unlink()


def _check(n_images: int, image_size: int, style: str, refs_per_image: int) -> None:
    if style not in STYLES:
        raise ConfigError(f"style={style!r}: choose one of {', '.join(STYLES)}")
    if n_images < 1 or refs_per_image < 1:
        raise ConfigError("n_images and refs_per_image must be at least 1")
    if image_size < 16:
        raise ConfigError(f"image_size={image_size}: shapes need at least 16 px to be recognisable")


def _meta(scene: Scene, event: str, near_duplicate_of: str | None) -> dict[str, Any]:
    meta: dict[str, Any] = {"event": event, "labels": scene.labels(), "attributes": scene.attributes(),
                            "description": scene.describe(), "scene": scene.to_json()}
    if near_duplicate_of:
        meta["near_duplicate_of"] = near_duplicate_of
    return meta


def _house_record(scene: Scene, image_id: str, event: str, meta: dict[str, Any],
                  rngs: list[np.random.Generator], refs: int, noisy: bool) -> CaptionRecord:
    caption_rng, noise_rng = rngs
    caps = house_captions(scene, event, caption_rng, refs)
    meta = dict(meta)
    if noisy:
        meta["clean_captions"] = caps
        caps = [add_noise(c, meta["labels"], noise_rng) if noise_rng.random() < 0.5 else c for c in caps]
    return CaptionRecord(image_id, f"images/{image_id}.png", caps, meta)


def _write(out: Path, plain, house, events, params: dict[str, Any]) -> dict[str, Path]:
    files = {"images": out / "images"}
    if plain:
        write_records(out / "plain.jsonl", plain)
        files["plain"] = out / "plain.jsonl"
    if house:
        write_records(out / "house.jsonl", house)
        rows = ({"image": r.image, "event": r.event, "labels": r.labels, "caption": c}
                for r in house for c in r.captions)
        write_jsonl(out / "house_rows.jsonl", rows)
        files.update(house=out / "house.jsonl", house_rows=out / "house_rows.jsonl")
    write_json(out / "world.json", {
        "params": params,
        "images": sum(len(e.image_ids) for e in events),
        "events": [{"name": e.name, "images": len(e.image_ids)} for e in events],
        "attribute_vocab": ATTRIBUTE_VOCAB,
        "labels": LABELS,
    })
    files["world"] = out / "world.json"
    return files
