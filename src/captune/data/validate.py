"""Check a caption dataset end to end and keep only what a training run can use.

    captune data validate posts.jsonl --clean configs/data/clean-instagram.yaml --out data/checked

Reads the dataset (malformed lines, undecodable bytes and missing fields become rejects),
optionally cleans the captions (captions empty after cleaning are rejected), groups rows into
one record per image and opens every image with ``load_image`` (two threads: PIL releases the
GIL while decoding). No single bad row stops the run. Writes, atomically, to the output folder:

- ``records.jsonl``: the usable records (``image_id``, resolved ``image`` path, ``captions``, ``meta``);
- ``rejects.jsonl``: one line per rejected row (``source``, ``line``, ``reason``, ``image``, ``detail``);
- ``config.yaml``: the resolved inputs, reader options and cleaning rules;
- ``summary.json``: the counts ``{"rows", "records", "rejected", "reasons"}``.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from captune.config import Schema, dump_config
from captune.data.clean import CleanConfig, clean_rows, load_clean_config
from captune.data.images import DEFAULT_MAX_PIXELS, ImageError, load_image
from captune.data.readers import ReaderOptions, Reject, group_rows, read_rows, reader_options_for
from captune.data.readers.base import default_root
from captune.data.records import CaptionRecord, write_records
from captune.io import write_json, write_jsonl


class ValidateConfig(Schema):
    """The resolved settings of one validation run (saved as ``config.yaml``)."""

    input: str
    """The dataset file or folder that was read."""
    format: str
    """Its format (given or detected)."""
    image_root: str
    """The folder relative image paths were resolved against."""
    reader: ReaderOptions = ReaderOptions()
    """Reader options."""
    clean: CleanConfig | None = None
    """Cleaning rules applied to the captions (none: captions kept as read)."""
    max_pixels: int = DEFAULT_MAX_PIXELS
    """Images with more pixels than this are rejected."""
    strict: bool = False
    """Fail when any row is rejected."""
    workers: int = 2
    """Threads that open images."""


@dataclass
class ValidationReport:
    rows: int
    records: list[CaptionRecord]
    rejects: list[Reject]
    out: Path
    strict: bool = False
    reasons: Counter = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.reasons = Counter(r.reason for r in self.rejects)

    @property
    def failed(self) -> bool:
        """Nothing usable is left, or (strict) something was rejected."""
        return not self.records or (self.strict and bool(self.rejects))

    def to_json(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "records": len(self.records),
            "rejected": len(self.rejects),
            "reasons": dict(self.reasons.most_common()),
        }


def validate_dataset(
    input: str | os.PathLike,
    out: str | os.PathLike,
    format: str | None = None,
    image_root: str | os.PathLike | None = None,
    clean: CleanConfig | str | os.PathLike | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    strict: bool = False,
    workers: int = 2,
    **reader_options: Any,
) -> ValidationReport:
    """Read, clean, group and open every image of a dataset; write records, rejects and config."""
    rows, rejects, fmt = read_rows(input, format, image_root, **reader_options)
    n_rows = len(rows) + len(rejects)
    clean_cfg = load_clean_config(clean) if clean is not None else None
    if clean_cfg is not None:
        rows, drops, _ = clean_rows(rows, clean_cfg)
        rejects += drops
    records, conflicts = group_rows(rows)
    records, broken = check_images(records, max_pixels, workers)
    rejects = sorted(rejects + conflicts + broken, key=_reject_order)
    cfg = ValidateConfig(
        input=str(input), format=fmt, image_root=default_root(input, image_root),
        reader=reader_options_for(fmt, reader_options), clean=clean_cfg,
        max_pixels=max_pixels, strict=strict, workers=workers,
    )
    report = ValidationReport(n_rows, records, rejects, Path(out), strict)
    _write(report, cfg)
    return report


def check_images(
    records: list[CaptionRecord], max_pixels: int = DEFAULT_MAX_PIXELS, workers: int = 2
) -> tuple[list[CaptionRecord], list[Reject]]:
    """Open every record's image; records whose image fails become one reject per source row."""
    def check(record: CaptionRecord) -> ImageError | None:
        try:
            load_image(record.image, max_pixels).close()
        except ImageError as e:
            return e
        return None

    good, rejects = [], []
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        results = pool.map(check, records)
        for record, err in zip(records, tqdm(results, total=len(records), desc="images", disable=None)):
            if err is None:
                good.append(record)
            else:
                rejects.extend(_image_rejects(record, err))
    return good, rejects


def _image_rejects(record: CaptionRecord, err: ImageError) -> Iterator[Reject]:
    source = record.meta.get("source") or {}
    file = str(source.get("file", ""))
    for line in source.get("lines") or []:
        yield Reject(file, line, err.reason, err.message, record.image)
    for item in source.get("items") or []:
        yield Reject(file, None, err.reason, f"{item}: {err.message}", record.image)
    if not source.get("lines") and not source.get("items"):
        yield Reject(file, None, err.reason, err.message, record.image)


def _reject_order(r: Reject) -> tuple:
    return (r.source, r.line is None, r.line or 0, r.detail)


def _write(report: ValidationReport, cfg: ValidateConfig) -> None:
    out = report.out
    write_records(out / "records.jsonl", report.records)
    write_jsonl(out / "rejects.jsonl", (r.to_json() for r in report.rejects))
    dump_config(cfg, out / "config.yaml")
    write_json(out / "summary.json", report.to_json())
