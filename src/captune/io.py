"""File helpers used at the edges: atomic writes and JSON Lines.

Every file captune writes goes through ``atomic_write`` (write a temporary file in the same
folder, flush, fsync, rename), so a killed job never leaves half a file behind.
Append-only logs (``JsonlAppender``) write whole lines and flush each one, so a resumed
job can trust every complete line it finds.
``file_sha256`` is the one checksum of a file's content (fingerprints, manifests, eval.json).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from captune.errors import DataError


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Open a temporary file next to ``path``; on success rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def captune_home() -> Path:
    """Where captune keeps its caches: ``$CAPTUNE_HOME``, by default ``~/.cache/captune``."""
    return Path(os.environ.get("CAPTUNE_HOME", Path.home() / ".cache" / "captune"))


def file_sha256(path: str | os.PathLike) -> str:
    """The hex sha256 of a file's content, read in 1 MiB blocks (weight files run to gigabytes)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_text(path: str | os.PathLike, text: str) -> Path:
    with atomic_write(path) as f:
        f.write(text)
    return Path(path)


def write_json(path: str | os.PathLike, obj: Any, indent: int | None = 2) -> Path:
    with atomic_write(path) as f:
        json.dump(obj, f, ensure_ascii=False, indent=indent)
        f.write("\n")
    return Path(path)


def write_jsonl(path: str | os.PathLike, rows: Iterable[dict]) -> int:
    """Write ``rows`` as JSON Lines atomically; returns the number of lines."""
    n = 0
    with atomic_write(path) as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    return n


def read_json(path: str | os.PathLike) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: line {e.lineno}: not valid JSON ({e.msg})") from None


_SCAN = json.JSONDecoder().scan_once  # what json.loads runs, without its per-call Python steps
_JSON_SPACE = " \t\n\r"


def iter_jsonl(path: str | os.PathLike, skip_partial_last: bool = False) -> Iterator[tuple[int, dict]]:
    """Yield ``(line_number, object)`` for each non-empty line of a JSON Lines file.

    A line that is not a JSON object raises ``DataError`` naming the file and line, except a
    final line without a newline when ``skip_partial_last`` is set (a write cut off by a kill).
    Each line is read exactly as ``json.loads`` reads it.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found")
    with path.open(encoding="utf-8-sig", newline="") as f:
        # Only "\n" ends a line: str.splitlines would also split on U+2028 and friends, which
        # are valid inside JSON strings.
        lines = f.read().split("\n")
    last = len(lines) if lines[-1] else len(lines) - 1  # the number of the last line
    for i, line in enumerate(lines, start=1):
        text = line.strip(_JSON_SPACE)
        try:
            obj, end = _SCAN(text, 0)
        except (StopIteration, ValueError):
            end = -1
        if end != len(text) or type(obj) is not dict:  # blank, invalid or not an object: say which
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                if skip_partial_last and i == last and lines[-1]:
                    return
                raise DataError(f"{path}: line {i}: not valid JSON ({e.msg})") from None
            if not isinstance(obj, dict):
                raise DataError(f"{path}: line {i}: expected a JSON object, got {type(obj).__name__}")
        yield i, obj


def rejects_path(out: str | os.PathLike) -> Path:
    """Where a command writing ``out`` lists what it had to leave out: ``captions.rejects.jsonl``
    next to ``captions.jsonl``."""
    out = Path(out)
    return out.with_name(out.stem + ".rejects.jsonl")


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    return [obj for _, obj in iter_jsonl(path)]


class JsonlAppender:
    """Append JSON objects to a log file, one flushed line each (for resumable jobs).

    A partial last line left by a killed process is cut off on open so appends stay valid.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _truncate_partial_line(self.path)
        self._f = self.path.open("a", encoding="utf-8")

    def write(self, obj: dict) -> None:
        self._f.write(json.dumps(obj, ensure_ascii=False) + "\n")
        self._f.flush()

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> JsonlAppender:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _truncate_partial_line(path: Path) -> None:
    """Cut off a last line that is not a whole JSON object; end a whole one with its missing newline.

    ``iter_jsonl`` reads a whole last line without a newline as a line, so a resumed job counts it
    as done: cutting it off would lose it.
    """
    if not path.exists() or path.stat().st_size == 0:
        return
    data = path.read_bytes()
    if data.endswith(b"\n"):
        return
    keep = data.rfind(b"\n") + 1
    with path.open("r+b") as f:
        if _is_object(data[keep:], bom=keep == 0):
            f.seek(0, os.SEEK_END)
            f.write(b"\n")
        else:
            f.truncate(keep)


def _is_object(line: bytes, bom: bool) -> bool:
    """Whether ``line`` is one JSON object, read as ``iter_jsonl`` reads a line."""
    try:
        return isinstance(json.loads(line.decode("utf-8-sig" if bom else "utf-8")), dict)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return False
