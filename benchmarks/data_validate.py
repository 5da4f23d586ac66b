"""Image checking in ``captune data validate``: one thread against two (the default).

    python benchmarks/data_validate.py --images 120 --size 1600x1200

Writes JPEG photos-like images (smooth gradients plus grain) to a temporary folder, then times
``check_images`` (verify + full decode + EXIF + RGB) with 1 and 2 worker threads, best of 3.
Prints images per second for each and the ratio; figures go to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from captune.data.records import CaptionRecord
from captune.data.validate import check_images


def make_images(folder: Path, n: int, width: int, height: int) -> list[CaptionRecord]:
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:height, 0:width]
    records = []
    for i in range(n):
        base = (x * (i % 7 + 1) / width * 120 + y / height * 100)[..., None] + np.array([0, 40, 80])
        pixels = np.clip(base + rng.normal(0, 6, (height, width, 3)), 0, 255).astype(np.uint8)
        path = folder / f"{i:04d}.jpg"
        Image.fromarray(pixels).save(path, quality=90)
        records.append(CaptionRecord(path.name, str(path), ["a photo"], {}))
    return records


def best_of(records: list[CaptionRecord], workers: int, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        good, rejects = check_images(records, workers=workers)
        times.append(time.perf_counter() - start)
        assert len(good) == len(records) and not rejects
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=120)
    parser.add_argument("--size", default="1600x1200", help="WIDTHxHEIGHT of each image")
    args = parser.parse_args()
    width, height = map(int, args.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        records = make_images(Path(tmp), args.images, width, height)
        one, two = best_of(records, 1), best_of(records, 2)
    n = len(records)
    print(f"{n} JPEGs {width}x{height}: 1 thread {n / one:.1f} img/s, 2 threads {n / two:.1f} img/s, "
          f"speed-up {one / two:.2f}x")


if __name__ == "__main__":
    main()
