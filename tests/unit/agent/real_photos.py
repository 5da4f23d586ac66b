"""Real photographs (scikit-image's sample images) written as an event's photo dump with EXIF times."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import skimage.data
from PIL import Image, ImageFilter

EXIF_IFD, DATETIME_ORIGINAL, SUBSEC_ORIGINAL, ORIENTATION = 0x8769, 0x9003, 0x9291, 0x0112
START = datetime(2024, 5, 4, 10, 0, 0)


def sample(name: str) -> Image.Image:
    return Image.fromarray(getattr(skimage.data, name)()).convert("RGB")


def save(image: Image.Image, path: Path, when: datetime | None = None, orientation: int | None = None,
         quality: int = 92) -> Path:
    """Save as JPEG (or PNG by suffix) with DateTimeOriginal + SubSecTimeOriginal when ``when`` is given."""
    path.parent.mkdir(parents=True, exist_ok=True)
    exif = Image.Exif()
    if when is not None:
        ifd = exif.get_ifd(EXIF_IFD)
        ifd[DATETIME_ORIGINAL] = when.strftime("%Y:%m:%d %H:%M:%S")
        ifd[SUBSEC_ORIGINAL] = f"{when.microsecond // 10_000:02d}"
    if orientation is not None:
        exif[ORIENTATION] = orientation
    if path.suffix.lower() == ".png":
        image.save(path)
    else:
        image.save(path, quality=quality, exif=exif)
    return path


def crop(image: Image.Image, fraction: float) -> Image.Image:
    w, h = image.size
    return image.crop((int(fraction * w), int(fraction * h), w - int(fraction * w), h - int(fraction * h)))


def dump(root: Path) -> dict:
    """Two events 5 hours apart, planted re-encodes, a crop, a resize, an exact copy, a blurred and a dark
    shot (of photos that appear nowhere else), and the moon: smooth but sharp, among detailed photos.

    Returns a truth dict in the agent's format.
    """
    t = START
    shots: list[tuple[str, Image.Image, datetime, dict]] = []

    def at(minutes: float) -> datetime:
        return t + timedelta(minutes=minutes)

    astronaut, chelsea, coffee, rocket, camera, coins, moon = (sample(n) for n in (
        "astronaut", "chelsea", "coffee", "rocket", "camera", "coins", "moon"))
    shots += [("morning/astronaut.jpg", astronaut, at(0), {}),
              ("morning/astronaut_q40.jpg", astronaut, at(0.05), {"quality": 40}),
              ("morning/chelsea.jpg", chelsea, at(4), {}),
              ("morning/chelsea_crop.jpg", crop(chelsea, 0.02).resize(chelsea.size), at(4.02), {}),
              ("morning/coffee.jpg", coffee, at(9), {}),
              ("morning/rocket_blurred.jpg", rocket.filter(ImageFilter.GaussianBlur(4)), at(12), {})]
    t = START + timedelta(hours=5)
    dark = Image.fromarray((np.asarray(camera, np.float32) * 0.02).astype(np.uint8))
    shots += [("evening/moon.jpg", moon, at(0), {}),
              ("evening/coins.jpg", coins, at(3), {}),
              ("evening/camera_dark.jpg", dark, at(6), {}),
              ("evening/coins_half.jpg", coins.resize((coins.width // 2, coins.height // 2)), at(7), {})]
    for name, image, when, opts in shots:
        save(image, root / name, when, **opts)
    (root / "copies").mkdir()
    (root / "copies" / "coffee copy.jpg").write_bytes((root / "morning/coffee.jpg").read_bytes())
    (root / "evening" / "notes.txt").write_text("not a photo")
    (root / "evening" / "empty.jpg").write_bytes(b"")
    events = {name: ("morning" if name.startswith("morning") else "evening") for name, *_ in shots}
    events["copies/coffee copy.jpg"] = "morning"
    return {
        "duplicates": [["morning/astronaut.jpg", "morning/astronaut_q40.jpg"],
                       ["morning/chelsea.jpg", "morning/chelsea_crop.jpg"],
                       ["morning/coffee.jpg", "copies/coffee copy.jpg"],
                       ["evening/coins.jpg", "evening/coins_half.jpg"]],
        "low_quality": ["morning/rocket_blurred.jpg", "evening/camera_dark.jpg"],
        "events": events,
        "labels": {},
    }
