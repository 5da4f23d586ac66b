"""How well perceptual hashes find near-duplicates, on the shapes world and on real photos.

    python benchmarks/near_duplicates.py [--out /tmp/captune-near-dups] [--images 1000 5000]

Prints, for the 64-bit and the 256-bit perceptual hash (imagehash ``phash`` with hash_size 8 and
16), how the shapes world's planted re-shoots (``meta.near_duplicate_of``) and its distinct
images are grouped at several thresholds; the bits a burst of scikit-image's sample photos moves
the 256-bit hash by (re-encoding, exposure, resizing, re-framing); the distances between distinct
photos and between alike face crops; and the time to compare 20,000 hashes pair by pair. The
figures in ``captune.data.near_duplicates`` and ``benchmarks/RESULTS.md`` come from here.
"""

from __future__ import annotations

import argparse
import io
import time

import imagehash
import numpy as np
import skimage.data
from PIL import Image, ImageEnhance

from captune.data.near_duplicates import close_pairs, components, image_hash
from captune.demo.world import generate

PHOTOS = ["astronaut", "camera", "chelsea", "coffee", "coins", "horse", "hubble_deep_field",
          "immunohistochemistry", "moon", "page", "text", "rocket", "retina", "brick", "grass", "gravel", "cell",
          "microaneurysms", "clock"]


def shapes_world(out: str, n: int, seed: int) -> None:
    """Planted pairs kept together and the largest group, per hash size and threshold."""
    data = generate(f"{out}/world-{n}-{seed}", n_images=n, seed=seed, style="plain")
    index = {r.image_id: k for k, r in enumerate(data.plain)}
    pairs = np.array([(k, index[r.meta["near_duplicate_of"]]) for k, r in enumerate(data.plain)
                      if "near_duplicate_of" in r.meta])
    truth = np.array(components(n, pairs))
    images = [Image.open(data.out_dir / r.image).convert("RGB") for r in data.plain]
    print(f"\nshapes world, {n} images (seed {seed}), {len(pairs)} planted near-duplicates")
    print("hash       threshold  pairs together  distinct pairs linked  groups  largest group")
    for size, thresholds in ((8, (4, 6, 8, 10, 12)), (16, (32, 40, 48, 56, 64))):
        bits = np.array([imagehash.phash(im, hash_size=size).hash.flatten() for im in images])
        for t in thresholds:
            labels = np.array(components(n, close_pairs(bits, t)))
            linked = close_pairs(bits, t)
            false = int(sum(truth[i] != truth[j] for i, j in linked))
            together = int((labels[pairs[:, 0]] == labels[pairs[:, 1]]).sum())
            sizes = np.bincount(labels)
            print(f"{size * size:>3} bits  {t:>9}  {together:>6} / {len(pairs):<6} {false:>21}  "
                  f"{int((sizes > 1).sum()):>6}  {sizes.max():>13}")


def photo(name: str) -> Image.Image:
    return Image.fromarray(getattr(skimage.data, name)()).convert("RGB")


def hash_of(image: Image.Image, fmt: str = "BMP", **save) -> np.ndarray:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **save)
    buffer.seek(0)
    return image_hash(buffer)


def shift(image: Image.Image, fraction: float) -> Image.Image:
    w, h = image.size
    return image.crop((int(fraction * w), int(fraction * h), w, h))


BURSTS = {
    "brightness x0.9": lambda im: hash_of(ImageEnhance.Brightness(im).enhance(0.9)),
    "brightness x1.15": lambda im: hash_of(ImageEnhance.Brightness(im).enhance(1.15)),
    "JPEG quality 50": lambda im: hash_of(im, "JPEG", quality=50),
    "half size": lambda im: hash_of(im.resize((im.width // 2, im.height // 2))),
    "frame moved 1%": lambda im: hash_of(shift(im, 0.01)),
    "frame moved 2%": lambda im: hash_of(shift(im, 0.02)),
    "frame moved 3%": lambda im: hash_of(shift(im, 0.03)),
    "frame moved 5%": lambda im: hash_of(shift(im, 0.05)),
    "moved 2%, x1.1, JPEG 75": lambda im: hash_of(ImageEnhance.Brightness(shift(im, 0.02)).enhance(1.1), "JPEG",
                                                  quality=75),
}


def real_photos() -> None:
    """Bits a burst shot moves the 256-bit hash by, and the distances between distinct photos."""
    photos = [photo(name) for name in PHOTOS]
    originals = [hash_of(im) for im in photos]
    print(f"\nscikit-image sample photos ({len(photos)}), 256-bit hash: bits from the original shot")
    for name, shot in BURSTS.items():
        moved = [int((h != shot(im)).sum()) for im, h in zip(photos, originals)]
        print(f"  {name:<26} median {np.median(moved):5.1f}   max {max(moved):4d}")
    distinct = _pair_distances(np.array(originals))
    print(f"  distinct photos: min {distinct.min()}, median {np.median(distinct):.0f} "
          f"({len(distinct)} pairs)")
    faces = [Image.fromarray((f * 255).astype(np.uint8)).convert("RGB") for f in skimage.data.lfw_subset()[:100]]
    alike = _pair_distances(np.array([hash_of(f) for f in faces]))
    print(f"  alike face crops (lfw_subset, 25 px): min {alike.min()}, 1st percentile "
          f"{np.percentile(alike, 1):.0f} ({len(alike)} pairs)")


def _pair_distances(bits: np.ndarray) -> np.ndarray:
    return (bits[:, None, :] != bits[None, :, :]).sum(-1)[np.triu_indices(len(bits), 1)]


def timing(n: int = 20000) -> None:
    bits = np.random.default_rng(0).random((n, 256)) < 0.5
    t0 = time.perf_counter()
    close_pairs(bits, 48)
    print(f"\ncomparing {n:,} hashes pair by pair: {time.perf_counter() - t0:.1f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="/tmp/captune-near-dups")
    ap.add_argument("--images", type=int, nargs="+", default=[1000, 5000])
    args = ap.parse_args()
    for n in args.images:
        shapes_world(args.out, n, seed=1000 if n == 1000 else 0)  # 1000: the demo's world
    real_photos()
    timing()


if __name__ == "__main__":
    main()
