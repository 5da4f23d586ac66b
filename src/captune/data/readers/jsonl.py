"""JSON Lines captions: one object per line.

Accepts the photography-club layout (``{"image", "event", "labels", "caption"}``, one or
more lines per image), rows with a ``captions`` list, and captune's own records
(``image_id``, ``image``, ``captions``, ``meta``). Key names are configurable
(``image_column``, ``caption_column``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

from captune.data.readers.base import ReaderOptions, Reject, Row, row_from_mapping
from captune.data.text import iter_lines, undecodable


def read_jsonl_rows(path: str | os.PathLike, root: str, opts: ReaderOptions) -> Iterator[Row | Reject]:
    source = str(path)
    for line_no, text in iter_lines(path):
        if not text.strip():
            continue
        yield jsonl_row(text, opts, root, source, line_no)


def jsonl_row(text: str, opts: ReaderOptions, root: str, source: str, line_no: int) -> Row | Reject:
    if undecodable(text):
        return Reject(source, line_no, "undecodable_bytes", "line is not valid UTF-8")
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        return Reject(source, line_no, "malformed_json", f"{e.msg} at column {e.colno}")
    if not isinstance(obj, dict):
        return Reject(source, line_no, "malformed_row", f"expected a JSON object, got {type(obj).__name__}")
    return row_from_mapping(obj, opts, root, source, line_no)
