"""Shapes-world generation speed: images per second for ``captune.demo.world.generate``.

    python benchmarks/world_generate.py [--n 1000] [--size 64] [--repeat 3]

Prints, for the same images: the full ``generate`` (scenes, rendering, PNG files, captions,
records), rendering alone, and the baseline of only encoding and writing PNGs of that size
(the floor any generator pays). Ratios are of CPU time against that baseline, measured in
the same run; wall-clock figures move with whatever else the machine is running.
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


def _best(fn, repeat: int) -> tuple[float, float]:
    """Best wall-clock and best CPU seconds (CPU time barely moves when the machine is busy)."""
    wall, cpu = [], []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return min(wall), min(cpu)


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
    base = timings["baseline: write PNGs only"][1]
    print(f"{args.n} images, {args.size} px, best of {args.repeat}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}")
    for name, (wall, cpu) in timings.items():
        print(f"{name:28s} wall {wall:5.2f} s ({args.n / wall:5.0f} images/s)  "
              f"cpu {cpu:5.2f} s ({args.n / cpu:5.0f} images/s, {cpu / base:4.1f}x baseline)")


if __name__ == "__main__":
    main()
