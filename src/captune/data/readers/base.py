"""What every reader shares: rows, rejects, reader options and path resolution.

A reader turns a source file into ``Row`` objects (one per caption row of the source) and
``Reject`` objects (one per row it cannot read). ``group_rows`` then makes one
``CaptionRecord`` per image. Nothing here raises on a single bad row; ``DataError`` is kept
for a source that cannot be read at all (missing file, unknown format, bad options).
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from captune.config import Schema
from captune.data.records import CaptionRecord


class ReaderOptions(Schema):
    """Options for the dataset readers; each format uses the ones that apply to it."""

    image_column: str | None = None
    """Column or key holding the image path (default: image, file_name, filename, image_name, ...)."""
    caption_column: str | None = None
    """Column or key holding the caption (default: caption, captions, text, comment, sentence, raw)."""
    separator: str | None = None
    """CSV separator: one character, optionally followed by spaces ("| " for Flickr30k)."""
    header: bool | None = None
    """Whether the first CSV/TSV line names the columns (default: yes, unless it starts with an image
    file name). Without a header, column 0 is the image and the last column the caption."""
    split: str | None = None
    """Karpathy split files: keep only this split (train, val, test, restval)."""
    restval_as: str = "train"
    """Karpathy split files: the split that 'restval' images count as ('restval' keeps them apart)."""


@dataclass
class Row:
    """One readable row: an image with the caption(s) that row gives it."""

    image_id: str
    image: str
    captions: list[str]
    meta: dict[str, Any]
    source: str
    line: int | None = None
    item: str | None = None

    @property
    def where(self) -> str:
        return f"{self.source}:{self.line}" if self.line is not None else f"{self.source}:{self.item}"


@dataclass
class Reject:
    """A row that could not be used, and why (``reason`` is a short machine-readable code)."""

    source: str
    line: int | None
    reason: str
    detail: str = ""
    image: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"source": self.source, "line": self.line, "reason": self.reason}
        if self.image is not None:
            out["image"] = self.image
        if self.detail:
            out["detail"] = self.detail
        return out


@dataclass
class ReadResult:
    """What ``read_dataset`` returns: grouped records, rejected rows and the number of rows read."""

    records: list[CaptionRecord]
    rejects: list[Reject] = field(default_factory=list)
    rows: int = 0
    format: str = ""


IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")
IMAGE_KEYS = ("image", "file_name", "filename", "image_name", "image_path", "img", "path", "file")
CAPTION_KEYS = ("caption", "captions", "text", "comment", "sentence", "raw", "sentences")


def image_ref(raw: str, root: str) -> tuple[str, str]:
    """Return ``(image_id, resolved_path)`` for an image path as written in a source.

    The id is the path relative to ``root`` as the source gives it (normalised, ``./`` dropped);
    an absolute path outside ``root`` keeps its absolute form as id.
    """
    raw = raw.strip()
    resolved = os.path.normpath(os.path.join(root, raw))
    if os.path.isabs(raw):
        rel = os.path.relpath(resolved, root)
        image_id = resolved if rel.startswith("..") else Path(rel).as_posix()
    else:
        image_id = posixpath.normpath(raw.replace(os.sep, "/"))
    return image_id, resolved


def default_root(path: str | os.PathLike, image_root: str | os.PathLike | None) -> str:
    """The folder relative image paths resolve against: ``image_root`` or the input's folder."""
    if image_root is not None:
        return os.path.abspath(image_root)
    p = Path(path)
    return os.path.abspath(p if p.is_dir() else p.parent)


def pick_key(obj: dict[str, Any], wanted: str | None, candidates: tuple[str, ...]) -> str | None:
    """The key of ``obj`` to use: ``wanted`` if given, else the first candidate present."""
    if wanted is not None:
        return wanted if wanted in obj else None
    return next((k for k in candidates if k in obj), None)


def as_captions(value: Any) -> list[str] | None:
    """Captions from a caption field: a string or a list of strings; None when malformed.

    Surrounding whitespace is stripped and blank captions are left out.
    """
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
        return None
    return [c.strip() for c in value if c.strip()]


def row_from_mapping(
    obj: dict[str, Any],
    opts: ReaderOptions,
    root: str,
    source: str,
    line: int | None = None,
    item: str | None = None,
) -> Row | Reject:
    """Build a ``Row`` from one key/value row (JSONL object, CSV row, metadata line).

    Known keys: the image and caption keys, ``image_id``, ``event``, ``labels`` and ``meta``
    (captune's own records); every other key is kept under ``meta.attributes``.
    """
    got = _image_and_captions(obj, opts)
    if len(got) == 3:
        reason, detail, image = got
        return Reject(source, line, reason, f"{item}: {detail}" if item else detail, image)
    (image_key, image), (caption_key, captions) = got
    image_id, resolved = image_ref(image, root)
    if obj.get("image_id") not in (None, ""):
        image_id = str(obj["image_id"])
    meta = mapping_meta(obj, {image_key, caption_key, "image_id"})
    if meta is None:
        return Reject(source, line, "malformed_row", "'meta' must be an object", image)
    here = locator(source, line, item)
    if meta.get("source") not in (None, here):
        here["origin"] = meta["source"]
    meta["source"] = here
    return Row(image_id, resolved, captions, meta, source, line, item)


def _image_and_captions(obj: dict[str, Any], opts: ReaderOptions) -> tuple:
    """``((image_key, image), (caption_key, captions))``, or ``(reason, detail, image)`` for a reject."""
    image_key = pick_key(obj, opts.image_column, IMAGE_KEYS)
    image = obj.get(image_key) if image_key else None
    if image is None or (isinstance(image, str) and not image.strip()):
        wanted = opts.image_column or " / ".join(IMAGE_KEYS[:4])
        return "missing_field", f"no image path (expected a key {wanted})", None
    if not isinstance(image, str):
        return "malformed_row", f"image path must be a string, got {type(image).__name__}", None
    caption_key = pick_key(obj, opts.caption_column, CAPTION_KEYS)
    if caption_key is None:
        wanted = opts.caption_column or " / ".join(CAPTION_KEYS[:3])
        return "missing_caption", f"no caption (expected a key {wanted})", image
    captions = as_captions(obj[caption_key])
    if captions is None:
        return "malformed_row", f"{caption_key!r} must be a string or a list of strings", image
    if not captions:
        return "missing_caption", f"{caption_key!r} is empty", image
    return (image_key, image), (caption_key, captions)


def mapping_meta(obj: dict[str, Any], used: set[str]) -> dict[str, Any] | None:
    """``meta`` for a row: its ``meta`` object, ``event``, ``labels`` and the other keys as attributes."""
    given = obj.get("meta", {})
    if not isinstance(given, dict):
        return None
    meta = dict(given)
    if obj.get("event") not in (None, ""):
        meta["event"] = obj["event"]
    if "labels" in obj:
        meta["labels"] = as_labels(obj["labels"])
    rest = {k: v for k, v in obj.items() if k not in used | {"meta", "event", "labels"} and v not in (None, "")}
    if rest:
        meta["attributes"] = {**meta.get("attributes", {}), **rest}
    return meta


def as_labels(value: Any) -> list[str]:
    """Labels as a list of strings; a string is split on commas, semicolons or pipes."""
    if isinstance(value, str):
        parts = value.replace(";", ",").replace("|", ",").split(",")
        return [p.strip() for p in parts if p.strip()]
    if isinstance(value, list):
        return [str(v) for v in value]
    return [] if value is None else [str(value)]


def locator(source: str, line: int | None, item: str | None = None) -> dict[str, Any]:
    """``meta.source`` for one row: the file and its line number (or item, for JSON documents)."""
    return {"file": source, "lines": [line]} if line is not None else {"file": source, "items": [item]}
