"""The caption record: one image with all its reference captions and metadata.

Rows of the same image are grouped into one ``CaptionRecord`` so that splits never leak an
image. ``meta`` holds ``event``, ``labels`` and ``attributes`` when the source has them, plus
``source`` (the file and the line numbers, or JSON items, the record came from; ``origin`` when
it was read from an earlier records file), ``conflicts`` (values that differed between rows of
the same image) and, for split files, ``split``.

On disk a record is one JSON object per line: ``{"image_id", "image", "captions", "meta"}``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from captune.data.text import iter_lines, undecodable
from captune.errors import DataError
from captune.io import write_jsonl


@dataclass
class CaptionRecord:
    image_id: str
    image: str
    captions: list[str]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def event(self) -> str | None:
        return self.meta.get("event")

    @property
    def labels(self) -> list[str]:
        return list(self.meta.get("labels") or [])

    @property
    def attributes(self) -> dict[str, Any]:
        return dict(self.meta.get("attributes") or {})

    def to_json(self) -> dict[str, Any]:
        return {"image_id": self.image_id, "image": self.image, "captions": list(self.captions), "meta": self.meta}

    @classmethod
    def from_json(cls, obj: dict[str, Any], where: str = "") -> CaptionRecord:
        """Build from a records-file object; ``where`` ("file:line") prefixes errors."""
        prefix = f"{where}: " if where else ""
        for key in ("image_id", "image", "captions"):
            if key not in obj:
                raise DataError(f"{prefix}missing key {key!r} (a record has image_id, image, captions, meta)")
        caps = obj["captions"]
        if not isinstance(caps, list) or not all(isinstance(c, str) for c in caps):
            raise DataError(f"{prefix}key 'captions': expected a list of strings")
        meta = obj.get("meta") or {}
        if not isinstance(meta, dict):
            raise DataError(f"{prefix}key 'meta': expected an object")
        return cls(str(obj["image_id"]), str(obj["image"]), list(caps), dict(meta))


def read_records(path: str | os.PathLike) -> list[CaptionRecord]:
    """Read a records JSONL file written by ``captune data validate`` or ``split``."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    records = []
    for line, text in iter_lines(path):
        if text.strip():
            records.append(CaptionRecord.from_json(_record_object(text, f"{path}:{line}"), f"{path}:{line}"))
    return records


def _record_object(text: str, where: str) -> dict[str, Any]:
    if undecodable(text):
        raise DataError(f"{where}: not valid UTF-8")
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(f"{where}: not valid JSON ({e.msg})") from None
    if not isinstance(obj, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    return obj


def write_records(path: str | os.PathLike, records: Iterable[CaptionRecord]) -> int:
    return write_jsonl(Path(path), (r.to_json() for r in records))


def with_absolute_images(records: Iterable[CaptionRecord], root: str | os.PathLike) -> list[CaptionRecord]:
    """Records whose relative image paths are made absolute against ``root`` (a records file's
    folder), so they still resolve when written to another folder."""
    out = []
    for r in records:
        image = r.image if os.path.isabs(r.image) else os.path.abspath(os.path.join(root, r.image))
        out.append(CaptionRecord(r.image_id, image, r.captions, r.meta))
    return out
