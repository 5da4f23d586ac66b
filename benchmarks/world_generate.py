"""Shapes-world generation speed: images per second for ``captune.demo.world.generate``.

    python benchmarks/world_generate.py [--n 1000] [--size 64] [--repeat 3]

Prints, for the same images: the full ``generate`` (scenes, rendering, PNG files, captions,
records), rendering alone, and the baseline of only encoding and writing PNGs of that size
(the floor any generator pays). Ratios are against that baseline, measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from captune.demo.render import render
from captune.demo.world import generate


def _best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = generate(root / "warm", n_images=args.n, image_size=args.size)
        scenes = list(data.scenes.values())
        pixels = [np.asarray(render(s, args.size)) for s in scenes]

        def write_pngs():
            (root / "png").mkdir(exist_ok=True)
            for k, p in enumerate(pixels):
                Image.fromarray(p).save(root / "png" / f"{k}.png")

        timings = {
            "generate (all files)": _best(lambda: generate(root / "w", n_images=args.n,
                                                           image_size=args.size), args.repeat),
            "render only": _best(lambda: [render(s, args.size) for s in scenes], args.repeat),
            "baseline: write PNGs only": _best(write_pngs, args.repeat),
        }
    base = timings["baseline: write PNGs only"]
    print(f"{args.n} images, {args.size} px, best of {args.repeat}, {os.cpu_count()} CPUs")
    for name, seconds in timings.items():
        print(f"{name:28s} {seconds:6.2f} s  {args.n / seconds:8.0f} images/s  {seconds / base:5.1f}x baseline")


if __name__ == "__main__":
    main()
