"""Read caption datasets in the common layouts into one ``CaptionRecord`` per image.

    from captune.data.readers import read_dataset
    result = read_dataset("posts.jsonl")                      # format detected from the file
    result = read_dataset("results.csv", format="csv", separator="| ", image_root="flickr30k_images")
    result.records, result.rejects, result.rows

Formats: ``jsonl``, ``csv``, ``tsv``, ``flickr30k`` (CSV with ``| ``), ``flickr8k`` (token
file), ``coco``, ``karpathy`` and ``imagefolder`` (a folder, with or without
``metadata.jsonl``). Relative image paths resolve against ``image_root`` (default: the input
file's folder). Rows of the same image are grouped: captions in order with duplicates
collapsed, metadata merged (lists united, differing values kept under ``meta.conflicts``),
``meta.source`` listing the file and the line numbers (or JSON items) the record came from.
A row that cannot be read becomes a ``Reject``; it never stops the file.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from captune.config import format_validation_error
from captune.data.readers.base import ReaderOptions, ReadResult, Reject, Row, default_root
from captune.data.readers.coco import is_karpathy, load_json_document, read_coco_rows, read_karpathy_rows
from captune.data.readers.folder import read_folder_rows
from captune.data.readers.jsonl import read_jsonl_rows
from captune.data.readers.table import read_csv_rows, read_flickr8k_rows, sniff_separator
from captune.data.records import CaptionRecord
from captune.data.text import iter_lines
from captune.errors import DataError

__all__ = [
    "FORMATS", "ReadResult", "ReaderOptions", "Reject", "Row",
    "detect_format", "group_rows", "read_dataset", "read_rows", "reader_options",
]

Reader = Callable[[str | os.PathLike, str, ReaderOptions], Iterator[Row | Reject]]

FORMATS: dict[str, Reader] = {
    "jsonl": read_jsonl_rows,
    "csv": read_csv_rows,
    "tsv": read_csv_rows,
    "flickr30k": read_csv_rows,
    "flickr8k": read_flickr8k_rows,
    "coco": read_coco_rows,
    "karpathy": read_karpathy_rows,
    "imagefolder": read_folder_rows,
}
_PRESETS: dict[str, dict[str, Any]] = {"tsv": {"separator": "\t"}, "flickr30k": {"separator": "| "}}
_OPTIONS_USED = {
    "separator": {"csv", "tsv", "flickr30k", "imagefolder"},
    "header": {"csv", "tsv", "flickr30k", "imagefolder"},
    "image_column": {"jsonl", "csv", "tsv", "flickr30k", "imagefolder"},
    "caption_column": {"jsonl", "csv", "tsv", "flickr30k", "imagefolder"},
    "split": {"karpathy"},
    "restval_as": {"karpathy"},
}


def read_dataset(
    path: str | os.PathLike,
    format: str | None = None,
    image_root: str | os.PathLike | None = None,
    **reader_options: Any,
) -> ReadResult:
    """Read a caption dataset into records (one per image), rejects and the row count."""
    rows, rejects, fmt = read_rows(path, format, image_root, **reader_options)
    records, conflicts = group_rows(rows)
    return ReadResult(records, rejects + conflicts, len(rows) + len(rejects), fmt)


def read_rows(
    path: str | os.PathLike,
    format: str | None = None,
    image_root: str | os.PathLike | None = None,
    **reader_options: Any,
) -> tuple[list[Row], list[Reject], str]:
    """Read a dataset row by row (before grouping): ``(rows, rejects, format)``."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: no such file or folder")
    fmt = format or detect_format(p)
    if fmt not in FORMATS:
        raise DataError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if p.is_dir() != (fmt == "imagefolder"):
        kind = "a folder" if p.is_dir() else "a file"
        raise DataError(f"{p} is {kind}; format {fmt!r} reads " + ("folders" if fmt == "imagefolder" else "files"))
    opts = reader_options_for(fmt, reader_options)
    rows: list[Row] = []
    rejects: list[Reject] = []
    for item in FORMATS[fmt](p, default_root(p, image_root), opts):
        (rows if isinstance(item, Row) else rejects).append(item)
    return rows, rejects, fmt


def reader_options(**options: Any) -> ReaderOptions:
    """Validate reader options (unknown names are errors)."""
    try:
        return ReaderOptions.model_validate({k: v for k, v in options.items() if v is not None})
    except ValidationError as e:
        raise DataError(format_validation_error(e, ReaderOptions, "reader options")) from None


def reader_options_for(fmt: str, options: dict[str, Any]) -> ReaderOptions:
    """Reader options for ``fmt``: its presets plus ``options``, refusing those it cannot use."""
    given = {k: v for k, v in options.items() if v is not None}
    for name in given:
        if name in _OPTIONS_USED and fmt not in _OPTIONS_USED[name]:
            raise DataError(f"option {name!r} does not apply to format {fmt!r}")
    return reader_options(**{**_PRESETS.get(fmt, {}), **given})


def detect_format(path: str | os.PathLike) -> str:
    """Guess a dataset's format from its extension and first line (or JSON structure)."""
    p = Path(path)
    if p.is_dir():
        return "imagefolder"
    suffix = p.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix == ".tsv":
        return "tsv"
    if suffix == ".json":
        return _detect_json(p)
    first = next((t for _, t in iter_lines(p) if t.strip()), "")
    name, tab, _ = first.partition("\t")
    if tab and "#" in name and name.rpartition("#")[2].isdigit():
        return "flickr8k"
    if first.lstrip().startswith("{"):
        return "jsonl"
    if suffix in (".csv", ".txt", ".token") or "|" in first:
        sep = sniff_separator(p)
        return "flickr30k" if sep == "| " else "tsv" if sep == "\t" else "csv"
    raise DataError(f"{p}: cannot tell the format from the name or first line; pass --format ({', '.join(FORMATS)})")


def _detect_json(p: Path) -> str:
    doc = load_json_document(p)
    if is_karpathy(doc):
        return "karpathy"
    if isinstance(doc, dict) and isinstance(doc.get("images"), list):
        return "coco"
    raise DataError(f"{p}: a JSON file that is neither COCO captions nor a Karpathy split; use JSON Lines for rows")


def group_rows(rows: Iterable[Row]) -> tuple[list[CaptionRecord], list[Reject]]:
    """One record per image id: captions in order, duplicates collapsed, metadata merged.

    A row whose image id already names a different image file is rejected (``conflicting_image``).
    """
    records: dict[str, CaptionRecord] = {}
    seen: dict[str, set[str]] = {}
    first: dict[str, str] = {}
    rejects: list[Reject] = []
    for row in rows:
        rec = records.get(row.image_id)
        if rec is None:
            rec = records[row.image_id] = CaptionRecord(row.image_id, row.image, [], {})
            seen[row.image_id], first[row.image_id] = set(), row.where
        elif rec.image != row.image:
            detail = f"image id {row.image_id!r} already names {rec.image} ({first[row.image_id]})"
            rejects.append(Reject(row.source, row.line, "conflicting_image", detail, row.image))
            continue
        for caption in row.captions:
            key = " ".join(caption.split())
            if key not in seen[row.image_id]:
                seen[row.image_id].add(key)
                rec.captions.append(caption)
        merge_meta(rec.meta, row.meta)
    return list(records.values()), rejects


def merge_meta(into: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Merge ``new`` into ``into``: lists united in order, objects merged, the first scalar kept.

    A differing scalar is not dropped: ``meta.conflicts[key]`` lists every value seen.
    """
    for key, value in new.items():
        old = into.get(key)
        if key not in into:
            into[key] = copy.deepcopy(value)
        elif isinstance(old, list) and isinstance(value, list):
            into[key] = old + [v for v in value if v not in old]
        elif isinstance(old, dict) and isinstance(value, dict):
            merge_meta(old, value)
        elif old != value:
            values = into.setdefault("conflicts", {}).setdefault(key, [old])
            if value not in values:
                values.append(value)
    return into
