"""Image folders in the Hugging Face ``imagefolder`` layout.

A ``metadata.jsonl`` (or ``metadata.csv``) next to the images gives one row per image:
``file_name`` (relative to the metadata file) and a caption column (``caption`` or ``text``);
other columns become metadata. Metadata files in sub-folders are read too. A folder with no
metadata file lists every image (recursively, sorted) as a record without captions, ready to
be captioned. With a metadata file, images it does not name are not listed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from captune.data.readers.base import IMAGE_EXTENSIONS, ReaderOptions, Reject, Row, locator
from captune.data.readers.jsonl import read_jsonl_rows
from captune.data.readers.table import read_csv_rows

METADATA_NAMES = ("metadata.jsonl", "metadata.csv")


def read_folder_rows(path: str | os.PathLike, root: str, opts: ReaderOptions) -> Iterator[Row | Reject]:
    top = Path(path)
    metadata = sorted(p for p in top.rglob("metadata.*") if p.name in METADATA_NAMES)
    if not metadata:
        yield from _bare_images(top, root)
        return
    for meta_file in metadata:
        read = read_jsonl_rows if meta_file.suffix == ".jsonl" else read_csv_rows
        for row in read(meta_file, os.path.abspath(meta_file.parent), opts):
            if isinstance(row, Row) and meta_file.parent != top:
                row.image_id = Path(os.path.relpath(row.image, os.path.abspath(top))).as_posix()
            yield row


def _bare_images(top: Path, root: str) -> Iterator[Row]:
    source = str(top)
    for p in sorted(p for p in top.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS):
        rel = p.relative_to(top).as_posix()
        resolved = os.path.normpath(os.path.join(root, rel))
        yield Row(rel, resolved, [], {"source": locator(source, None, rel)}, source, None, rel)
