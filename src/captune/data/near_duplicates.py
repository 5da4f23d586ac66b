"""Group near-duplicate images (bursts, re-shoots, re-encodes) by perceptual hash.

    from captune.data.near_duplicates import near_duplicate_groups
    groups = near_duplicate_groups(["a.jpg", "b.jpg", "c.jpg"])
    groups.labels                 # [0, 0, 1]: a and b are the same shot

Method. Each image gets imagehash's perceptual hash with ``hash_size=16``: 256 bits, the signs of
the lowest 16 x 16 DCT frequencies of the 64 x 64 grey image against their median. Two images
whose hashes differ in at most ``threshold`` bits are linked, and linked images form one group
(union-find, so groups are transitive). Every pair is compared, in blocks of rows, by counting
bits over four 64-bit words: 20,000 images take about 4 s on one core. JPEGs are decoded at
reduced scale (PIL's draft mode; the hash moved by at most 2 bits on the test photos).

Why 256 bits and a threshold of 48 (``python benchmarks/near_duplicates.py``; figures in
``benchmarks/RESULTS.md``, "Near-duplicate grouping"):

- shapes world (64 px, plain backgrounds: its images look alike). The 64-bit hash puts distinct
  images close together: on 1,000 images, catching 57 of the 58 planted re-shoots takes threshold
  12, where one group swallows 541 images; on 5,000 images, at threshold 8 one group holds 1,580.
  The 256-bit hash keeps them apart: at 48 all 58 pairs of the 1,000 images and 438 of the 446 of
  the 5,000 share a group, 0.0025% of the distinct pairs are linked and the largest group holds 7.
- real photos (19 of scikit-image's samples, 512 px). Brightness x0.9 or x1.15, JPEG quality 50
  and halving the size move the hash by at most 18 bits; moving the frame by 1% by at most 38,
  by 2% by 34 in the median (at most 56), by 5% by 78 (no longer caught). Distinct photos differ
  by at least 106 bits (median 128), 100 aligned face crops of 25 px by at least 78.

So 48 catches re-encodes, exposure changes and re-framing by about 1-2%, with 30 bits to spare
before alike but distinct photos.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import imagehash
import numpy as np
from PIL import Image, ImageOps
from tqdm import tqdm

from captune.data.images import to_rgb
from captune.errors import CaptuneError

HASH_SIZE = 16  # 16 x 16 DCT frequencies: 256-bit hashes
HASH_BITS = HASH_SIZE * HASH_SIZE
DEFAULT_THRESHOLD = 48
BLOCK_ROWS = 256  # rows compared at once: 256 x n x 4 words of uint64


@dataclass
class NearDuplicateGroups:
    """``labels[k]``: the group of image k (numbered in order of first appearance)."""

    labels: list[int]
    threshold: int
    linked_pairs: int

    def sizes(self) -> list[int]:
        return np.bincount(self.labels).tolist() if self.labels else []

    def to_json(self) -> dict:
        sizes = self.sizes()
        return {"method": f"phash, {HASH_BITS} bits (imagehash hash_size={HASH_SIZE})",
                "threshold": self.threshold, "linked_pairs": self.linked_pairs, "images": len(self.labels),
                "groups": sum(s > 1 for s in sizes), "largest": max(sizes, default=0)}


def image_hash(path: str | os.PathLike) -> np.ndarray:
    """The 256-bit perceptual hash of an image file, as booleans; names the file if it cannot be read."""
    try:
        with Image.open(path) as image:
            image.draft(None, (4 * HASH_SIZE, 4 * HASH_SIZE))  # JPEG: decode at 1/2..1/8 scale
            upright = ImageOps.exif_transpose(image)
            return imagehash.phash(to_rgb(upright), hash_size=HASH_SIZE).hash.flatten()
    except (OSError, ValueError, SyntaxError) as e:
        raise CaptuneError(f"{path}: cannot read the image to find near-duplicates ({e}); "
                           "check the records with `captune data validate` first") from None


def popcount(words: np.ndarray) -> np.ndarray:
    """Set bits of each uint64 (``np.bitwise_count`` where numpy has it, else a SWAR count)."""
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(words)
    return swar_popcount(words)


def swar_popcount(x: np.ndarray) -> np.ndarray:
    """Set bits of each uint64 by the classic shift-and-mask sums (numpy < 2 has no bitwise_count)."""
    m1, m2, m4, h01 = (np.uint64(v) for v in (0x5555555555555555, 0x3333333333333333,
                                              0x0F0F0F0F0F0F0F0F, 0x0101010101010101))
    x = x - ((x >> np.uint64(1)) & m1)
    x = (x & m2) + ((x >> np.uint64(2)) & m2)
    x = (x + (x >> np.uint64(4))) & m4
    return (x * h01) >> np.uint64(56)


def close_pairs(bits: np.ndarray, threshold: int) -> np.ndarray:
    """Index pairs ``(i, j)``, i < j, of rows of ``bits`` (n, 256) differing in at most ``threshold`` bits."""
    words = np.ascontiguousarray(np.packbits(bits.astype(bool), axis=1)).view(np.uint64)  # (n, 4)
    found = []
    for start in range(0, len(words), BLOCK_ROWS):
        block, rest = words[start:start + BLOCK_ROWS], words[start:]
        distance = np.zeros((len(block), len(rest)), np.uint16)  # (rows, n - start)
        for w in range(words.shape[1]):
            distance += popcount(block[:, w, None] ^ rest[None, :, w])
        i, j = np.nonzero(np.triu(distance <= threshold, 1))
        found.append(np.stack([i + start, j + start], axis=1))
    return np.concatenate(found) if found else np.zeros((0, 2), int)


def near_duplicate_groups(paths: Sequence[str | os.PathLike], threshold: int = DEFAULT_THRESHOLD,
                          progress: bool | None = None) -> NearDuplicateGroups:
    """Group image files whose perceptual hashes differ in at most ``threshold`` of 256 bits."""
    if not 0 <= threshold <= HASH_BITS:
        raise CaptuneError(f"hash threshold {threshold}: must be between 0 and {HASH_BITS} bits "
                           f"(default {DEFAULT_THRESHOLD})")
    quiet = (len(paths) < 2000 or None) if progress is None else not progress  # None: a bar on a terminal
    hashes = [image_hash(p) for p in tqdm(paths, desc="perceptual hashes", unit="img", disable=quiet)]
    pairs = close_pairs(np.array(hashes).reshape(len(paths), HASH_BITS), threshold)
    return NearDuplicateGroups(components(len(paths), pairs), threshold, len(pairs))


def components(n: int, pairs: np.ndarray) -> list[int]:
    """Connected components of the pairs, labelled 0, 1, ... in order of first appearance."""
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in pairs.tolist():
        parent[find(i)] = find(j)
    labels: dict[int, int] = {}
    return [labels.setdefault(find(i), len(labels)) for i in range(n)]
