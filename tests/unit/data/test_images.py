import pytest
from PIL import Image

from captune.data.images import DEFAULT_MAX_PIXELS, ImageError, load_image


def reason(path, **kw) -> str:
    with pytest.raises(ImageError) as info:
        load_image(path, **kw)
    return info.value.reason


def test_good_image_is_rgb_and_fully_loaded(images):
    im = load_image(images.rgb("a.png", size=(8, 6), color=(10, 120, 200)))
    assert (im.mode, im.size, im.getpixel((3, 3))) == ("RGB", (8, 6), (10, 120, 200))


@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda f: f.path("nothing.jpg"), "missing_image"),
        (lambda f: f.raw("empty.jpg", b""), "empty_file"),
        (lambda f: f.raw("notes.jpg", b"these are my holiday notes, not a photo\n"), "not_an_image"),
        (lambda f: f.truncated("cut.png", "PNG"), "truncated_image"),
        (lambda f: f.truncated("cut.jpg", "JPEG"), "truncated_image"),
        (lambda f: f.truncated("tiny-cut.jpg", "JPEG", keep=0.02), "truncated_image"),
        (lambda f: f.path("folder.jpg").mkdir() or f.path("folder.jpg"), "not_an_image"),
    ],
)
def test_broken_files_have_reasons(images, make, expected):
    assert reason(make(images)) == expected


def test_error_message_names_the_file(images):
    with pytest.raises(ImageError, match=r"empty\.jpg: file is empty"):
        load_image(images.raw("empty.jpg", b""))


def test_decompression_bomb_header_is_refused_before_decoding(images):
    # 100000 x 100000 would need 30 GB; PIL's own guard fires while parsing the header.
    assert reason(images.bomb("bomb.png", 100_000, 100_000)) == "too_many_pixels"


def test_header_over_our_limit_but_under_pils_is_refused(images):
    # 10000 x 10000 = 1e8: above DEFAULT_MAX_PIXELS, below PIL's error threshold (it only warns).
    path = images.bomb("big.png", 10_000, 10_000)
    with pytest.warns(Image.DecompressionBombWarning):
        assert reason(path) == "too_many_pixels"
    assert 10_000 * 10_000 > DEFAULT_MAX_PIXELS


def test_pixel_limit_is_configurable(images):
    path = images.rgb("a.png", size=(40, 30))
    assert reason(path, max_pixels=1000) == "too_many_pixels"
    assert load_image(path, max_pixels=1200).size == (40, 30)


def test_exif_orientation_is_applied(images):
    im = load_image(images.exif_rotated_jpeg("rot.jpg"))
    assert im.size == (20, 40)
    top, bottom = im.getpixel((10, 5)), im.getpixel((10, 35))
    assert top[0] > 200 and top[2] < 60, top  # the red half is now on top
    assert bottom[2] > 200 and bottom[0] < 60, bottom


def test_cmyk_jpeg_becomes_rgb(images):
    im = load_image(images.cmyk_jpeg("cmyk.jpg"))
    r, g, b = im.getpixel((4, 4))
    assert im.mode == "RGB" and r > 200 and g < 60 and b < 60


def test_palette_with_transparency_is_laid_on_white(images):
    im = load_image(images.palette_png_with_transparency("p.png"))
    assert im.mode == "RGB"
    assert im.getpixel((1, 1)) == (255, 255, 255)  # transparent black -> white, not black
    assert im.getpixel((6, 1)) == (0, 200, 0)


def test_la_is_laid_on_white(images):
    im = load_image(images.la_png("la.png"))
    assert (im.getpixel((1, 1)), im.getpixel((6, 1))) == ((255, 255, 255), (100, 100, 100))


def test_16_bit_grey_is_scaled_not_clipped(images):
    im = load_image(images.png16("deep.png"))
    assert [im.getpixel((x, 0)) for x in range(3)] == [(0, 0, 0), (128, 128, 128), (255, 255, 255)]


@pytest.mark.parametrize("mode, value, expected", [("I", 40_000, 156), ("F", 0.5, 128), ("I", 200, 200)])
def test_32_bit_and_float_grey_are_scaled(images, mode, value, expected):
    path = images.path(f"{mode}.tif")
    Image.new(mode, (4, 4), value).save(path)
    assert load_image(path).getpixel((0, 0)) == (expected,) * 3
