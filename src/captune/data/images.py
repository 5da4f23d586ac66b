"""Open an image safely for captioning: verified, fully decoded, upright and in RGB.

    from captune.data.images import load_image, ImageError
    try:
        image = load_image("photos/IMG_0012.jpg")
    except ImageError as e:
        print(e.reason, e)          # e.g. "truncated_image", "photos/IMG_0012.jpg: image file is truncated"

``load_image`` refuses what would hurt a training run later: missing, empty, truncated and
non-image files, and images whose header announces more than ``max_pixels`` pixels
(decompression bombs; the header is checked before anything is decoded). It applies the EXIF
orientation and converts every mode to RGB the way a viewer shows it: transparency is laid on
white, CMYK goes through its ICC profile when there is one, and 16-bit and float grey images are
scaled to 8 bits instead of being clipped.

PIL has its own decompression-bomb guard (``PIL.Image.MAX_IMAGE_PIXELS``; it refuses twice that
many pixels). ``max_pixels`` above that guard needs the guard raised too.
"""

from __future__ import annotations

import io
import os
import struct
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from captune.errors import CaptuneError

DEFAULT_MAX_PIXELS = 89_478_485
"""PIL's own warning threshold (about 9,459 x 9,459): larger than any photo a camera takes."""

_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError, TypeError)


class ImageError(CaptuneError):
    """An image that cannot be used; ``reason`` is a short code, ``str(error)`` says why."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message


def load_image(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Open, verify and fully decode ``path``; return an upright RGB image or raise ``ImageError``."""
    data = _read_bytes(Path(path))
    _open_checked(data, path, max_pixels, verify=True)
    image = _open_checked(data, path, max_pixels, verify=False)
    try:
        image.load()
    except _DECODE_ERRORS as e:
        raise _decode_error(path, e) from None
    image = _upright(image)
    return to_rgb(image)


def _read_bytes(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ImageError("missing_image", f"{path}: image file not found") from None
    except IsADirectoryError:
        raise ImageError("not_an_image", f"{path}: is a folder, not an image") from None
    except OSError as e:
        raise ImageError("unreadable_file", f"{path}: cannot read ({e.strerror or e})") from None
    if not data:
        raise ImageError("empty_file", f"{path}: file is empty (0 bytes)")
    return data


def _open_checked(data: bytes, path, max_pixels: int, verify: bool) -> Image.Image:
    """Parse the header (no pixel decoding) and check the size; with ``verify``, check the file."""
    try:
        image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as e:
        raise ImageError("too_many_pixels", f"{path}: {e}") from None
    except UnidentifiedImageError:
        raise ImageError("not_an_image", f"{path}: not an image file PIL can read") from None
    except _DECODE_ERRORS as e:
        raise _decode_error(path, e) from None
    width, height = image.size
    if width * height > max_pixels:
        raise ImageError(
            "too_many_pixels", f"{path}: {width} x {height} = {width * height:,} pixels, over the limit of {max_pixels:,}"
        )
    if verify:
        try:
            image.verify()
        except _DECODE_ERRORS as e:
            raise _decode_error(path, e) from None
    return image


def _decode_error(path, err: Exception) -> ImageError:
    text = str(err) or type(err).__name__
    if "truncated" in text.lower():
        return ImageError("truncated_image", f"{path}: {text}")
    if isinstance(err, EOFError) or "premature end" in text.lower():
        return ImageError("truncated_image", f"{path}: image file is truncated ({text})")
    return ImageError("corrupt_image", f"{path}: image data is damaged ({text})")


def _upright(image: Image.Image) -> Image.Image:
    """Apply the EXIF orientation; a damaged EXIF block leaves the image as stored."""
    try:
        ImageOps.exif_transpose(image, in_place=True)
    except _DECODE_ERRORS:
        pass
    return image


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any PIL mode to RGB as a viewer would show it."""
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        return Image.fromarray(_to_8bit(np.asarray(image), mode), "L").convert("RGB")
    if mode == "CMYK":
        return _cmyk_to_rgb(image)
    if mode == "P" and "transparency" in image.info or mode in ("PA", "LA", "La", "RGBA", "RGBa"):
        return _on_white(image.convert("RGBA"))
    try:
        return image.convert("RGB")
    except ValueError as e:
        raise ImageError("unsupported_mode", f"image mode {mode!r} cannot be converted to RGB ({e})") from None


def _to_8bit(a: np.ndarray, mode: str) -> np.ndarray:
    """Scale a 16-bit, 32-bit or float grey image to 0..255 (PIL's convert would clip it)."""
    a = a.astype(np.float64)
    lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
    if mode.startswith("I;16"):
        scale_lo, scale_hi = 0.0, 65535.0
    elif mode == "F" and lo >= 0 and hi <= 1:
        scale_lo, scale_hi = 0.0, 1.0
    elif lo >= 0 and hi <= 255:
        scale_lo, scale_hi = 0.0, 255.0
    elif lo >= 0 and hi <= 65535:
        scale_lo, scale_hi = 0.0, 65535.0
    else:
        scale_lo, scale_hi = lo, max(hi, lo + 1)
    return np.clip(np.rint((a - scale_lo) * 255.0 / (scale_hi - scale_lo)), 0, 255).astype(np.uint8)


def _cmyk_to_rgb(image: Image.Image) -> Image.Image:
    """CMYK through the embedded ICC profile to sRGB when there is one, else PIL's formula."""
    icc = image.info.get("icc_profile")
    if icc:
        try:
            src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            return ImageCms.profileToProfile(image, src, ImageCms.createProfile("sRGB"), outputMode="RGB")
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass
    return image.convert("RGB")


def _on_white(rgba: Image.Image) -> Image.Image:
    background = Image.new("RGB", rgba.size, (255, 255, 255))
    background.paste(rgba, mask=rgba.getchannel("A"))
    return background
