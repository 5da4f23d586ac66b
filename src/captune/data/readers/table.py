"""Delimited caption tables: CSV, TSV, the Flickr30k ``image_name| comment_number| comment``
layout and the Flickr8k token file (``1000268201_693b08cb0e.jpg#0<TAB>A child in ...``).

CSV quoting follows the csv module (quoted separators and newlines inside quotes work), except
for ``|`` separators: the Flickr30k file quotes nothing and its captions contain quote marks,
so quotes are read literally there and a caption that holds the separator is rejoined. Elsewhere a
row with more non-empty fields than the header is rejected (an unquoted separator has shifted it),
and so is a row whose quote is never closed: the lines it would swallow are read as rows again.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from pathlib import Path

from captune.data.readers.base import (
    CAPTION_KEYS,
    IMAGE_EXTENSIONS,
    IMAGE_KEYS,
    ReaderOptions,
    Reject,
    Row,
    image_ref,
    locator,
    row_from_mapping,
)
from captune.data.text import iter_lines, open_text, undecodable
from captune.errors import DataError

# Per-caption numbering (Flickr30k's comment_number): the caption order already keeps it, and as
# image metadata it would only differ from row to row.
CAPTION_INDEX_COLUMNS = {"comment_number", "caption_number", "caption_id", "sentid"}


def read_csv_rows(path: str | os.PathLike, root: str, opts: ReaderOptions) -> Iterator[Row | Reject]:
    """Rows of a CSV/TSV file; ``opts.separator`` defaults from the extension and first line."""
    source = str(path)
    sep = opts.separator or sniff_separator(path)
    delimiter, dialect = csv_dialect(sep)
    with open_text(path) as f:
        lines = _Lines(f.readlines())
    records = _numbered(lines, delimiter, dialect)
    first = next(records, None)
    if first is None:
        return
    header = _header(first[2], opts)
    columns = header or [f"column_{i}" for i in range(len(first[2]))]
    image_col, caption_col = _columns(columns, opts, source, bool(header))
    if not header:
        records = _chain(first, records)
    for line_no, last, fields in records:
        swallowed = _swallowed_row(lines, line_no, last, delimiter, dialect, image_col, caption_col)
        if swallowed is not None:
            yield Reject(source, line_no, "malformed_row",
                         f"a quote opened on line {line_no} runs on to line {last}, over line {swallowed}, which "
                         "reads as a row of its own; close the quote or double it (\"\")")
            lines.pos = line_no  # read again from the line after this one
            continue
        yield _table_row(fields, columns, image_col, caption_col, delimiter, opts, root, source, line_no)


def sniff_separator(path: str | os.PathLike) -> str:
    """The separator after which the first line's first field is an image name or image column."""
    if Path(path).suffix.lower() == ".tsv":
        return "\t"
    first = next((t for _, t in iter_lines(path) if t.strip()), "")
    for sep in (",", "| ", "\t", ";"):
        field = first.split(sep.strip() or sep, 1)[0].strip().lower()
        if sep.strip() in first and (field.endswith(IMAGE_EXTENSIONS) or field in IMAGE_KEYS):
            return sep
    if "\t" in first and "," not in first:
        return "\t"
    return ","


def csv_dialect(sep: str) -> tuple[str, dict]:
    """The csv module's delimiter and options for a separator such as ``,`` or ``| ``."""
    delimiter = sep.rstrip(" ") or sep
    if len(delimiter) != 1:
        raise DataError(f"separator {sep!r}: expected one character, optionally followed by spaces (e.g. ',' or '| ')")
    dialect = {"skipinitialspace": sep != delimiter, "strict": False}
    if delimiter == "|":
        # fields are stripped later; keeping the spaces lets a caption split on "|" be rejoined exactly
        dialect.update(quoting=csv.QUOTE_NONE, skipinitialspace=False)
    return delimiter, dialect


class _Lines:
    """A file's lines fed to ``csv.reader`` one at a time; ``pos`` (lines read so far) numbers the
    records and, set back between records, makes the reader read lines again."""

    def __init__(self, lines: list[str]):
        self.lines, self.pos = lines, 0

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        if self.pos >= len(self.lines):
            raise StopIteration
        self.pos += 1
        return self.lines[self.pos - 1]


def _numbered(lines: _Lines, delimiter: str, dialect: dict) -> Iterator[tuple[int, int, list[str]]]:
    """``(first line, last line, fields)`` for each non-blank CSV record."""
    reader = csv.reader(lines, delimiter=delimiter, **dialect)
    while True:
        start = lines.pos + 1
        fields = next(reader, None)
        if fields is None:
            return
        if any(f.strip() for f in fields):
            yield start, lines.pos, fields


def _swallowed_row(lines: _Lines, first: int, last: int, delimiter: str, dialect: dict, image_col: int,
                   caption_col: int) -> int | None:
    """The number of a line inside a record spanning ``first..last`` that reads as a row of its own
    (enough fields, an image file name in the image column): the sign of a quote never closed."""
    for line_no in range(first + 1, last + 1):
        fields = next(csv.reader([lines.lines[line_no - 1]], delimiter=delimiter, **dialect), [])
        if len(fields) > max(image_col, caption_col) and fields[image_col].strip().lower().endswith(IMAGE_EXTENSIONS):
            return line_no
    return None


def _chain(first, rest):
    yield first
    yield from rest


def _header(fields: list[str], opts: ReaderOptions) -> list[str] | None:
    names = [f.strip() for f in fields]
    if opts.header is None and names and names[0].lower().endswith(IMAGE_EXTENSIONS):
        return None
    return names if opts.header in (None, True) else None


def _columns(columns: list[str], opts: ReaderOptions, source: str, named: bool) -> tuple[int, int]:
    image = _column(columns, opts.image_column, IMAGE_KEYS, 0, named, source, "image")
    caption = _column(columns, opts.caption_column, CAPTION_KEYS, len(columns) - 1, named, source, "caption")
    if max(image, caption) >= len(columns) or image == caption:
        raise DataError(
            f"{source}: image column {image} and caption column {caption} do not fit the first row's "
            f"{len(columns)} columns; check --separator, --image-column and --caption-column"
        )
    return image, caption


def _column(columns, wanted, candidates, fallback, named, source, what) -> int:
    if wanted is not None and wanted.isdigit():
        return int(wanted)
    if not named:
        if wanted is not None:
            raise DataError(f"{source}: the file has no header, so --{what}-column must be a column number")
        return fallback
    names = [wanted] if wanted is not None else list(candidates)
    for name in names:
        if name in columns:
            return columns.index(name)
    raise DataError(
        f"{source}: no {what} column (looked for {', '.join(names)}; the header has {', '.join(columns)}). "
        f"Name it with --{what}-column, or pass --no-header if the first line is data"
    )


def _table_row(fields, columns, image_col, caption_col, delimiter, opts, root, source, line_no) -> Row | Reject:
    if any(undecodable(f) for f in fields):
        return Reject(source, line_no, "undecodable_bytes", "row is not valid UTF-8")
    if len(fields) > len(columns) and caption_col == len(columns) - 1 and delimiter == "|":
        fields = fields[:caption_col] + [delimiter.join(fields[caption_col:])]
    if len(fields) <= max(image_col, caption_col):
        return Reject(source, line_no, "malformed_row", f"expected {len(columns)} columns, found {len(fields)}")
    if any(f.strip() for f in fields[len(columns):]):
        # an unquoted separator inside a field: the columns after it are shifted, so nothing is trusted
        return Reject(source, line_no, "malformed_row", f"expected {len(columns)} columns, found {len(fields)}; "
                      "quote a field that holds the separator")
    obj = {
        name: fields[i].strip()
        for i, name in enumerate(columns)
        if i < len(fields) and name not in CAPTION_INDEX_COLUMNS
    }
    row_opts = opts.model_copy(update={"image_column": columns[image_col], "caption_column": columns[caption_col]})
    return row_from_mapping(obj, row_opts, root, source, line_no)


def read_flickr8k_rows(path: str | os.PathLike, root: str, opts: ReaderOptions) -> Iterator[Row | Reject]:
    """Rows of a Flickr8k/Flickr30k token file: ``NAME#k<TAB>caption``, the ``#k`` suffix dropped."""
    source = str(path)
    for line_no, text in iter_lines(path):
        if not text.strip():
            continue
        if undecodable(text):
            yield Reject(source, line_no, "undecodable_bytes", "line is not valid UTF-8")
            continue
        name, tab, caption = text.partition("\t")
        image = _strip_caption_number(name.strip())
        if not tab or not image:
            yield Reject(source, line_no, "malformed_row", "expected IMAGE#k<TAB>caption")
        elif not caption.strip():
            yield Reject(source, line_no, "missing_caption", "empty caption", image)
        else:
            image_id, resolved = image_ref(image, root)
            meta = {"source": locator(source, line_no)}
            yield Row(image_id, resolved, [caption.strip()], meta, source, line_no)


def _strip_caption_number(name: str) -> str:
    base, hash_, k = name.rpartition("#")
    return base if hash_ and k.isdigit() else name
