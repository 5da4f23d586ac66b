"""Fixtures for the data tests: tiny images and broken files written under ``tmp_path``."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header announces ``width x height`` RGB pixels but holds no pixel data.

    This is how a decompression bomb is tested without allocating its pixels.
    """
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def noise_bytes(fmt: str, size=(48, 32), seed: int = 0) -> bytes:
    a = np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, fmt)
    return buf.getvalue()


class ImageFactory:
    """Writes small images (good and broken) into a folder."""

    def __init__(self, root: Path):
        self.root = root

    def path(self, name: str) -> Path:
        p = self.root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def rgb(self, name: str, size=(8, 6), color=(10, 120, 200)) -> Path:
        p = self.path(name)
        Image.new("RGB", size, color).save(p)
        return p

    def raw(self, name: str, data: bytes) -> Path:
        p = self.path(name)
        p.write_bytes(data)
        return p

    def truncated(self, name: str, fmt: str, keep: float = 0.5) -> Path:
        data = noise_bytes(fmt)
        return self.raw(name, data[: int(len(data) * keep)])

    def bomb(self, name: str, width: int, height: int) -> Path:
        return self.raw(name, png_header_only(width, height))

    def cmyk_jpeg(self, name: str) -> Path:
        p = self.path(name)
        Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(p, "JPEG", quality=95)
        return p

    def palette_png_with_transparency(self, name: str) -> Path:
        """Left half palette index 0 (black, transparent), right half index 1 (green)."""
        im = Image.new("P", (8, 4), 0)
        im.putpalette([0, 0, 0, 0, 200, 0] + [0] * 762)
        im.paste(1, (4, 0, 8, 4))
        p = self.path(name)
        im.save(p, transparency=0)
        return p

    def la_png(self, name: str) -> Path:
        """Grey 100; left half fully transparent, right half opaque."""
        im = Image.new("LA", (8, 4), (100, 255))
        im.paste((100, 0), (0, 0, 4, 4))
        p = self.path(name)
        im.save(p)
        return p

    def png16(self, name: str) -> Path:
        """16-bit grey: 0, 32896 (= 128 * 257) and 65535 in three columns."""
        a = np.zeros((4, 3), dtype=np.uint16)
        a[:, 1], a[:, 2] = 32896, 65535
        p = self.path(name)
        Image.fromarray(a).save(p)
        return p

    def exif_rotated_jpeg(self, name: str) -> Path:
        """Stored 40 x 20, red left half and blue right half, EXIF orientation 6 (rotate 90° clockwise)."""
        im = Image.new("RGB", (40, 20), (0, 0, 255))
        im.paste((255, 0, 0), (0, 0, 20, 20))
        exif = Image.Exif()
        exif[0x0112] = 6
        p = self.path(name)
        im.save(p, "JPEG", exif=exif.tobytes(), quality=95)
        return p


@pytest.fixture
def images(tmp_path) -> ImageFactory:
    return ImageFactory(tmp_path)
