"""Post images: the montage of a post, photos conformed to Instagram's shape, JPEGs under 8 MB.

    sheet = montage(images, max_tiles=9, tile_px=384)            # one contact sheet per post
    photo, notes = conform(image, aspect="pad", max_width=1440)  # notes say what was done
    info = save_jpeg(photo, "posts/e01-p01/01.jpg", quality=90)  # {bytes, quality, width, height}

The montage packs the first ``max_tiles`` images as square, centre-cropped tiles in a grid of
``cols = ceil(sqrt(n))`` columns and ``rows = ceil(n / cols)`` rows (``grid_shape``): 1 → 1x1,
2 → 2x1, 3-4 → 2x2, 5-6 → 3x2, 7-9 → 3x3, 10-12 → 4x3, 13-16 → 4x4. Three images take a 2x2
grid with one empty cell rather than a 3x1 strip: a captioning model sees the montage resized to
a square, and a 3:1 strip would be squeezed to a third of its width. Tiles sit on a white (or
dark) background with gutters of ``max(2, tile_px // 64)`` pixels around and between them.
"""

from __future__ import annotations

import io
import math
import os
from typing import Literal

from PIL import Image, ImageOps

from captune.agent.limits import MAX_ASPECT, MAX_IMAGE_BYTES, MAX_WIDTH, MIN_ASPECT, MIN_WIDTH
from captune.errors import CaptuneError
from captune.io import atomic_write

BACKGROUNDS = {"white": (255, 255, 255), "dark": (24, 24, 24)}
PAD_COLOUR = (255, 255, 255)
"""Letterbox colour for photos padded into the accepted aspect range."""


def grid_shape(n: int) -> tuple[int, int]:
    """``(cols, rows)`` of the near-square grid for ``n`` tiles (``n`` >= 1)."""
    cols = math.ceil(math.sqrt(n))
    return cols, math.ceil(n / cols)


def montage(images: list[Image.Image], max_tiles: int, tile_px: int,
            background: Literal["white", "dark"] = "white") -> Image.Image:
    """The first ``max_tiles`` images as square tiles of ``tile_px`` in a near-square grid."""
    if not images:
        raise CaptuneError("montage: no images to pack (a post needs at least one photo)")
    if max_tiles < 1 or tile_px < 1:
        raise CaptuneError(f"montage: max_tiles ({max_tiles}) and tile_px ({tile_px}) must be at least 1")
    tiles = images[:max_tiles]
    cols, rows = grid_shape(len(tiles))
    gutter = max(2, tile_px // 64)
    sheet = Image.new("RGB", (cols * tile_px + (cols + 1) * gutter, rows * tile_px + (rows + 1) * gutter),
                      BACKGROUNDS[background])
    for i, image in enumerate(tiles):
        tile = ImageOps.fit(image.convert("RGB"), (tile_px, tile_px), Image.Resampling.LANCZOS)
        row, col = divmod(i, cols)
        sheet.paste(tile, (gutter + col * (tile_px + gutter), gutter + row * (tile_px + gutter)))
    return sheet


def conform(image: Image.Image, aspect: Literal["pad", "crop"], max_width: int = MAX_WIDTH,
            fill: tuple[int, int, int] = PAD_COLOUR) -> tuple[Image.Image, list[str]]:
    """An RGB copy within 4:5 to 1.91:1 and ``MIN_WIDTH``..``max_width`` wide, and notes of what was done.

    A photo outside the aspect range is padded (letterboxed with ``fill``) or centre-cropped to the
    nearest accepted ratio; then it is downscaled to ``max_width`` or upscaled to 320 px wide.
    """
    if not MIN_WIDTH <= max_width <= MAX_WIDTH:
        raise CaptuneError(f"conform: max_width {max_width} is outside Instagram's {MIN_WIDTH}-{MAX_WIDTH} px")
    if aspect not in ("pad", "crop"):
        raise CaptuneError(f"conform: aspect {aspect!r}: expected pad or crop")
    image, notes = _fit_aspect(image.convert("RGB"), aspect, fill)
    w, h = image.size
    width = min(max(w, MIN_WIDTH), max_width)
    if width != w:
        # the rounded height is kept inside the range, so rounding never undoes the aspect fix
        height = min(max(round(h * width / w), math.ceil(width / MAX_ASPECT)), math.floor(width / MIN_ASPECT))
        notes.append(f"{'downscaled' if width < w else 'upscaled'} from {w}x{h} to {width}x{height}")
        image = image.resize((width, height), Image.Resampling.LANCZOS)
    return image, notes


def _fit_aspect(image: Image.Image, aspect: str, fill: tuple[int, int, int]) -> tuple[Image.Image, list[str]]:
    w, h = image.size
    ratio = w / h
    if MIN_ASPECT <= ratio <= MAX_ASPECT:
        return image, []
    target = MIN_ASPECT if ratio < MIN_ASPECT else MAX_ASPECT
    if aspect == "pad":
        size = (math.ceil(h * target), h) if ratio < target else (w, math.ceil(w / target))
        canvas = Image.new("RGB", size, fill)
        canvas.paste(image, ((size[0] - w) // 2, (size[1] - h) // 2))
        out = canvas
    else:
        size = (w, math.floor(w / target)) if ratio < target else (math.floor(h * target), h)
        out = ImageOps.fit(image, size, Image.Resampling.LANCZOS) if size != (w, h) else image
    verb = "padded" if aspect == "pad" else "cropped"
    return out, [f"{verb} from {w}x{h} ({ratio:.2f}:1) to {out.width}x{out.height} ({out.width / out.height:.2f}:1)"]


def save_jpeg(image: Image.Image, path: str | os.PathLike, quality: int, max_bytes: int = MAX_IMAGE_BYTES) -> dict:
    """Write ``image`` as a JPEG of at most ``max_bytes`` (atomically); ``{bytes, quality, width, height}``.

    The requested quality is kept when the file fits; otherwise the highest quality that fits is
    found by bisection (JPEG size grows with quality). An image that exceeds ``max_bytes`` even at
    quality 1 is an error naming the file.
    """
    image = image.convert("RGB")
    data = _encode(image, quality)
    if len(data) > max_bytes:
        quality, data = _best_quality_under(image, quality, max_bytes, path)
    with atomic_write(path, "wb") as f:
        f.write(data)
    return {"bytes": len(data), "quality": quality, "width": image.width, "height": image.height}


def _best_quality_under(image: Image.Image, above: int, max_bytes: int, path) -> tuple[int, bytes]:
    lo, hi, best = 1, above - 1, None
    while lo <= hi:
        mid = (lo + hi) // 2
        data = _encode(image, mid)
        if len(data) <= max_bytes:
            best, lo = (mid, data), mid + 1
        else:
            hi = mid - 1
    if best is None:
        raise CaptuneError(f"{path}: a {image.width}x{image.height} JPEG exceeds {max_bytes:,} bytes even at "
                           "quality 1; export it smaller (captioner.max_width)")
    return best


def _encode(image: Image.Image, quality: int) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=quality, optimize=True)
    return buf.getvalue()
