"""Perceptual-hash grouping: exact bit counts, and what it joins on real photos and their bursts."""

import io

import imagehash
import numpy as np
import pytest
import skimage.data
from PIL import Image, ImageEnhance

from captune.data.near_duplicates import (
    DEFAULT_THRESHOLD,
    close_pairs,
    components,
    image_hash,
    near_duplicate_groups,
    popcount,
    swar_popcount,
)
from captune.errors import CaptuneError

PHOTOS = ["astronaut", "camera", "chelsea", "coffee", "coins", "horse", "hubble_deep_field",
          "immunohistochemistry", "moon", "page", "text", "rocket", "retina", "brick", "grass", "gravel", "cell",
          "microaneurysms", "clock"]


def test_popcounts_agree_with_python():
    rng = np.random.default_rng(0)
    words = rng.integers(0, 2**63, size=500, dtype=np.uint64) * np.uint64(2) + np.uint64(1)  # all 64 bits in play
    expected = [int(w).bit_count() for w in words]
    assert swar_popcount(words).tolist() == expected == popcount(words).tolist()


def test_close_pairs_match_brute_force():
    rng = np.random.default_rng(1)
    bits = rng.random((600, 256)) < 0.5
    bits[300:320] = bits[:20] ^ (rng.random((20, 256)) < 0.1)  # 20 near copies, about 26 bits flipped
    distance = (bits[:, None, :] != bits[None, :, :]).sum(-1)
    for threshold in (0, 30, 110):
        expected = sorted(zip(*np.nonzero(np.triu(distance <= threshold, 1))))
        got = sorted(map(tuple, close_pairs(bits, threshold).tolist()))
        assert got == [(int(i), int(j)) for i, j in expected], threshold
    assert len(close_pairs(bits, 40)) == 20


def photo(name: str) -> Image.Image:
    return Image.fromarray(getattr(skimage.data, name)()).convert("RGB")


def reframed(image: Image.Image, fraction: float) -> Image.Image:
    """The camera moved: the frame shifts by ``fraction`` of its width and height."""
    w, h = image.size
    return image.crop((int(fraction * w), int(fraction * h), w, h))


BURST = {  # shot name -> (transform, file format)
    "original": (lambda im: im, "PNG"),
    "jpeg_q50": (lambda im: im, "JPEG"),
    "darker": (lambda im: ImageEnhance.Brightness(im).enhance(0.9), "PNG"),
    "brighter": (lambda im: ImageEnhance.Brightness(im).enhance(1.15), "PNG"),
    "half_size": (lambda im: im.resize((im.width // 2, im.height // 2)), "PNG"),
    "moved_1pct": (lambda im: reframed(im, 0.01), "JPEG"),
}


@pytest.fixture(scope="module")
def bursts(tmp_path_factory):
    """Each sample photo shot six ways: re-encoded, exposed differently, resized, re-framed."""
    root = tmp_path_factory.mktemp("bursts")
    paths = []
    for name in PHOTOS:
        image = photo(name)
        for shot, (transform, fmt) in BURST.items():
            path = root / f"{name}-{shot}.{fmt.lower()}"
            transform(image).save(path, fmt, **({"quality": 50} if fmt == "JPEG" else {"compress_level": 1}))
            paths.append(path)
    return paths


def test_bursts_of_real_photos_are_grouped_and_distinct_photos_are_not(bursts):
    groups = near_duplicate_groups(bursts)
    shots = len(BURST)
    by_photo = [set(groups.labels[k * shots:(k + 1) * shots]) for k in range(len(PHOTOS))]
    assert all(len(labels) == 1 for labels in by_photo), [p for p, g in zip(PHOTOS, by_photo) if len(g) > 1]
    assert len(set.union(*by_photo)) == len(PHOTOS)
    assert groups.to_json()["groups"] == len(PHOTOS) and groups.to_json()["largest"] == shots


def test_distinct_photos_are_far_beyond_the_threshold():
    hashes = np.array([image_hash_of(photo(name)) for name in PHOTOS])
    distance = (hashes[:, None, :] != hashes[None, :, :]).sum(-1)[np.triu_indices(len(PHOTOS), 1)]
    # measured minimum 106 bits (median 128): more than twice the threshold
    assert distance.min() > 2 * DEFAULT_THRESHOLD


def test_alike_face_crops_stay_apart():
    faces = skimage.data.lfw_subset()[:100]  # aligned 25 x 25 px faces: as alike as distinct photos get
    images = [Image.fromarray((f * 255).astype(np.uint8)).convert("RGB") for f in faces]
    hashes = np.array([image_hash_of(im) for im in images])
    assert len(close_pairs(hashes, DEFAULT_THRESHOLD)) == 0
    # measured minimum 78 bits over these 4,950 pairs: the default keeps a margin of 30
    assert len(close_pairs(hashes, DEFAULT_THRESHOLD + 24)) == 0


def image_hash_of(image: Image.Image) -> np.ndarray:
    buffer = io.BytesIO()
    image.save(buffer, "BMP")
    buffer.seek(0)
    return image_hash(buffer)


def test_unreadable_image_is_named(tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not an image")
    with pytest.raises(CaptuneError, match="broken.jpg: cannot read the image.*captune data validate"):
        near_duplicate_groups([bad])
    with pytest.raises(CaptuneError, match="between 0 and 256"):
        near_duplicate_groups([], threshold=300)


def test_large_jpegs_decoded_at_reduced_scale_hash_as_in_full(tmp_path):
    for name in ("astronaut", "coins", "retina"):
        image = photo(name).resize((2400, 1800))
        image.save(tmp_path / "big.jpg", quality=90)
        with Image.open(tmp_path / "big.jpg") as full:
            exact = imagehash.phash(full.convert("RGB"), hash_size=16).hash.flatten()
        assert (image_hash(tmp_path / "big.jpg") != exact).sum() <= 2, name  # measured: at most 2 bits


def test_the_short_hash_merges_the_shapes_world_where_the_long_one_does_not(tmp_path):
    """Why 256 bits: the world's images look alike, and 64-bit hashes chain them into one group."""
    from captune.demo.world import generate

    data = generate(tmp_path, n_images=1000, seed=1000, style="plain")  # the demo's world
    index = {r.image_id: k for k, r in enumerate(data.plain)}
    pairs = np.array([(k, index[r.meta["near_duplicate_of"]]) for k, r in enumerate(data.plain)
                      if "near_duplicate_of" in r.meta])
    images = [Image.open(data.out_dir / r.image).convert("RGB") for r in data.plain]

    def grouped(hash_size, threshold):
        bits = np.array([imagehash.phash(im, hash_size=hash_size).hash.flatten() for im in images])
        labels = np.array(components(len(images), close_pairs(bits, threshold)))
        return int((labels[pairs[:, 0]] == labels[pairs[:, 1]]).sum()), int(np.bincount(labels).max())

    assert len(pairs) == 58
    together, largest = grouped(8, 12)  # 64 bits: the planted pairs only at the cost of a giant group
    assert together >= 57 and largest > 100  # measured: 57 pairs, a group of 541
    together, largest = grouped(16, DEFAULT_THRESHOLD)
    assert together == 58 and largest <= 4  # measured: a largest group of 3
