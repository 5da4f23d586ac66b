"""Ingest: every file under the photo folder becomes a ``Photo``, readable or not.

    photos = ingest("event_dump/", quality_size=256)

A file is read once: its sha256, its header (format, size, EXIF), a full decode at reduced
scale (JPEG draft mode: a 24-megapixel photo decodes at 1/4 or 1/8 scale, which also proves the
stream is complete), and from that decode the measurements the next stages need: the 256-bit
perceptual hash and the sharpness and exposure figures of ``captune.agent.quality``. Photos are
read in a few threads (PIL releases the GIL while it decodes).

Accepted: JPEG, PNG, WebP, and HEIC/HEIF when ``pillow-heif`` is installed. Everything else is
kept as ``rejected`` with the reason: ``empty file``, ``not an image``, ``truncated``,
``damaged``, ``decompression bomb``, ``unsupported format``, ``unreadable``.

Shooting time: EXIF DateTimeOriginal with SubSecTimeOriginal (``time_source: exif``); else
EXIF DateTime (the time the camera wrote the file; also ``exif``); else the file's modification
time (``time_source: file``, which copying or syncing may have changed: the record says so), read
on this machine's local clock, since EXIF times are the camera's wall clock with no time zone (read
as UTC instead, a photo without EXIF at UTC+5:30 landed 5.5 h before the photos shot beside it).
"""

from __future__ import annotations

import calendar
import hashlib
import io
import os
import struct
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import imagehash
from PIL import Image, ImageOps, UnidentifiedImageError

from captune.agent.quality import blur_effect, exposure_stats, sharpness
from captune.agent.records import Photo
from captune.data.images import DEFAULT_MAX_PIXELS, to_rgb
from captune.data.near_duplicates import HASH_SIZE

FORMATS = {"JPEG", "MPO", "PNG", "WEBP", "HEIF"}
"""PIL format names accepted (MPO is the JPEG variant multi-lens cameras write)."""
DECODE_SIDE = 512
"""Photos are decoded at about this size: enough for hashes, sharpness and CLIP (224 px)."""
EXIF_IFD, DATETIME_ORIGINAL, SUBSEC_ORIGINAL, DATETIME = 0x8769, 0x9003, 0x9291, 0x0132
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError, TypeError)


class Rejected(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def heif_available() -> bool:
    """Register pillow-heif's opener when it is installed (HEIC/HEIF photos); False otherwise."""
    try:
        from pillow_heif import register_heif_opener
    except ImportError:
        return False
    register_heif_opener()
    return True


def list_files(root: str | os.PathLike) -> list[Path]:
    """Every regular file under ``root``, recursively, in a stable order (symlinked files included)."""
    root = Path(root)
    return sorted((p for p in root.rglob("*") if p.is_file()), key=lambda p: p.relative_to(root).as_posix())


def ingest(root: str | os.PathLike, quality_size: int = 256, workers: int = 4,
           max_pixels: int = DEFAULT_MAX_PIXELS) -> list[Photo]:
    """One ``Photo`` per file under ``root``: ``ok`` with its measurements, or ``rejected`` with the reason."""
    root = Path(root).resolve()
    heif = heif_available()
    files = list_files(root)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return list(pool.map(lambda p: read_photo(p, root, quality_size, heif, max_pixels), files))


def read_photo(path: Path, root: Path, quality_size: int = 256, heif: bool = False,
               max_pixels: int = DEFAULT_MAX_PIXELS) -> Photo:
    """Read one file into a ``Photo``; never raises for a bad file."""
    photo = Photo(id=path.relative_to(root).as_posix(), path=str(path))
    try:
        data = path.read_bytes()
    except OSError as e:
        return replace(photo, status="rejected", reason=f"unreadable ({e.strerror or e})")
    photo = replace(photo, sha256=hashlib.sha256(data).hexdigest())
    try:
        return _measure(photo, data, path, quality_size, heif, max_pixels)
    except Rejected as r:
        return replace(photo, status="rejected", reason=r.reason)


def _measure(photo: Photo, data: bytes, path: Path, quality_size: int, heif: bool, max_pixels: int) -> Photo:
    if not data:
        raise Rejected("empty file")
    image = _open(data, path, heif, max_pixels)
    taken_at, source = shooting_time(image, path)
    try:
        image.draft("RGB", (DECODE_SIDE, DECODE_SIDE))
        image.load()
        image = to_rgb(ImageOps.exif_transpose(image))
    except Image.DecompressionBombError:
        raise Rejected("decompression bomb") from None
    except _DECODE_ERRORS as e:
        raise Rejected(_decode_reason(e)) from None
    width, height = _upright_size(photo, data)
    image.thumbnail((DECODE_SIDE, DECODE_SIDE))
    grey = image.convert("L")
    brightness, shadows, highlights = exposure_stats(grey)
    return replace(
        photo, width=width, height=height,
        taken_at=taken_at.isoformat(timespec="milliseconds") if taken_at.microsecond else taken_at.isoformat(),
        timestamp=calendar.timegm(taken_at.timetuple()) + taken_at.microsecond / 1e6, time_source=source,
        phash=str(imagehash.phash(image, hash_size=HASH_SIZE)), sharpness=sharpness(grey, quality_size),
        blur=blur_effect(grey, quality_size),
        brightness=brightness, shadows=shadows, highlights=highlights)


def _open(data: bytes, path: Path, heif: bool, max_pixels: int) -> Image.Image:
    """Parse and verify the header; refuse what is not an accepted photo."""
    try:
        image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError:
        raise Rejected("decompression bomb") from None
    except UnidentifiedImageError:
        if path.suffix.lower() in (".heic", ".heif") and not heif:
            raise Rejected("unsupported format HEIC (pip install pillow-heif to read it)") from None
        raise Rejected("not an image") from None
    except _DECODE_ERRORS as e:
        raise Rejected(_decode_reason(e)) from None
    if image.format not in FORMATS:
        raise Rejected(f"unsupported format {image.format} (accepted: JPEG, PNG, WebP, HEIC)")
    width, height = image.size
    if width * height > max_pixels:
        raise Rejected(f"decompression bomb ({width} x {height} pixels, over {max_pixels:,})")
    try:
        image.verify()
        return Image.open(io.BytesIO(data))
    except _DECODE_ERRORS as e:
        raise Rejected(_decode_reason(e)) from None


def _decode_reason(err: Exception) -> str:
    text = str(err) or type(err).__name__
    if isinstance(err, EOFError) or "truncated" in text.lower() or "premature end" in text.lower():
        return "truncated"
    return f"damaged ({text})"


def _upright_size(photo: Photo, data: bytes) -> tuple[int, int]:
    """Full-resolution size with the EXIF orientation applied (the decode above may be reduced)."""
    with Image.open(io.BytesIO(data)) as header:
        width, height = header.size
        try:
            orientation = header.getexif().get(0x0112, 1)
        except _DECODE_ERRORS:
            orientation = 1
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def shooting_time(image: Image.Image, path: Path) -> tuple[datetime, str]:
    """``(time, "exif")`` from DateTimeOriginal (+ SubSecTimeOriginal) or DateTime, else the file's mtime
    on the local clock."""
    try:
        exif = image.getexif()
        sub = exif.get_ifd(EXIF_IFD)
        for value, subsec in ((sub.get(DATETIME_ORIGINAL), sub.get(SUBSEC_ORIGINAL)), (exif.get(DATETIME), None)):
            parsed = parse_exif_time(value, subsec)
            if parsed is not None:
                return parsed, "exif"
    except _DECODE_ERRORS:
        pass
    return datetime.fromtimestamp(path.stat().st_mtime), "file"  # local wall clock, as EXIF


def parse_exif_time(value, subsec=None) -> datetime | None:
    """``"2024:05:01 18:30:05"`` (+ ``"25"`` -> .25 s) as a naive datetime; None when absent or invalid."""
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.strptime(value.strip().rstrip("\x00")[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    if isinstance(subsec, bytes):
        subsec = subsec.decode("ascii", "replace")
    digits = "".join(c for c in str(subsec or "") if c.isdigit())[:6]
    return parsed.replace(microsecond=int(digits.ljust(6, "0"))) if digits else parsed


def counts(photos: Iterable[Photo]) -> dict[str, int]:
    """Photos per status."""
    out: dict[str, int] = {}
    for p in photos:
        out[p.status] = out.get(p.status, 0) + 1
    return out


def open_photo(path: str | os.PathLike, side: int = DECODE_SIDE) -> Image.Image:
    """An ingested photo decoded at about ``side`` pixels: upright RGB, at most ``side`` on its longer side."""
    with Image.open(path) as image:
        image.draft("RGB", (side, side))
        image = to_rgb(ImageOps.exif_transpose(image))
        image.thumbnail((side, side))
        return image
