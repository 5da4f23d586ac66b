"""Montage grids, Instagram's aspect and width rules, and JPEGs kept under a byte limit."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from captune.agent.limits import MAX_ASPECT, MIN_ASPECT
from captune.agent.montage import BACKGROUNDS, conform, grid_shape, montage, save_jpeg
from captune.errors import CaptuneError

GRIDS = {1: (1, 1), 2: (2, 1), 3: (2, 2), 4: (2, 2), 5: (3, 2), 6: (3, 2), 7: (3, 3), 8: (3, 3), 9: (3, 3),
         10: (4, 3), 11: (4, 3), 12: (4, 3)}


def solid(colour, size=(40, 40)) -> Image.Image:
    return Image.new("RGB", size, colour)


@pytest.mark.parametrize("n", range(1, 13))
def test_montage_size_for_1_to_12_images(n):
    cols, rows = GRIDS[n]
    sheet = montage([solid((10 * i, 0, 0)) for i in range(n)], max_tiles=12, tile_px=32)
    gutter = 2  # max(2, 32 // 64)
    assert grid_shape(n) == (cols, rows)
    assert sheet.size == (cols * 32 + (cols + 1) * gutter, rows * 32 + (rows + 1) * gutter)


def test_montage_packs_at_most_max_tiles_in_order_and_leaves_empty_cells_blank():
    colours = [(200, 0, 0), (0, 200, 0), (0, 0, 200), (200, 200, 0), (0, 200, 200)]
    sheet = montage([solid(c) for c in colours], max_tiles=3, tile_px=64)
    assert sheet.size == (2 * 64 + 3 * 2, 2 * 64 + 3 * 2)  # 3 tiles: 2x2 with one empty cell
    centres = [(2 + 32, 2 + 32), (2 + 64 + 2 + 32, 2 + 32), (2 + 32, 2 + 64 + 2 + 32), (2 + 64 + 2 + 32,) * 2]
    assert [sheet.getpixel(c) for c in centres] == [colours[0], colours[1], colours[2], BACKGROUNDS["white"]]
    dark = montage([solid(c) for c in colours], max_tiles=3, tile_px=64, background="dark")
    assert dark.getpixel(centres[3]) == BACKGROUNDS["dark"]


def test_montage_tiles_are_centre_crops_and_deterministic():
    wide = Image.new("RGB", (300, 100), (0, 0, 255))
    wide.paste((255, 0, 0), (100, 0, 200, 100))  # red middle third, blue sides
    sheet = montage([wide], max_tiles=9, tile_px=50)
    tile = np.asarray(sheet)[2:52, 2:52].astype(int)
    assert (tile[..., 0] > 200).mean() > 0.95 and (tile[..., 2] < 50).mean() > 0.95  # all red: the centre
    again = montage([wide], max_tiles=9, tile_px=50)
    assert sheet.tobytes() == again.tobytes()


def test_montage_without_images_is_an_error():
    with pytest.raises(CaptuneError, match="no images"):
        montage([], max_tiles=9, tile_px=32)


@pytest.mark.parametrize("aspect", ["pad", "crop"])
@pytest.mark.parametrize("size", [(3000, 1000), (1000, 3000)])
def test_conform_panorama_and_tall_portrait(aspect, size):
    image = solid((0, 128, 0), size)
    out, notes = conform(image, aspect, max_width=1440)
    assert MIN_ASPECT <= out.width / out.height <= MAX_ASPECT
    assert 320 <= out.width <= 1440
    verb = "padded" if aspect == "pad" else "cropped"
    assert any(n.startswith(verb) for n in notes), notes


def test_conform_pad_keeps_the_whole_photo_and_crop_keeps_the_centre():
    panorama = solid((0, 0, 255), (900, 300))
    panorama.paste((255, 0, 0), (0, 0, 30, 300))  # a red strip at the left edge
    padded, _ = conform(panorama, "pad", 1440)
    assert padded.size == (900, 472)  # ceil(900 / 1.91)
    assert padded.getpixel((5, 236))[0] > 200  # the red edge is still there
    assert padded.getpixel((450, 2)) == (255, 255, 255)  # letterbox
    cropped, _ = conform(panorama, "crop", 1440)
    assert cropped.size == (573, 300)  # floor(300 * 1.91)
    assert cropped.getpixel((5, 150))[0] < 50  # the edge was cut off


@pytest.mark.parametrize("size", [(1441, 755), (5000, 100), (100, 5000), (321, 1000), (2000, 1047), (333, 417)])
@pytest.mark.parametrize("aspect", ["pad", "crop"])
def test_conform_rounding_never_leaves_the_range(size, aspect):
    out, _ = conform(solid((9, 9, 9), size), aspect, max_width=1080)
    assert MIN_ASPECT <= out.width / out.height <= MAX_ASPECT
    assert 320 <= out.width <= 1080


def test_conform_scales_and_says_so_and_leaves_good_photos_alone():
    small, notes = conform(solid((1, 2, 3), (200, 150)), "pad", 1440)
    assert small.size == (320, 240) and notes == ["upscaled from 200x150 to 320x240"]
    big, notes = conform(solid((1, 2, 3), (4000, 3000)), "pad", 1080)
    assert big.size == (1080, 810) and notes == ["downscaled from 4000x3000 to 1080x810"]
    fine, notes = conform(solid((1, 2, 3), (1080, 1350)), "crop", 1440)
    assert fine.size == (1080, 1350) and notes == []


def test_conform_refuses_a_width_instagram_does_not_take():
    with pytest.raises(CaptuneError, match="max_width 2000"):
        conform(solid((0, 0, 0)), "pad", 2000)


def noisy(size=400, seed=0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8))


def test_save_jpeg_lowers_quality_to_stay_under_max_bytes(tmp_path):
    path = tmp_path / "noisy.jpg"
    full = save_jpeg(noisy(), tmp_path / "full.jpg", quality=90, max_bytes=10**9)
    assert full["bytes"] > 50_000 and full["quality"] == 90  # the limit below does bite
    info = save_jpeg(noisy(), path, quality=90, max_bytes=50_000)
    assert info["bytes"] <= 50_000 and info["quality"] < 90
    assert path.stat().st_size == info["bytes"]
    with Image.open(path) as im:
        assert im.format == "JPEG" and im.size == (info["width"], info["height"]) == (400, 400)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary file left


def test_save_jpeg_keeps_the_quality_when_it_fits_and_refuses_the_impossible(tmp_path):
    info = save_jpeg(solid((50, 60, 70), (300, 300)), tmp_path / "flat.jpg", quality=85)
    assert info["quality"] == 85
    with pytest.raises(CaptuneError, match="quality 1"):
        save_jpeg(noisy(), tmp_path / "tiny.jpg", quality=90, max_bytes=100)
    assert not (tmp_path / "tiny.jpg").exists()
