"""A small study for the review tests: two systems' predictions over coloured PNGs."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

SYSTEMS = ("sysbase", "systuned")
"""Names that cannot occur in a caption or page by chance (the blindness tests search for them)."""


def write_systems(root: Path, n_items: int = 6) -> dict[str, Path]:
    """Two predictions files (with image paths) captioning the same ``n_items`` images."""
    images = root / "images"
    images.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name in SYSTEMS:
        rows = []
        for k in range(n_items):
            image = images / f"img_{k:03d}.png"
            if not image.exists():
                Image.new("RGB", (32, 32), (40 * k % 256, 90, 160)).save(image)
            style = "a plain picture of" if name == SYSTEMS[0] else "Moments from the fair:"
            rows.append({"image_id": f"img_{k:03d}", "image": str(image), "caption": f"{style} shape number {k}"})
        paths[name] = root / f"{name}.jsonl"
        paths[name].write_text("".join(json.dumps(r) + "\n" for r in rows))
    return paths


def make_study(root: Path, n_items: int = 6, **options):
    """Create a study in ``root/study``; returns ``create_study``'s answer (tokens included)."""
    from captune.review import create_study

    systems = write_systems(root / "src", n_items)
    options.setdefault("raters", ["alice", "bob"])
    return create_study(root / "study", systems, **options)
