"""Ingest: every file gets a record; bad files are rejected with a reason; times and sizes are right."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PIL import Image
from real_photos import sample, save

from captune.agent.ingest import ingest, parse_exif_time, read_photo


def test_every_file_is_a_record_and_bad_files_have_reasons(tmp_path: Path):
    good = save(sample("astronaut"), tmp_path / "a" / "good.jpg", datetime(2024, 5, 4, 10, 0, 0, 250_000))
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "text.jpg").write_text("hello")
    data = good.read_bytes()
    (tmp_path / "truncated.jpg").write_bytes(data[: len(data) // 2])
    sample("coins").save(tmp_path / "anim.gif")
    sample("chelsea").save(tmp_path / "b.webp")
    photos = {p.id: p for p in ingest(tmp_path)}
    assert set(photos) == {"a/good.jpg", "empty.jpg", "text.jpg", "truncated.jpg", "anim.gif", "b.webp"}
    reasons = {k: p.reason for k, p in photos.items() if p.status == "rejected"}
    assert reasons["empty.jpg"] == "empty file"
    assert reasons["text.jpg"] == "not an image"
    assert reasons["truncated.jpg"] == "truncated"
    assert reasons["anim.gif"].startswith("unsupported format GIF")
    assert photos["a/good.jpg"].status == photos["b.webp"].status == "ok"
    assert len(reasons) == 4


def test_heic_is_read_with_pillow_heif_and_rejected_with_the_hint_without(tmp_path: Path):
    from captune.agent.ingest import heif_available

    assert heif_available()  # pillow-heif is a test dependency (the heic extra)
    sample("coffee").save(tmp_path / "phone.heic")
    p = read_photo(tmp_path / "phone.heic", tmp_path, heif=True)
    assert p.status == "ok" and (p.width, p.height) == (600, 400)
    without = ("import sys; sys.modules['pillow_heif'] = None\n"  # as if it were not installed
               "from captune.agent.ingest import ingest\n"
               f"print(ingest({str(tmp_path)!r})[0].reason)")
    reason = subprocess.run([sys.executable, "-c", without], capture_output=True, text=True, check=True).stdout
    assert "unsupported format HEIC" in reason and "pip install pillow-heif" in reason


def test_exif_time_with_subseconds_and_file_time_flagged(tmp_path: Path):
    p = read_photo(save(sample("astronaut"), tmp_path / "x.jpg", datetime(2024, 5, 4, 10, 0, 1, 250_000)), tmp_path)
    assert (p.taken_at, p.time_source) == ("2024-05-04T10:00:01.250", "exif")
    assert p.timestamp == pytest.approx(datetime(2024, 5, 4, 10, 0, 1, 250_000, tzinfo=UTC).timestamp())
    png = tmp_path / "y.png"
    sample("coffee").save(png)
    os.utime(png, (1_700_000_000, 1_700_000_000))
    q = read_photo(png, tmp_path)
    assert q.time_source == "file"
    assert q.timestamp == datetime.fromtimestamp(1_700_000_000).replace(tzinfo=UTC).timestamp()  # local clock


def test_orientation_gives_the_upright_size(tmp_path: Path):
    image = sample("chelsea")  # 451 x 300, stored sideways with Orientation 6
    p = read_photo(save(image, tmp_path / "r.jpg", datetime(2024, 1, 1), orientation=6), tmp_path)
    assert (p.width, p.height) == (300, 451)
    q = read_photo(save(image, tmp_path / "n.jpg", datetime(2024, 1, 1)), tmp_path)
    assert (q.width, q.height) == (451, 300)


def test_decompression_bomb_is_rejected_before_decoding(tmp_path: Path):
    path = tmp_path / "big.png"
    Image.new("RGB", (300, 300)).save(path)
    assert read_photo(path, tmp_path, max_pixels=50_000).reason.startswith("decompression bomb")
    assert read_photo(path, tmp_path).status == "ok"


@pytest.mark.parametrize(("value", "subsec", "expected"), [
    ("2024:05:04 10:00:01", "5", datetime(2024, 5, 4, 10, 0, 1, 500_000)),
    (b"2024:05:04 10:00:01\x00", None, datetime(2024, 5, 4, 10, 0, 1)),
    ("0000:00:00 00:00:00", None, None),
    ("", None, None),
    (None, None, None),
])
def test_parse_exif_time(value, subsec, expected):
    assert parse_exif_time(value, subsec) == expected


def test_file_time_is_local_wall_clock_like_exif(tmp_path: Path, monkeypatch):
    """EXIF times are the camera's wall clock; a photo without one (a forwarded copy) must be read on the
    same clock, or at UTC+5:30 it lands 5.5 h before the photos shot beside it, in another event."""
    import time

    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    try:
        png = tmp_path / "forwarded.png"
        sample("coffee").save(png)
        shot = datetime(2024, 5, 4, 18, 0, 0)
        os.utime(png, (shot.timestamp(), shot.timestamp()))  # 18:00 on the machine's (IST) clock
        p = read_photo(png, tmp_path)
        exif = read_photo(save(sample("astronaut"), tmp_path / "camera.jpg", shot), tmp_path)
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    assert p.time_source == "file" and p.taken_at == "2024-05-04T18:00:00"
    assert p.timestamp == exif.timestamp
