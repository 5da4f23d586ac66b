"""A shapes-world event photo dump: a memory card after a season of events, with the answers.

    from captune.demo.photos import generate_photos
    summary = generate_photos("runs/photos", n_events=6, n_images=120, seed=0)
    # or: captune demo photos --out runs/photos

writes ``photos/`` (the dump the agent reads), ``truth.json`` (what the agent should find:
``duplicates``, ``low_quality``, ``labels``, ``events``, ``unreadable``; images named by their
path relative to ``photos/``) and ``dump.json`` (every file's kind, original, shooting time and
edit, and the summary). In the dump, besides ``n_images`` readable photos:

- events: one shapes-world theme each ("Spring Fair", ...), 3-8 h apart (last shot of one to the
  first of the next); shots within an event 10 s - 8 min apart. Two cameras: ``cam1/IMG_0001.jpg``,
  ``cam2/DSC_0001.jpg``; each camera shot is a PNG with probability 0.1.
- shooting times: EXIF DateTimeOriginal + SubSecTimeOriginal (milliseconds) in every JPEG. PNGs
  carry no EXIF: their time is the file's modification time only (the shooting time read as UTC).
  Every file's modification time is its shooting time.
- near-duplicates (15% of the photos), grouped with their original in ``duplicates``: re-shots
  (``Scene.near_duplicate``, same camera, 0.3-3 s later), re-encodes (JPEG quality 60, half of
  them at 80% size) and crops (1-2% off each edge, resized back), both in ``shared/`` with the
  original's EXIF, and exact byte copies in ``backup/`` (one, or two from 100 photos).
- low quality (8%), each a fresh scene of its event: blurred (Gaussian, radius 4-6 px per 256 px),
  underexposed (x0.08, in events with a dark background, which clips to black) and overexposed
  (x2.6, in events with a light background, which clips to white). The background sets the kind
  because clipping it clips everything darker (or brighter) too: the shapes would vanish.
- one JPEG (two from 100 photos) stored rotated, with EXIF Orientation 6 or 8; ``exif_transpose``
  gives it upright, and each is the original of a re-shot or crop drawn upright.
- three files ingest must reject: an empty ``.jpg``, a truncated JPEG (its first half) and a text
  file named ``.jpg`` (truth's ``unreadable``).

The same seed gives byte-identical files and modification times.
"""

from __future__ import annotations

import calendar
import itertools
import os
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageFilter, ImageOps

from captune.demo.render import render
from captune.demo.scene import BACKGROUNDS, Scene, Theme, pick, sample_scene
from captune.demo.world import Event, sample_events
from captune.errors import ConfigError
from captune.io import read_json, write_json

START = datetime(2024, 5, 18, 9, 30)  # the first shot of the dump
EVENT_GAP_HOURS = (3.0, 8.0)
SHOT_GAP_SECONDS = (10.0, 480.0)
BURST_SECONDS = (0.3, 3.0)
DUPLICATE_RATE = 0.15
LOW_QUALITY_RATE = 0.08
PNG_RATE = 0.10
JPEG_QUALITY = 92
REENCODE_QUALITY = 60
REENCODE_SCALE = 0.8
CROP_EDGE = (0.01, 0.02)  # fraction of the side cut off each edge
BLUR_RADIUS = (4.0, 6.0)  # pixels at 256 px, scaled with the image size
UNDER_GAIN = 0.08  # dark backgrounds (luminance <= 77, gradients included) fall to <= 6
OVER_GAIN = 2.6  # light backgrounds (every channel >= 122, gradients included) clip at 255
CAMERAS = {"cam1": "IMG", "cam2": "DSC"}
SHARED, BACKUP = "shared", "backup"
FOLDER_PREFIX = {**CAMERAS, SHARED: "PXL"}
DUPLICATE_KINDS = ("reshot", "reencode", "crop")
LOW_QUALITY_KINDS = ("blurred", "underexposed", "overexposed")
UNREADABLE = {"cam2/DSC_9998.jpg": "empty", "cam1/IMG_9999.jpg": "truncated", "notes.jpg": "text"}
# Orientation -> the transpose that stores an upright image so that exif_transpose undoes it
STORED_ROTATION = {6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}
_EXIF_IFD, _MAKE, _MODEL, _ORIENTATION = 0x8769, 0x010F, 0x0110, 0x0112
_DATETIME_ORIGINAL, _SUBSEC_ORIGINAL = 0x9003, 0x9291


@dataclass
class Shot:
    """One readable file of the dump, before and after it is written."""

    index: int
    event: str
    kind: str  # photo, reshot, reencode, crop, copy, blurred, underexposed, overexposed
    scene: Scene
    time_ms: int = 0  # shooting time, milliseconds after START
    folder: str = "cam1"
    fmt: str = "JPEG"
    original: int | None = None  # index of the original shot (near-duplicates)
    orientation: int = 1
    name: str = ""  # path relative to photos/
    edit: dict[str, Any] = field(default_factory=dict)  # what a planted shot does to its pixels

    @property
    def taken_at(self) -> datetime:
        return START + timedelta(milliseconds=self.time_ms)


def generate_photos(out_dir: str | os.PathLike, n_events: int = 6, n_images: int = 120, seed: int = 0,
                    size: int = 256) -> dict[str, Any]:
    """Write the photo dump, ``truth.json`` and ``dump.json`` to ``out_dir``; return the summary."""
    _check(n_images, size)
    out = Path(out_dir)
    photos = out / "photos"
    _clear_previous(out, photos)
    shots = plan_shots(n_events, n_images, seed, size)
    for shot in shots:
        _write_shot(shot, shots, photos, size)
    _write_unreadable(photos, size, seed)
    truth = build_truth(shots)
    summary = _summary(shots, seed, size)
    write_json(out / "truth.json", truth)
    write_json(out / "dump.json", {"summary": summary, "photos": [_shot_json(s, shots) for s in shots]})
    return {"out_dir": str(out), "photos_dir": str(photos), "truth": str(out / "truth.json"), **summary}


def _check(n_images: int, size: int) -> None:
    # from 20 photos, 23% planted fit after each event's first shot even with all 8 events
    if n_images < 20:
        raise ConfigError(f"n_images={n_images}: the dump needs at least 20 photos to plant near-duplicates "
                          "and low-quality shots in; pass a larger --images")
    if size < 64:
        raise ConfigError(f"size={size}: perceptual hashes and blur need at least 64 px; pass a larger --size")


def _count(rate: float, n: int) -> int:
    return max(1, round(rate * n))


def _clear_previous(out: Path, photos: Path) -> None:
    """Remove the files an earlier dump wrote here; refuse a ``photos/`` folder that is not a dump."""
    truth = out / "truth.json"
    if truth.exists():
        old = read_json(truth)
        for name in [*old.get("events", {}), *old.get("unreadable", [])]:
            (photos / name).unlink(missing_ok=True)
        for folder in sorted((p for p in photos.rglob("*") if p.is_dir()), reverse=True):
            if not any(folder.iterdir()):
                folder.rmdir()
    elif photos.exists() and any(photos.iterdir()):
        raise ConfigError(f"{photos} holds files and {truth} does not exist, so it is not a photo dump this "
                          "command wrote; pass an empty or new --out folder")


def plan_shots(n_events: int, n_images: int, seed: int, size: int = 256) -> list[Shot]:
    """Every readable file of the dump: event, kind, scene, time, folder, format, file name and edit."""
    rng = np.random.default_rng([seed, 21])
    events = sample_events(rng, n_images, n_events)
    roles = _assign_roles(rng, events, n_images)
    shots: list[Shot] = []
    for event in events:
        latest_photo = None
        for k in range(len(event.image_ids)):
            kind = roles.get((event.name, k), "photo")
            shot_rng = np.random.default_rng([seed, 22, len(shots)])
            original = latest_photo if kind in (*DUPLICATE_KINDS, "copy") else None
            shots.append(_new_shot(len(shots), event, kind, shot_rng, None if original is None else shots[original]))
            if kind == "photo":
                latest_photo = len(shots) - 1
    _set_times(rng, shots)
    _set_folders_and_formats(rng, shots)
    _rotate(rng, shots, n_rotated=1 if n_images < 100 else 2)
    _name(shots)
    _plan_edits(rng, shots, size)
    return shots


def _assign_roles(rng: np.random.Generator, events: list[Event], n_images: int) -> dict[tuple[str, int], str]:
    """(event, position) -> kind for the planted shots; each event's first shot is a plain photo."""
    free = [(e.name, k) for e in events for k in range(1, len(e.image_ids))]
    free = [free[int(i)] for i in rng.permutation(len(free))]
    dark = {e.name: _is_dark(e.theme) for e in events}
    roles = {}
    for kind in itertools.islice(itertools.cycle(LOW_QUALITY_KINDS), _count(LOW_QUALITY_RATE, n_images)):
        if kind != "blurred" and not any(dark[name] == (kind == "underexposed") for name, _ in free):
            kind = "overexposed" if kind == "underexposed" else "underexposed"  # no event of that kind
        slot = next(s for s in free if kind == "blurred" or dark[s[0]] == (kind == "underexposed"))
        free.remove(slot)
        roles[slot] = kind
    n_dup = _count(DUPLICATE_RATE, n_images)
    n_copies = 1 if n_images < 100 else 2
    kinds = [*itertools.islice(itertools.cycle(DUPLICATE_KINDS), n_dup - n_copies), *["copy"] * n_copies]
    for slot, kind in zip(free, kinds):
        roles[slot] = kind
    return roles


def _is_dark(theme: Theme) -> bool:
    return all(BACKGROUNDS[b].dark for b in theme.backgrounds)


def _new_shot(index: int, event: Event, kind: str, rng: np.random.Generator, original: Shot | None) -> Shot:
    if original is None:
        scene = sample_scene(rng, event.theme)
    elif kind == "reshot":
        scene = original.scene.near_duplicate(rng)
    else:
        scene = original.scene
    return Shot(index, event.name, kind, scene, original=None if original is None else original.index)


def _set_times(rng: np.random.Generator, shots: list[Shot]) -> None:
    """Events hours apart, shots minutes apart, re-shots a burst after their original; edits keep its time."""
    clock, event = 0, None
    for shot in shots:
        if shot.original is not None:
            base = shots[shot.original].time_ms
            shot.time_ms = base + _ms(rng, BURST_SECONDS) if shot.kind == "reshot" else base
            clock = max(clock, shot.time_ms)
            continue
        if event is not None and shot.event != event:
            clock += _ms(rng, EVENT_GAP_HOURS) * 3600
        elif event is not None:
            clock += _ms(rng, SHOT_GAP_SECONDS)
        shot.time_ms, event = clock, shot.event


def _ms(rng: np.random.Generator, bounds: tuple[float, float]) -> int:
    """A uniform draw from ``bounds`` (seconds) in whole milliseconds."""
    return round(float(rng.uniform(*bounds)) * 1000)


def _set_folders_and_formats(rng: np.random.Generator, shots: list[Shot]) -> None:
    cameras = list(CAMERAS)
    for shot in shots:
        if shot.kind in ("reencode", "crop"):
            shot.folder = SHARED
        elif shot.kind in ("reshot", "copy"):
            shot.folder = shots[shot.original].folder if shot.kind == "reshot" else BACKUP
        else:
            shot.folder = pick(rng, cameras)
        if shot.kind == "copy":
            shot.fmt = shots[shot.original].fmt
        elif shot.kind not in ("reencode", "crop") and rng.random() < PNG_RATE:
            shot.fmt = "PNG"


def _rotate(rng: np.random.Generator, shots: list[Shot], n_rotated: int) -> None:
    """Store a few JPEG originals rotated, preferring those with a re-shot or crop (drawn upright anew)."""
    upright_copies = {s.original for s in shots if s.kind in ("reshot", "crop")}
    candidates = [s for s in shots if s.kind == "photo" and s.fmt == "JPEG"
                  and s.index not in {c.original for c in shots if c.kind == "copy"}]
    order = rng.permutation(len(candidates))
    ranked = sorted(zip(candidates, order.tolist()), key=lambda c: (c[0].index not in upright_copies, c[1]))
    for (shot, _), orientation in zip(ranked[:n_rotated], (6, 8)):
        shot.orientation = orientation


def _name(shots: list[Shot]) -> None:
    """Camera-style names numbered in shooting order per folder; a byte copy keeps its original's name."""
    counters = dict.fromkeys(FOLDER_PREFIX, 0)
    for shot in sorted(shots, key=lambda s: (s.time_ms, s.index)):
        if shot.kind == "copy":
            continue
        counters[shot.folder] += 1
        ext = "png" if shot.fmt == "PNG" else "jpg"
        shot.name = f"{shot.folder}/{FOLDER_PREFIX[shot.folder]}_{counters[shot.folder]:04d}.{ext}"
    for shot in shots:
        if shot.kind == "copy":
            shot.name = f"{BACKUP}/{shots[shot.original].name.rsplit('/', 1)[1]}"


def _plan_edits(rng: np.random.Generator, shots: list[Shot], size: int) -> None:
    """What each planted shot does to its pixels, in pixels of the ``size`` image (``dump.json`` lists it)."""
    reencodes = 0
    for shot in shots:
        if shot.kind == "reencode":
            side = round(size * REENCODE_SCALE) if reencodes % 2 else size  # every second one shrunk
            shot.edit, reencodes = {"quality": REENCODE_QUALITY, "side": side}, reencodes + 1
        elif shot.kind == "crop":
            left, top, right, bottom = (round(float(rng.uniform(*CROP_EDGE)) * size) for _ in range(4))
            shot.edit = {"box": [left, top, size - right, size - bottom]}
        elif shot.kind == "blurred":
            shot.edit = {"radius": round(float(rng.uniform(*BLUR_RADIUS)) * size / 256, 3)}
        elif shot.kind in ("underexposed", "overexposed"):
            shot.edit = {"gain": UNDER_GAIN if shot.kind == "underexposed" else OVER_GAIN}


def _write_shot(shot: Shot, shots: list[Shot], photos: Path, size: int) -> None:
    path = photos / shot.name
    path.parent.mkdir(parents=True, exist_ok=True)
    if shot.kind == "copy":
        shutil.copyfile(photos / shots[shot.original].name, path)
    elif shot.kind == "reencode":
        _save(_reencoded(shot, photos / shots[shot.original].name), path, shot, REENCODE_QUALITY)
    else:
        _save(_pixels(shot, size), path, shot, JPEG_QUALITY)
    ns = _epoch_ns(shot.taken_at)
    os.utime(path, ns=(ns, ns))


def _pixels(shot: Shot, size: int) -> Image.Image:
    """The upright image of a shot (planted defects applied)."""
    image = render(shot.scene, size)
    if shot.kind == "blurred":
        return image.filter(ImageFilter.GaussianBlur(shot.edit["radius"]))
    if shot.kind in ("underexposed", "overexposed"):
        scaled = np.asarray(image, dtype=np.float32) * shot.edit["gain"]
        return Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8), "RGB")
    if shot.kind == "crop":
        return image.crop(tuple(shot.edit["box"])).resize((size, size), Image.Resampling.LANCZOS)
    return image


def _reencoded(shot: Shot, original: Path) -> Image.Image:
    """The original file decoded upright and resized to the edit's side, for saving at a lower quality."""
    with Image.open(original) as im:
        image = ImageOps.exif_transpose(im).convert("RGB")
    side = shot.edit["side"]
    return image if image.size == (side, side) else image.resize((side, side), Image.Resampling.LANCZOS)


def _save(image: Image.Image, path: Path, shot: Shot, quality: int) -> None:
    """PNG without metadata, or JPEG (4:2:0) with the shot's EXIF and the pixels stored as oriented."""
    if shot.fmt == "PNG":
        image.save(path, format="PNG")
        return
    if shot.orientation in STORED_ROTATION:
        image = image.transpose(STORED_ROTATION[shot.orientation])
    image.save(path, format="JPEG", quality=quality, subsampling=2, exif=_exif(shot).tobytes())


def _exif(shot: Shot) -> Image.Exif:
    exif = Image.Exif()
    exif[_MAKE] = "captune"
    exif[_MODEL] = f"shapes {shot.folder}"
    exif[_ORIENTATION] = shot.orientation
    ifd = exif.get_ifd(_EXIF_IFD)
    ifd[_DATETIME_ORIGINAL] = shot.taken_at.strftime("%Y:%m:%d %H:%M:%S")
    ifd[_SUBSEC_ORIGINAL] = f"{shot.taken_at.microsecond // 1000:03d}"
    return exif


def _epoch_ns(moment: datetime) -> int:
    """Nanoseconds since the epoch of a naive time read as UTC (EXIF times carry no zone)."""
    return calendar.timegm(moment.timetuple()) * 10**9 + moment.microsecond * 1000


def _write_unreadable(photos: Path, size: int, seed: int) -> None:
    """An empty JPEG, the first half of a valid one and a text file named .jpg."""
    scene = sample_scene(np.random.default_rng([seed, 23]))
    for name, what in UNREADABLE.items():
        path = photos / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if what == "empty":
            path.write_bytes(b"")
        elif what == "truncated":
            render(scene, size).save(path, format="JPEG", quality=JPEG_QUALITY, subsampling=2)
            data = path.read_bytes()
            path.write_bytes(data[: len(data) // 2])
        else:
            path.write_text("Shot list for the season: arrive 30 minutes early, charge the batteries.\n")
        ns = _epoch_ns(START)
        os.utime(path, ns=(ns, ns))


def build_truth(shots: list[Shot]) -> dict[str, Any]:
    """What the agent should find, with images named by their path relative to ``photos/``."""
    groups: dict[int, list[str]] = {}
    for shot in shots:
        if shot.original is not None:
            groups.setdefault(shot.original, [shots[shot.original].name]).append(shot.name)
    return {
        "duplicates": [groups[k] for k in sorted(groups)],
        "low_quality": [s.name for s in shots if s.kind in LOW_QUALITY_KINDS],
        "labels": {s.name: s.scene.labels() for s in shots},
        "events": {s.name: s.event for s in shots},
        "unreadable": sorted(UNREADABLE),
    }


def _summary(shots: list[Shot], seed: int, size: int) -> dict[str, Any]:
    events: dict[str, int] = {}
    for shot in shots:
        events[shot.event] = events.get(shot.event, 0) + 1
    kinds = {k: sum(s.kind == k for s in shots) for k in (*DUPLICATE_KINDS, "copy", *LOW_QUALITY_KINDS)}
    first, last = min(s.taken_at for s in shots), max(s.taken_at for s in shots)
    return {
        "params": {"n_events": len(events), "n_images": len(shots), "seed": seed, "size": size},
        "photos": len(shots),
        "files": len(shots) + len(UNREADABLE),
        "formats": {"jpeg": sum(s.fmt == "JPEG" for s in shots), "png": sum(s.fmt == "PNG" for s in shots)},
        "events": events,
        "duplicates": {"groups": len({s.original for s in shots if s.original is not None}),
                       "photos": sum(s.original is not None for s in shots),
                       "kinds": {k: kinds[k] for k in (*DUPLICATE_KINDS, "copy")}},
        "low_quality": {"photos": sum(kinds[k] for k in LOW_QUALITY_KINDS),
                        "kinds": {k: kinds[k] for k in LOW_QUALITY_KINDS}},
        "unreadable": len(UNREADABLE),
        "rotated": [s.name for s in shots if s.orientation != 1],
        "png_time": "file modification time only (no EXIF)",
        "time_span": {"first": first.isoformat(timespec="milliseconds"),
                      "last": last.isoformat(timespec="milliseconds"),
                      "hours": round((last - first).total_seconds() / 3600, 2)},
    }


def _shot_json(shot: Shot, shots: list[Shot]) -> dict[str, Any]:
    return {"image": shot.name, "event": shot.event, "kind": shot.kind,
            "original": None if shot.original is None else shots[shot.original].name,
            "taken_at": shot.taken_at.isoformat(timespec="milliseconds"),
            "time_source": "file" if shot.fmt == "PNG" else "exif", "orientation": shot.orientation,
            "edit": shot.edit}
