"""Opening images safely: EXIF orientation applied, any mode converted to RGB."""

from __future__ import annotations

import os

from PIL import Image, ImageOps

DEFAULT_MAX_PIXELS = 89_478_485


def load_image(path: str | os.PathLike, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Image.Image:
    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im)
        return im.convert("RGB")
