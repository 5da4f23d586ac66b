"""Reading text files line by line without losing a line to a bad byte or a stray separator.

Bytes that are not UTF-8 come through as surrogate escapes (``undecodable`` finds them), so one
bad line never stops a file; a UTF-8 byte-order mark is dropped. Only ``\\n``, ``\\r\\n`` and
``\\r`` end a line: ``str.splitlines`` would also split on U+2028, U+0085 and other characters
that are valid inside JSON strings and captions.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path


def open_text(path: str | os.PathLike) -> io.StringIO:
    """The file's text (UTF-8, optional BOM dropped, bad bytes escaped), with line endings as written."""
    data = Path(path).read_bytes()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    return io.StringIO(data.decode("utf-8", errors="surrogateescape"), newline="")


def iter_lines(path: str | os.PathLike) -> Iterator[tuple[int, str]]:
    """``(line_number, text)`` for every line, line endings removed."""
    with open_text(path) as f:
        for i, line in enumerate(f, start=1):
            yield i, line.rstrip("\r\n")


def undecodable(text: str) -> bool:
    """True when ``text`` holds bytes that were not valid UTF-8 (surrogate escapes)."""
    return any("\udc80" <= ch <= "\udcff" for ch in text)
