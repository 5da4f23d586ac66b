"""Quality flags and duplicates on real photographs (the hash path) and on given CLIP vectors (bursts)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from PIL import Image, ImageFilter
from real_photos import dump, sample

from captune.agent.config import DedupeSection, QualitySection
from captune.agent.dedupe import dedupe
from captune.agent.ingest import ingest
from captune.agent.quality import exposure_stats, flag_quality, sharpness
from captune.agent.records import Photo


def test_sharpness_does_not_depend_on_resolution_and_drops_with_blur():
    for name in ("astronaut", "coffee", "rocket", "camera"):
        grey = sample(name).convert("L")
        s = sharpness(grey)
        assert sharpness(grey.resize((grey.width * 2, grey.height * 2))) == pytest.approx(s, rel=0.1)
        assert sharpness(grey.filter(ImageFilter.GaussianBlur(3))) < 0.1 * s


def test_exposure_counts_clipped_pixels():
    grey = sample("camera").convert("L")
    _, dark, bright = exposure_stats(grey)
    assert dark < 0.2 and bright < 0.2
    black = Image.fromarray((np.asarray(grey) * 0.02).astype(np.uint8))
    white = Image.fromarray(np.clip(np.asarray(grey, np.int32) + 220, 0, 255).astype(np.uint8))
    assert exposure_stats(black)[1] > 0.9
    assert exposure_stats(white)[2] == pytest.approx((np.asarray(grey) >= 247 - 220).mean(), abs=1e-4)
    assert exposure_stats(white)[2] > 0.8


@pytest.fixture(scope="module")
def real_dump(tmp_path_factory) -> tuple[list[Photo], dict]:
    root = tmp_path_factory.mktemp("dump")
    truth = dump(root)
    return ingest(root), truth


def test_real_photos_quality_and_hash_duplicates(real_dump):
    photos, truth = real_dump
    flagged = flag_quality(photos, QualitySection())
    low = {p.id: p.reason for p in flagged if p.status == "low_quality"}
    assert set(low) == {"morning/rocket_blurred.jpg", "evening/camera_dark.jpg"}
    assert low["morning/rocket_blurred.jpg"] == "blurred"
    assert "underexposed" in low["evening/camera_dark.jpg"]  # nearly black: its edges are faint too
    out = {p.id: p for p in dedupe(flagged, DedupeSection(method="hash"))}
    found = {frozenset((p.id, p.duplicate_of)) for p in out.values() if p.status == "duplicate"}
    assert found == {frozenset(g) for g in truth["duplicates"]}
    assert out["copies/coffee copy.jpg"].duplicate_reason == "exact" or out["morning/coffee.jpg"].duplicate_reason == "exact"
    crop = out["morning/chelsea_crop.jpg"] if out["morning/chelsea_crop.jpg"].status == "duplicate" \
        else out["morning/chelsea.jpg"]
    assert crop.duplicate_reason == "hash" and 0 < crop.duplicate_distance <= 48
    assert {p.status for p in out.values()} == {"ok", "duplicate", "low_quality", "rejected"}


def test_the_sharper_photo_of_a_group_is_kept(real_dump):
    photos, _ = real_dump
    by_id = {p.id: p for p in photos}
    a, b = by_id["morning/astronaut.jpg"], by_id["morning/astronaut_q40.jpg"]
    out = {p.id: p for p in dedupe([replace(a, sharpness=10.0), replace(b, sharpness=20.0)],
                                   DedupeSection(method="hash"))}
    assert out[a.id].duplicate_of == b.id and out[b.id].status == "ok"
    out = {p.id: p for p in dedupe([replace(a, sharpness=30.0), replace(b, sharpness=20.0, status="low_quality")],
                                   DedupeSection(method="hash"))}
    assert out[b.id].duplicate_of == a.id


def _photo(i: int, t: float | None) -> Photo:
    return Photo(id=f"p{i}.jpg", path=f"/x/p{i}.jpg", sha256=f"{i:064x}", phash=f"{i:064x}",
                 timestamp=t, sharpness=100.0 + i)


def test_clip_links_only_shots_of_one_burst():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(4, 64))
    near = base[0] + 0.1 * rng.normal(size=64)  # the same pose, shot again
    vectors = np.stack([base[0], near, near, base[1], base[2], base[3]])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    times = [0.0, 1.5, 3600.0, 0.5, 100.0, None]  # p2: the same pose an hour later; p3: another person 0.5 s after
    photos = [_photo(i, t) for i, t in enumerate(times)]
    embeddings = {p.sha256: v for p, v in zip(photos, vectors, strict=True)}
    out = dedupe(photos, DedupeSection(method="clip", clip_threshold=0.8, burst_seconds=10), embeddings)
    dup = {p.id: (p.duplicate_of, p.duplicate_reason) for p in out if p.status == "duplicate"}
    assert dup == {"p0.jpg": ("p1.jpg", "clip")}  # p1 is sharper; p2 (an hour later) and p3 (different) stay
    assert 0 < next(p for p in out if p.id == "p0.jpg").duplicate_distance < 0.2


def test_every_photo_comes_back_and_rejected_ones_are_untouched():
    photos = [_photo(0, 0.0), replace(_photo(1, 0.0), sha256=_photo(0, 0.0).sha256),
              replace(_photo(2, 0.0), status="rejected", reason="truncated")]
    out = dedupe(photos, DedupeSection(method="hash", hash_threshold=0))
    assert [p.id for p in out] == ["p0.jpg", "p1.jpg", "p2.jpg"]
    assert out[0].duplicate_reason == "exact" and out[2] == photos[2]


def test_blur_effect_matches_scikit_image():
    from skimage.measure import blur_effect as reference

    from captune.agent.quality import blur_effect

    for name in ("astronaut", "moon", "clock", "coins"):
        grey = sample(name).convert("L")
        scale = 256 / max(grey.size)
        small = grey.resize((round(grey.width * scale), round(grey.height * scale)), Image.Resampling.BILINEAR)
        assert blur_effect(grey) == pytest.approx(reference(np.asarray(small)), abs=1e-3), name


def test_smooth_but_sharp_photo_is_not_blurred_but_a_motion_blurred_one_is():
    photos = [Photo(id=n, path=n, sharpness=s, blur=b, timestamp=0.0) for n, s, b in
              [("coins", 958.0, 0.40), ("astronaut", 819.0, 0.38), ("coffee", 762.0, 0.40),
               ("moon", 50.0, 0.34), ("clock", 13.3, 0.69)]]
    flagged = {p.id for p in flag_quality(photos, QualitySection()) if p.status == "low_quality"}
    assert flagged == {"clock"}


def test_a_downscaled_copy_is_never_kept_over_its_original(tmp_path):
    """Sharpness is measured on a fixed-size copy, so a half-size copy scores sharper than its original
    (astronaut: 1400 against 816); the copy with the most pixels is kept."""
    from real_photos import save

    image = sample("astronaut")
    save(image, tmp_path / "original.jpg")
    save(image.resize((image.width // 2, image.height // 2)), tmp_path / "half.jpg")
    photos = {p.id: p for p in ingest(tmp_path)}
    assert photos["half.jpg"].sharpness > photos["original.jpg"].sharpness  # why pixels must come first
    out = {p.id: p for p in dedupe(list(photos.values()), DedupeSection(method="hash"))}
    assert out["original.jpg"].status == "ok"
    assert out["half.jpg"].duplicate_of == "original.jpg"
