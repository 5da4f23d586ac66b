"""The agent's demo photo dump (captune.demo.photos): files, truth, times, planted duplicates and defects.

Thresholds come from dumps of 120 photos, seeds 0-3 (the pHash and pixel figures are in the
module's tests below, each with its measured range).
"""

from __future__ import annotations

import io
import itertools
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image, ImageOps

from captune.cli import cli
from captune.data.near_duplicates import DEFAULT_THRESHOLD, image_hash
from captune.demo.photos import generate_photos
from captune.demo.scene import BACKGROUNDS, LABELS
from captune.demo.world import THEMES
from captune.errors import ConfigError

N_IMAGES = 40
GAP = timedelta(minutes=90)


@pytest.fixture(scope="module")
def dump(tmp_path_factory):
    out = tmp_path_factory.mktemp("photos")
    summary = generate_photos(out, n_events=6, n_images=N_IMAGES, seed=1)
    return {"out": out, "photos": out / "photos", "summary": summary,
            "truth": json.loads((out / "truth.json").read_text()),
            "rows": json.loads((out / "dump.json").read_text())["photos"]}


def _files(root: Path) -> dict[str, tuple[bytes, int]]:
    return {p.relative_to(root).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file()}


def _kind(dump, kind: str) -> list[dict]:
    return [r for r in dump["rows"] if r["kind"] == kind]


def _taken_at(path: Path) -> tuple[datetime, str]:
    """EXIF DateTimeOriginal + SubSecTimeOriginal, else the file's modification time (as UTC)."""
    with Image.open(path) as im:
        ifd = im.getexif().get_ifd(0x8769)
    if 0x9003 in ifd:
        moment = datetime.strptime(ifd[0x9003], "%Y:%m:%d %H:%M:%S")
        return moment + timedelta(milliseconds=int(ifd.get(0x9291, "0"))), "exif"
    mtime = datetime.fromtimestamp(path.stat().st_mtime_ns / 1e9, tz=timezone.utc).replace(tzinfo=None)
    return mtime, "file"


def _grey(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(ImageOps.exif_transpose(im).convert("L"), dtype=np.float64)


def _laplacian_variance(grey: np.ndarray) -> float:
    lap = grey[1:-1, :-2] + grey[1:-1, 2:] + grey[:-2, 1:-1] + grey[2:, 1:-1] - 4 * grey[1:-1, 1:-1]
    return float(lap.var())


def _bits(a: np.ndarray, b: np.ndarray) -> int:
    return int((a != b).sum())


def test_same_seed_gives_identical_bytes_and_times_and_another_seed_does_not(dump, tmp_path):
    generate_photos(tmp_path / "again", n_events=6, n_images=N_IMAGES, seed=1)
    generate_photos(tmp_path / "other", n_events=6, n_images=N_IMAGES, seed=2)
    first = _files(dump["photos"])
    assert _files(tmp_path / "again" / "photos") == first
    assert (tmp_path / "again" / "truth.json").read_bytes() == (dump["out"] / "truth.json").read_bytes()
    assert _files(tmp_path / "other" / "photos") != first


def test_truth_names_every_file_once_with_its_event_and_labels(dump):
    truth, summary = dump["truth"], dump["summary"]
    assert set(truth) == {"duplicates", "low_quality", "labels", "events", "unreadable"}
    on_disk = set(_files(dump["photos"]))
    assert on_disk == set(truth["events"]) | set(truth["unreadable"])
    assert not set(truth["events"]) & set(truth["unreadable"])
    assert len(truth["events"]) == summary["photos"] == N_IMAGES
    assert set(truth["labels"]) == set(truth["events"])
    assert all(set(labels) <= set(LABELS) for labels in truth["labels"].values())
    assert set(truth["events"].values()) <= {t.name for t in THEMES} and len(set(truth["events"].values())) == 6
    assert {img.split("/")[0] for img in truth["events"]} == {"cam1", "cam2", "shared", "backup"}
    grouped = [img for group in truth["duplicates"] for img in group]
    assert len(grouped) == len(set(grouped)) and set(grouped) <= on_disk
    assert len(grouped) - len(truth["duplicates"]) == round(0.15 * N_IMAGES)  # planted duplicates
    assert len(truth["low_quality"]) == round(0.08 * N_IMAGES) and not set(truth["low_quality"]) & set(grouped)
    for row in dump["rows"]:
        if row["original"]:
            group = next(g for g in truth["duplicates"] if row["image"] in g)
            assert group[0] == row["original"] and truth["events"][row["image"]] == truth["events"][group[0]]


def test_shooting_times_separate_events_by_gaps_of_over_90_minutes(dump):
    truth = dump["truth"]
    times = {img: _taken_at(dump["photos"] / img) for img in truth["events"]}
    for row in dump["rows"]:
        moment, source = times[row["image"]]
        assert source == row["time_source"] and moment.isoformat(timespec="milliseconds") == row["taken_at"]
        mtime = (dump["photos"] / row["image"]).stat().st_mtime_ns
        assert mtime == (moment - datetime(1970, 1, 1)) // timedelta(microseconds=1) * 1000  # as UTC
    assert {source for _, source in times.values()} == {"exif", "file"}  # PNGs: file time only
    ordered = sorted(truth["events"], key=lambda img: times[img][0])
    runs = [event for event, _ in itertools.groupby(truth["events"][img] for img in ordered)]
    assert len(runs) == len(set(runs)) == 6  # each event is one stretch of time
    for a, b in itertools.pairwise(ordered):
        gap = times[b][0] - times[a][0]
        assert (gap < GAP) if truth["events"][a] == truth["events"][b] else (gap > GAP), (a, b, gap)


def test_shots_are_minutes_apart_and_events_hours_apart(dump):
    originals = sorted((r for r in dump["rows"] if r["original"] is None), key=lambda r: r["taken_at"])
    for a, b in itertools.pairwise(originals):
        gap = datetime.fromisoformat(b["taken_at"]) - datetime.fromisoformat(a["taken_at"])
        low, high = ((timedelta(seconds=10), timedelta(minutes=8)) if a["event"] == b["event"]
                     else (timedelta(hours=3), timedelta(hours=8)))
        assert low <= gap <= high, (a, b)


def test_reshots_are_bursts_and_edits_keep_the_original_time(dump):
    for row in _kind(dump, "reshot"):
        gap = _taken_at(dump["photos"] / row["image"])[0] - _taken_at(dump["photos"] / row["original"])[0]
        assert timedelta(seconds=0.3) <= gap <= timedelta(seconds=3), row
    for row in _kind(dump, "reencode") + _kind(dump, "crop"):
        assert _taken_at(dump["photos"] / row["image"])[0] == _taken_at(dump["photos"] / row["original"])[0]
    for row in _kind(dump, "copy"):
        copy, original = dump["photos"] / row["image"], dump["photos"] / row["original"]
        assert copy.read_bytes() == original.read_bytes() and copy.parent != original.parent


def test_near_duplicates_are_within_the_hash_threshold_and_nothing_else_is(dump):
    # measured on 4 dumps of 120 (seeds 0-3): re-encodes <= 24 bits, crops <= 38, re-shots <= 36;
    # any two photos of different groups >= 60 (DEFAULT_THRESHOLD is 48)
    truth = dump["truth"]
    hashes = {img: image_hash(dump["photos"] / img) for img in truth["events"]}
    group_of = {img: k for k, group in enumerate(truth["duplicates"]) for img in group}
    kinds = {r["kind"] for r in dump["rows"] if r["original"]}
    assert kinds == {"reshot", "reencode", "crop", "copy"}
    for row in dump["rows"]:
        if row["original"]:
            assert _bits(hashes[row["image"]], hashes[row["original"]]) <= DEFAULT_THRESHOLD, row
    for a, b in itertools.combinations(truth["events"], 2):
        if group_of.get(a, a) != group_of.get(b, b):
            assert _bits(hashes[a], hashes[b]) > DEFAULT_THRESHOLD, (a, b)


def test_reencodes_and_crops_are_the_original_at_quality_60_or_a_crop_of_1_to_2_percent(dump):
    photos, size = dump["photos"], dump["summary"]["params"]["size"]
    reencodes, crops = _kind(dump, "reencode"), _kind(dump, "crop")
    assert {r["edit"]["side"] for r in reencodes} == {size, round(0.8 * size)} and crops
    for row in reencodes:
        with Image.open(photos / row["image"]) as im:
            assert im.size == (row["edit"]["side"],) * 2
            again = io.BytesIO()
            im.save(again, format="JPEG", quality=60)
            assert im.quantization == Image.open(again).quantization, row
    for row in crops:
        box = row["edit"]["box"]
        assert all(0.01 * size - 1 <= cut <= 0.02 * size + 1 for cut in (*box[:2], size - box[2], size - box[3]))
        with Image.open(photos / row["original"]) as im:
            original = ImageOps.exif_transpose(im).convert("RGB")
        expected = np.asarray(original.crop(tuple(box)).resize((size, size), Image.Resampling.LANCZOS), float)
        crop = np.asarray(Image.open(photos / row["image"]).convert("RGB"), float)
        # measured on 3 dumps: 0.28-0.49 from the expected crop, 1.2-3.0 from the uncropped original
        error, uncropped = np.abs(crop - expected).mean(), np.abs(crop - np.asarray(original, float)).mean()
        assert error < 1.0 and uncropped > 2 * error, (row, error, uncropped)


def test_rotated_photo_is_upright_only_after_exif_transpose(dump):
    rotated = dump["summary"]["rotated"]
    assert len(rotated) == 1
    for img in rotated:
        with Image.open(dump["photos"] / img) as im:
            assert im.getexif()[0x0112] in (6, 8)
            raw = np.asarray(im.convert("RGB"))
            upright = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
        mate = next(r["image"] for r in dump["rows"] if r["original"] == img and r["kind"] in ("reshot", "crop"))
        with Image.open(dump["photos"] / mate) as im:
            assert im.getexif().get(0x0112, 1) == 1
            reference = np.asarray(im.convert("RGB").resize(upright.shape[1::-1]), dtype=np.float64)
        assert np.abs(upright - reference).mean() < 10 < np.abs(raw - reference).mean()


def test_blurred_shots_have_far_less_laplacian_variance_than_their_event(dump):
    # measured: blurred <= 0.016 x the median of their event's other photos (4 dumps of 120)
    truth, low = dump["truth"], set(dump["truth"]["low_quality"])
    blurred = _kind(dump, "blurred")
    assert blurred
    for row in blurred:
        assert 4 <= row["edit"]["radius"] <= 6  # pixels at 256 px
        event = [_laplacian_variance(_grey(dump["photos"] / img)) for img, ev in truth["events"].items()
                 if ev == row["event"] and img not in low]
        assert _laplacian_variance(_grey(dump["photos"] / row["image"])) < 0.1 * np.median(event), row


def test_exposure_shots_are_mostly_clipped_and_other_photos_are_not(dump):
    # measured: planted shots >= 0.86 clipped, every other photo <= 0.031 (4 dumps of 120)
    clipped = {img: ((_grey(dump["photos"] / img) <= 8).mean(), (_grey(dump["photos"] / img) >= 247).mean())
               for img in dump["truth"]["events"]}
    kinds = {r["image"]: r["kind"] for r in dump["rows"]}
    assert {"underexposed", "overexposed"} <= set(kinds.values())
    dark = {t.name: BACKGROUNDS[t.backgrounds[0]].dark for t in THEMES}
    for row in _kind(dump, "underexposed") + _kind(dump, "overexposed"):
        assert dark[row["event"]] == (row["kind"] == "underexposed"), row  # the background sets the kind
    for img, (dark, bright) in clipped.items():
        if kinds[img] == "underexposed":
            assert dark > 0.8, img
        elif kinds[img] == "overexposed":
            assert bright > 0.8, img
        else:
            assert max(dark, bright) < 0.1, img


def test_bad_files_are_present_and_unreadable(dump):
    unreadable = dump["truth"]["unreadable"]
    assert len(unreadable) == 3
    sizes = sorted((dump["photos"] / img).stat().st_size for img in unreadable)
    assert sizes[0] == 0 and sizes[2] > 100
    for img in unreadable:
        assert img.endswith(".jpg")
        # UnidentifiedImageError (empty, text) and "image file is truncated" are both OSErrors
        with pytest.raises(OSError), Image.open(dump["photos"] / img) as im:
            im.load()


def test_rerun_replaces_the_old_dump_and_a_foreign_folder_is_refused(tmp_path):
    larger = generate_photos(tmp_path / "d", n_images=100, n_events=3, seed=4)
    assert len(larger["rotated"]) == 2 and larger["duplicates"]["kinds"]["copy"] == 2
    assert 3 <= larger["formats"]["png"] <= 20  # each camera shot a PNG with probability 0.1
    generate_photos(tmp_path / "d", n_images=30, n_events=3, seed=4)
    truth = json.loads((tmp_path / "d" / "truth.json").read_text())
    assert set(_files(tmp_path / "d" / "photos")) == set(truth["events"]) | set(truth["unreadable"])
    (tmp_path / "mine" / "photos").mkdir(parents=True)
    (tmp_path / "mine" / "photos" / "holiday.jpg").write_bytes(b"x")
    with pytest.raises(ConfigError, match="not a photo dump"):
        generate_photos(tmp_path / "mine")
    with pytest.raises(ConfigError, match="n_images=10"):
        generate_photos(tmp_path / "few", n_images=10)
    with pytest.raises(ConfigError, match="n_events=9"):
        generate_photos(tmp_path / "many", n_events=9)
    smallest = generate_photos(tmp_path / "smallest", n_images=20, n_events=8)
    assert len(smallest["events"]) == 8 and smallest["duplicates"]["photos"] == 3


def test_cli_writes_the_dump_and_prints_the_summary(tmp_path):
    runner = CliRunner()
    result = runner.invoke(cli, ["demo", "photos", "--out", str(tmp_path), "--images", "24", "--events", "3",
                                 "--size", "96", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["photos"] == 24 and len(summary["events"]) == 3 and summary["unreadable"] == 3
    with Image.open(tmp_path / "photos" / summary["rotated"][0]) as im:
        assert im.size == (96, 96)
    text = runner.invoke(cli, ["demo", "photos", "--out", str(tmp_path), "--images", "24", "--events", "3"])
    assert text.exit_code == 0 and text.output.startswith("wrote 24 photos")
    assert "near-duplicates: 4 in" in text.output
