"""Perceptual-hash grouping: exact bit counts, and what it joins on real photos and their bursts."""

import io

import numpy as np
import pytest
import skimage.data
from PIL import Image, ImageEnhance

from captune.data.near_duplicates import (
    DEFAULT_THRESHOLD,
    close_pairs,
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
    expected = [bin(int(w)).count("1") for w in words]
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
