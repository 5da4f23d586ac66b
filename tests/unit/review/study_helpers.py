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


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(study_dir: Path, port: int, *extra: str):
    """``captune review serve`` in a subprocess; returns it once /login answers (15 s at most)."""
    import subprocess
    import sys
    import time

    import httpx

    proc = subprocess.Popen([sys.executable, "-m", "captune", "review", "serve", str(study_dir), "--port", str(port),
                             *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/login", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"the review server did not start: {proc.communicate()[1][-2000:]}")
