"""The publishing ledger: ``OUT_DIR/publish/ledger.sqlite`` (SQLite, WAL, synchronous FULL).

One row per post in ``posts`` (its state, child and parent container ids, the container's last
status, the media id, the last error, timestamps) and one row per step in ``steps`` (what was
sent or seen, when), and the digest of each post's content in ``contents`` (its caption and
image files), so that a post id reused by a later ``agent run`` into the same folder is refused
instead of taken for the post already published under it. Every change is committed before the next request goes out, so a process
killed at any point leaves the ledger at the last step that happened; the publisher resumes
from there. A file lock (``ledger.lock``) keeps two publishers off one output folder.

States: ``pending`` (nothing created), ``creating`` (child containers being made), ``container``
(the post's container made, not yet FINISHED), ``ready`` (FINISHED), ``publishing``
(``media_publish`` sent, outcome not yet known), ``published`` (final: never sent again) and
``failed`` (the error says why; the post is known not to be published).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from captune.errors import CaptuneError

SCHEMA = """
CREATE TABLE IF NOT EXISTS posts (
    post_id TEXT PRIMARY KEY, state TEXT NOT NULL, children TEXT NOT NULL DEFAULT '[]',
    container_id TEXT, status_code TEXT, media_id TEXT, error TEXT,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL, published_at TEXT);
CREATE TABLE IF NOT EXISTS contents (post_id TEXT PRIMARY KEY, digest TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS steps (
    id INTEGER PRIMARY KEY AUTOINCREMENT, post_id TEXT NOT NULL, at TEXT NOT NULL,
    step TEXT NOT NULL, detail TEXT NOT NULL);
"""
FIELDS = ("state", "children", "container_id", "status_code", "media_id", "error", "published_at")


@dataclass
class Entry:
    """A post's row: where publishing it has got to."""

    post_id: str
    state: str = "pending"
    children: list[str] = field(default_factory=list)
    container_id: str | None = None
    status_code: str | None = None
    media_id: str | None = None
    error: str | None = None
    published_at: str | None = None
    last_status: str = ""
    """The container's last ``status`` text (kept in ``steps``, not in ``posts``)."""


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class Ledger:
    """The ledger of ``path``; ``with Ledger(path) as ledger:`` holds the folder's lock."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        self._lock = None

    def __enter__(self):
        import fcntl

        self._lock = open(self.path.with_suffix(".lock"), "w")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.close()
            raise CaptuneError(f"{self.path}: another `captune agent publish` is running on this folder; "
                               "wait for it to finish") from None
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def get(self, post_id: str) -> Entry:
        """The post's entry (``pending`` when the ledger has never seen it)."""
        row = self._db.execute(f"SELECT {', '.join(FIELDS)} FROM posts WHERE post_id = ?", (post_id,)).fetchone()
        if row is None:
            return Entry(post_id)
        values = dict(zip(FIELDS, row))
        values["children"] = json.loads(values["children"])
        return Entry(post_id, **values)

    def entries(self) -> dict[str, Entry]:
        ids = [r[0] for r in self._db.execute("SELECT post_id FROM posts ORDER BY post_id")]
        return {i: self.get(i) for i in ids}

    def record(self, entry: Entry, step: str, **detail) -> None:
        """Write ``entry`` and a ``step`` row (with ``detail``) in one committed transaction."""
        at = now()
        values = [json.dumps(entry.children) if f == "children" else getattr(entry, f) for f in FIELDS]
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(
                f"INSERT INTO posts (post_id, {', '.join(FIELDS)}, created_at, updated_at) "
                f"VALUES (?, {', '.join('?' * len(FIELDS))}, ?, ?) ON CONFLICT(post_id) DO UPDATE SET "
                + ", ".join(f"{f} = excluded.{f}" for f in FIELDS) + ", updated_at = excluded.updated_at",
                (entry.post_id, *values, at, at))
            self._db.execute("INSERT INTO steps (post_id, at, step, detail) VALUES (?, ?, ?, ?)",
                             (entry.post_id, at, step, json.dumps(detail, ensure_ascii=False)))

    def content(self, post_id: str, digest: str) -> str:
        """The content digest the ledger holds for ``post_id``; ``digest`` is recorded when it holds none."""
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("INSERT OR IGNORE INTO contents (post_id, digest) VALUES (?, ?)", (post_id, digest))
            return self._db.execute("SELECT digest FROM contents WHERE post_id = ?", (post_id,)).fetchone()[0]

    def steps(self, post_id: str) -> list[tuple[str, dict]]:
        """The post's steps in order: ``(step, detail)``."""
        rows = self._db.execute("SELECT step, detail FROM steps WHERE post_id = ? ORDER BY id", (post_id,))
        return [(step, json.loads(detail)) for step, detail in rows]
