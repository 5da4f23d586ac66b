"""A study's SQLite file (``STUDY_DIR/review.sqlite``): items, systems, captions, raters,
assignments, ratings and sessions.

- Raters and the admin log in with invite tokens; only their HMAC (keyed by a secret generated
  for the study) is stored, and the same for session ids.
- Each rater's items and, per item, the order of the captions ("slots" A, B, ...) are drawn
  once, when the rater is added, from a generator seeded by the study seed and the rater's name,
  and stored (``assignments``): a rater sees the same order after a restart, two raters see
  different ones, and the page never learns which system wrote which caption.
- Ratings are stored by system id, one row per (rater, item, slot, criterion), upserted: rating
  an item again replaces the earlier scores. The preference and comment of a (rater, item) are
  one ``judgements`` row, upserted the same way.
- WAL journal, ``busy_timeout``, ``synchronous=FULL``; every write is one ``BEGIN IMMEDIATE``
  transaction, so concurrent raters never see "database is locked" and an acknowledged rating
  survives the server being killed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import secrets
import sqlite3
import string
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from captune.errors import CaptuneError

DB_FILE = "review.sqlite"
SCORES = range(1, 6)
SESSION_SECONDS = 7 * 24 * 3600
BUSY_TIMEOUT_MS = 10_000
SLOTS = string.ascii_uppercase
DEFAULT_PORT = 8000

SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE systems (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, source TEXT NOT NULL);
CREATE TABLE items (id TEXT PRIMARY KEY, position INTEGER NOT NULL, kind TEXT NOT NULL,
                    image TEXT NOT NULL, shared INTEGER NOT NULL, owner TEXT);
CREATE TABLE captions (item_id TEXT NOT NULL REFERENCES items(id), system_id INTEGER NOT NULL REFERENCES systems(id),
                       text TEXT NOT NULL, PRIMARY KEY (item_id, system_id));
CREATE TABLE raters (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,
                     role TEXT NOT NULL CHECK (role IN ('rater', 'admin')), token_hash TEXT NOT NULL UNIQUE,
                     created TEXT NOT NULL);
CREATE TABLE assignments (rater_id INTEGER NOT NULL REFERENCES raters(id), item_id TEXT NOT NULL REFERENCES items(id),
                          position INTEGER NOT NULL, slots TEXT NOT NULL, skipped INTEGER NOT NULL DEFAULT 0,
                          PRIMARY KEY (rater_id, item_id));
CREATE TABLE ratings (rater_id INTEGER NOT NULL, item_id TEXT NOT NULL, slot TEXT NOT NULL,
                      system_id INTEGER NOT NULL REFERENCES systems(id), criterion TEXT NOT NULL,
                      score INTEGER NOT NULL CHECK (score BETWEEN 1 AND 5), rated_at TEXT NOT NULL,
                      UNIQUE (rater_id, item_id, slot, criterion),
                      FOREIGN KEY (rater_id, item_id) REFERENCES assignments(rater_id, item_id));
CREATE TABLE judgements (rater_id INTEGER NOT NULL, item_id TEXT NOT NULL,
                         preferred_system INTEGER REFERENCES systems(id), tie INTEGER NOT NULL DEFAULT 0,
                         comment TEXT NOT NULL DEFAULT '', rated_at TEXT NOT NULL, PRIMARY KEY (rater_id, item_id),
                         FOREIGN KEY (rater_id, item_id) REFERENCES assignments(rater_id, item_id));
CREATE TABLE sessions (id_hash TEXT PRIMARY KEY, rater_id INTEGER NOT NULL REFERENCES raters(id),
                       csrf TEXT NOT NULL, expires REAL NOT NULL);
"""


class RatingError(CaptuneError):
    """A rating that does not fit the item: ``problems`` is a list of (field path, message)."""

    def __init__(self, problems: list[tuple[list[str], str]]):
        self.problems = problems
        super().__init__("; ".join(f"{'.'.join(loc)}: {msg}" for loc, msg in problems))


@dataclass(frozen=True)
class Session:
    rater_id: int
    rater: str
    role: str
    csrf: str


def invite_link(token: str, host: str = "127.0.0.1", port: int = DEFAULT_PORT) -> str:
    """The sign-in link: the token rides in the fragment, which the browser never sends anywhere."""
    return f"http://{host}:{port}/login#token={token}"


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Study:
    """An open study folder; every method opens its own connection (safe across threads)."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.path = self.folder / DB_FILE
        self._local = threading.local()
        if not self.path.exists():
            raise CaptuneError(f"{self.folder}: no study here ({DB_FILE} missing); create one with "
                               "`captune review create`")
        with self.read() as db:
            meta = dict(db.execute("SELECT key, value FROM meta"))
        self.name = meta["name"]
        self.criteria: list[str] = json.loads(meta["criteria"])
        self.pairwise = meta["pairwise"] == "1"
        self.seed = int(meta["seed"])
        self._secret = bytes.fromhex(meta["secret"])

    # ---- connections ----
    def _connect(self) -> sqlite3.Connection:
        """This thread's connection (opened once per thread: the server's worker threads reuse theirs)."""
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
            db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            db.execute("PRAGMA foreign_keys = ON")
            db.execute("PRAGMA synchronous = FULL")
            self._local.db = db
        return db

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A consistent snapshot for a few queries (one deferred transaction)."""
        db = self._connect()
        db.execute("BEGIN")
        try:
            yield db
        finally:
            db.execute("COMMIT")

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction: committed on success, rolled back on an error."""
        db = self._connect()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def hash(self, token: str) -> str:
        return hmac.new(self._secret, token.encode(), hashlib.sha256).hexdigest()

    # ---- raters and sessions ----
    def add_rater(self, name: str, role: str = "rater") -> str:
        """Add a rater (their items and slot orders drawn now) or the admin; returns the invite token once."""
        name = name.strip()
        if not name or len(name) > 64:
            raise CaptuneError(f"rater name {name!r}: give 1 to 64 characters")
        token = secrets.token_urlsafe(32)
        with self.write() as db:
            if db.execute("SELECT 1 FROM raters WHERE name = ?", (name,)).fetchone():
                raise CaptuneError(f"{self.folder}: a rater named {name!r} already exists")
            rater_id = db.execute("INSERT INTO raters (name, role, token_hash, created) VALUES (?, ?, ?, ?)",
                                  (name, role, self.hash(token), now_iso())).lastrowid
            if role == "rater":
                _assign(db, rater_id, name, self.seed)
        return token

    def login(self, token: str) -> tuple[Session, str] | None:
        """Exchange an invite token for a new session; returns it and the session id (None: bad token)."""
        with self.write() as db:
            row = db.execute("SELECT id, name, role FROM raters WHERE token_hash = ?", (self.hash(token),)).fetchone()
            if row is None:
                return None
            session_id, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
            db.execute("DELETE FROM sessions WHERE expires < ?", (time.time(),))
            db.execute("INSERT INTO sessions VALUES (?, ?, ?, ?)",
                       (self.hash(session_id), row[0], csrf, time.time() + SESSION_SECONDS))
        return Session(row[0], row[1], row[2], csrf), session_id

    def session(self, session_id: str) -> Session | None:
        with self.read() as db:
            row = db.execute(
                "SELECT r.id, r.name, r.role, s.csrf FROM sessions s JOIN raters r ON r.id = s.rater_id "
                "WHERE s.id_hash = ? AND s.expires > ?", (self.hash(session_id), time.time())).fetchone()
        return Session(*row) if row else None

    def logout(self, session_id: str) -> None:
        with self.write() as db:
            db.execute("DELETE FROM sessions WHERE id_hash = ?", (self.hash(session_id),))

    # ---- rating ----
    def next_item(self, rater_id: int) -> dict[str, Any] | None:
        """The rater's first unrated item (skipped ones last), with its captions by slot; None when done."""
        with self.read() as db:
            row = db.execute(
                "SELECT a.item_id, a.slots FROM assignments a WHERE a.rater_id = ? AND NOT EXISTS "
                "(SELECT 1 FROM judgements j WHERE j.rater_id = a.rater_id AND j.item_id = a.item_id) "
                "ORDER BY a.skipped, a.position LIMIT 1", (rater_id,)).fetchone()
            if row is None:
                return None
            texts = dict(db.execute("SELECT system_id, text FROM captions WHERE item_id = ?", (row[0],)))
            done, total = self._progress(db, rater_id)
        captions = [{"slot": SLOTS[k], "text": texts[s]} for k, s in enumerate(json.loads(row[1]))]
        return {"item_id": row[0], "captions": captions, "progress": {"done": done, "total": total}}

    @staticmethod
    def _progress(db: sqlite3.Connection, rater_id: int) -> tuple[int, int]:
        done = db.execute("SELECT COUNT(*) FROM judgements WHERE rater_id = ?", (rater_id,)).fetchone()[0]
        total = db.execute("SELECT COUNT(*) FROM assignments WHERE rater_id = ?", (rater_id,)).fetchone()[0]
        return done, total

    def slots(self, rater_id: int, item_id: str) -> list[int] | None:
        """System ids in slot order for the rater's item; None when the item is not theirs."""
        with self.read() as db:
            row = db.execute("SELECT slots FROM assignments WHERE rater_id = ? AND item_id = ?",
                             (rater_id, item_id)).fetchone()
        return json.loads(row[0]) if row else None

    def save_rating(self, rater_id: int, item_id: str, scores: dict[str, dict[str, int]],
                    preferred: str | None, comment: str = "") -> None:
        """Check the scores against the item's slots and the criteria, then upsert them (one transaction)."""
        systems = self.slots(rater_id, item_id)
        if systems is None:
            raise KeyError(item_id)
        by_slot = {SLOTS[k]: s for k, s in enumerate(systems)}
        _check_rating(by_slot, self.criteria, self.pairwise, scores, preferred)
        stamp = now_iso()
        rows = [(rater_id, item_id, slot, by_slot[slot], c, scores[slot][c], stamp)
                for slot in by_slot for c in self.criteria]
        winner = by_slot.get(preferred) if preferred else None
        with self.write() as db:
            db.executemany(
                "INSERT INTO ratings VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (rater_id, item_id, slot, criterion) "
                "DO UPDATE SET score = excluded.score, rated_at = excluded.rated_at", rows)
            db.execute(
                "INSERT INTO judgements VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (rater_id, item_id) DO UPDATE SET "
                "preferred_system = excluded.preferred_system, tie = excluded.tie, comment = excluded.comment, "
                "rated_at = excluded.rated_at", (rater_id, item_id, winner, int(preferred == "tie"), comment, stamp))

    def skip(self, rater_id: int, item_id: str) -> bool:
        """Move an item to the end of the rater's queue; False when it is not theirs."""
        with self.write() as db:
            return db.execute("UPDATE assignments SET skipped = 1 WHERE rater_id = ? AND item_id = ?",
                              (rater_id, item_id)).rowcount == 1

    def image_path(self, item_id: str, rater_id: int | None) -> Path | None:
        """The item's image file, for a rater it is assigned to (``rater_id``) or the admin (None)."""
        query = ("SELECT i.image FROM items i WHERE i.id = ?" if rater_id is None else
                 "SELECT i.image FROM items i JOIN assignments a ON a.item_id = i.id WHERE i.id = ? AND a.rater_id = ?")
        with self.read() as db:
            row = db.execute(query, (item_id,) if rater_id is None else (item_id, rater_id)).fetchone()
        return Path(row[0]) if row else None

    # ---- reading it all ----
    def progress(self) -> list[dict[str, Any]]:
        with self.read() as db:
            raters = db.execute("SELECT id, name FROM raters WHERE role = 'rater' ORDER BY id").fetchall()
            return [dict(zip(("rater", "done", "total"), (name, *self._progress(db, rid)))) for rid, name in raters]

    def export_rows(self) -> list[dict[str, Any]]:
        """One dict per score of one caption (the export's lines), in rating order."""
        with self.read() as db:
            rows = db.execute(
                "SELECT r.name, i.id, i.image, s.name, x.criterion, x.score, j.tie, p.name, j.comment, x.rated_at "
                "FROM ratings x JOIN raters r ON r.id = x.rater_id JOIN items i ON i.id = x.item_id "
                "JOIN systems s ON s.id = x.system_id "
                "JOIN judgements j ON j.rater_id = x.rater_id AND j.item_id = x.item_id "
                "LEFT JOIN systems p ON p.id = j.preferred_system "
                "ORDER BY x.rated_at, r.name, i.position, s.id, x.criterion").fetchall()
        keys = ("rater", "item_id", "image", "system", "criterion", "score", "preferred", "comment", "rated_at")
        return [dict(zip(keys, (a, b, c, d, e, f, "tie" if tie else p, cm, t)))
                for a, b, c, d, e, f, tie, p, cm, t in rows]

    def systems(self) -> list[str]:
        with self.read() as db:
            return [r[0] for r in db.execute("SELECT name FROM systems ORDER BY id")]

    def counts(self) -> dict[str, int]:
        with self.read() as db:
            return {t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                    for t in ("items", "systems", "captions", "raters", "assignments", "ratings", "judgements")}


def _check_rating(by_slot: dict[str, int], criteria: Sequence[str], pairwise: bool,
                  scores: dict[str, dict[str, int]], preferred: str | None) -> None:
    problems = [(["scores", s], f"unknown slot {s}; this item has {', '.join(by_slot)}")
                for s in scores if s not in by_slot]
    for slot in by_slot:
        given = scores.get(slot)
        if given is None:
            problems.append((["scores", slot], "missing: score every caption"))
            continue
        problems += [(["scores", slot, c], f"unknown criterion; this study rates {', '.join(criteria)}")
                     for c in given if c not in criteria]
        for c in criteria:
            if c not in given:
                problems.append((["scores", slot, c], "missing"))
            elif isinstance(given[c], bool) or not isinstance(given[c], int) or given[c] not in SCORES:
                problems.append((["scores", slot, c], f"a score is an integer from 1 to 5, not {given[c]!r}"))
    if pairwise and preferred not in (*by_slot, "tie"):
        problems.append((["preferred"], f"say which caption is better: {', '.join(by_slot)} or tie"))
    if not pairwise and preferred is not None:
        problems.append((["preferred"], "this study asks for no preference: send null"))
    if problems:
        raise RatingError(problems)


def _assign(db: sqlite3.Connection, rater_id: int, name: str, seed: int) -> None:
    """Give a new rater the shared items, the items set aside for them and any item nobody has yet,
    in their own order and slot orders."""
    rows = db.execute("SELECT id FROM items i WHERE shared = 1 OR owner = ? OR (owner IS NULL AND NOT EXISTS "
                      "(SELECT 1 FROM assignments a WHERE a.item_id = i.id)) ORDER BY position", (name,)).fetchall()
    systems = [r[0] for r in db.execute("SELECT id FROM systems ORDER BY id")]
    rng = random.Random(f"{seed}:{name}")
    items = [r[0] for r in rows]
    rng.shuffle(items)
    for position, item_id in enumerate(items):
        order = list(systems)
        rng.shuffle(order)
        db.execute("INSERT INTO assignments (rater_id, item_id, position, slots) VALUES (?, ?, ?, ?)",
                   (rater_id, item_id, position, json.dumps(order)))


def create_study(
    folder: str | Path,
    systems: dict[str, Path],
    items: int | None = None,
    criteria: Sequence[str] = ("relevance", "fluency", "style"),
    pairwise: bool = False,
    raters: Sequence[str] = (),
    overlap: float = 1.0,
    seed: int = 0,
) -> dict[str, Any]:
    """Create ``folder/review.sqlite`` from the systems' captions; returns the invite tokens (shown once).

    ``overlap``: the share of the items every rater rates (agreement is measured on them); the
    others are dealt out among ``raters`` in turn, each to one rater.
    """
    from captune.review.sources import shared_items

    folder = Path(folder)
    _check_options(folder, systems, criteria, overlap, items)
    found = shared_items(systems)
    rng = random.Random(seed)
    chosen = sorted(rng.sample(found, items), key=lambda it: it.item_id) if items and items < len(found) else found
    n_shared = round(overlap * len(chosen))
    order = list(range(len(chosen)))
    rng.shuffle(order)
    owners = {k: (None if rank < n_shared or not raters else raters[(rank - n_shared) % len(raters)])
              for rank, k in enumerate(order)}
    folder.mkdir(parents=True, exist_ok=True)
    _write_schema(folder / DB_FILE, folder.resolve().name, criteria, pairwise, seed, overlap)
    study = Study(folder)
    with study.write() as db:
        ids = {name: db.execute("INSERT INTO systems (name, source) VALUES (?, ?)", (name, str(path))).lastrowid
               for name, path in systems.items()}
        for k, it in enumerate(chosen):
            db.execute("INSERT INTO items VALUES (?, ?, ?, ?, ?, ?)",
                       (it.item_id, k, it.kind, it.image, int(owners[k] is None), owners[k]))
            db.executemany("INSERT INTO captions VALUES (?, ?, ?)",
                           [(it.item_id, ids[name], text) for name, text in it.captions.items()])
    tokens = {name: study.add_rater(name) for name in raters}
    return {"study": str(folder), "items": len(chosen), "systems": list(systems), "raters": tokens,
            "admin": study.add_rater("admin", role="admin")}


def _check_options(folder: Path, systems, criteria, overlap: float, items: int | None) -> None:
    if (folder / DB_FILE).exists():
        raise CaptuneError(f"{folder / DB_FILE} exists; choose another study folder or remove it")
    if not 2 <= len(systems) <= len(SLOTS):
        raise CaptuneError(f"a study compares 2 to {len(SLOTS)} systems (--system NAME=PATH), not {len(systems)}")
    if not criteria or len(set(criteria)) != len(criteria):
        raise CaptuneError(f"--criteria {','.join(criteria)}: give one or more distinct names")
    if not 0.0 <= overlap <= 1.0:
        raise CaptuneError(f"--overlap {overlap}: give a share between 0 and 1")
    if items is not None and items < 1:
        raise CaptuneError(f"--items {items}: give at least 1")


def _write_schema(path: Path, name: str, criteria, pairwise: bool, seed: int, overlap: float) -> None:
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode = WAL")
        db.executescript(SCHEMA)
        meta = {"name": name, "criteria": json.dumps(list(criteria)), "pairwise": str(int(pairwise)),
                "seed": str(seed), "overlap": str(overlap), "secret": secrets.token_hex(32), "created": now_iso()}
        db.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())
    finally:
        db.close()
