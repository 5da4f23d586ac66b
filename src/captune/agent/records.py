"""The typed records that flow through the agent: one ``Photo`` per file, one ``Post`` per post.

A photo's ``status`` says where it ended up, and ``reason`` says why when it is not in a post:

- ``rejected``: ingest could not use the file (``reason``: ``empty``, ``not an image``, ``truncated``,
  ``decompression bomb``, ``unsupported format``, ...);
- ``duplicate``: ``duplicate_of`` names the photo kept instead, ``duplicate_reason`` is ``exact``,
  ``hash`` or ``clip`` and ``duplicate_distance`` the bits or the cosine distance that linked them;
- ``low_quality``: ``reason`` names the failed checks (``blurred``, ``underexposed``, ``overexposed``);
- ``beyond_selection``: the photo ranked past ``selection.k``;
- ``posted``: ``post_id`` names its post;
- ``ok``: not yet decided (between stages).

Stages return new records (``dataclasses.replace``); they never drop one, so every file in the
photo folder can be followed to its end in the stage files.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

Status = Literal["ok", "rejected", "duplicate", "low_quality", "beyond_selection", "posted"]
TimeSource = Literal["exif", "file"]


@dataclass(frozen=True)
class Photo:
    id: str
    """The path relative to the photo folder, with forward slashes (what truth files name)."""
    path: str
    """The absolute path of the file."""
    status: Status = "ok"
    reason: str | None = None
    sha256: str | None = None
    width: int | None = None
    """Upright size in pixels (EXIF orientation applied)."""
    height: int | None = None
    taken_at: str | None = None
    """Shooting time, ISO 8601 without time zone (EXIF times carry none)."""
    timestamp: float | None = None
    """``taken_at`` as seconds since the epoch (read as UTC), for time arithmetic."""
    time_source: TimeSource | None = None
    """``exif`` (DateTimeOriginal + SubSecTimeOriginal) or ``file`` (modification time: flagged)."""
    duplicate_of: str | None = None
    duplicate_reason: Literal["exact", "hash", "clip"] | None = None
    duplicate_distance: float | None = None
    phash: str | None = None
    """256-bit perceptual hash, hex (imagehash ``phash``, ``hash_size=16``)."""
    sharpness: float | None = None
    """Variance of the Laplacian of a fixed-size grey copy."""
    blur: float | None = None
    """Blur effect of Crete et al. (0 sharp .. 1 blurred) of the same grey copy."""
    brightness: float | None = None
    """Mean luminance, 0-1."""
    shadows: float | None = None
    """Fraction of pixels clipped dark."""
    highlights: float | None = None
    """Fraction of pixels clipped bright."""
    labels: tuple[tuple[str, float], ...] = ()
    """Zero-shot labels kept, best first, with their scores."""
    event: str | None = None
    """Event id from shooting-time gaps (``e01``, ``e02``, ...)."""
    cluster: str | None = None
    """Group within the event (``e01-c01``, ...): the photos of one post before selection."""
    post_id: str | None = None
    rank: int | None = None
    """Position within its post (0 = cover)."""

    @property
    def usable(self) -> bool:
        return self.status == "ok"

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["labels"] = [[name, score] for name, score in self.labels]
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Photo:
        known = {f.name for f in fields(cls)}
        d = {k: v for k, v in d.items() if k in known}
        d["labels"] = tuple((str(n), float(s)) for n, s in d.get("labels") or ())
        return cls(**d)


@dataclass(frozen=True)
class Post:
    post_id: str
    event: str
    images: tuple[str, ...]
    """Photo ids in carousel order; ``images[0]`` is the cover."""
    cover: str
    labels: tuple[str, ...] = ()
    """The post's labels, most frequent among its photos first."""
    caption: str = ""
    hashtags: tuple[str, ...] = ()
    mode: Literal["template", "model", "hybrid"] | None = None
    """The captioner mode asked for."""
    source: Literal["template", "model"] | None = None
    """What wrote the caption (hybrid falls back to the template)."""
    clipscore: float | None = None
    """CLIPScore of the caption against the captioned image (montage or cover)."""
    fallback_reason: str | None = None
    problems: tuple[str, ...] = ()
    """Instagram limits the post breaks (empty when it is ready to publish)."""
    notes: tuple[str, ...] = ()
    """What was changed to keep within the limits (photos padded or scaled, hashtags capped, caption trimmed)."""
    files: dict[str, Any] = field(default_factory=dict)
    """Written files, relative to the output folder: ``images``, ``montage``, ``caption``."""

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        for key in ("images", "labels", "hashtags", "problems", "notes"):
            d[key] = list(d[key])
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Post:
        known = {f.name for f in fields(cls)}
        d = {k: v for k, v in d.items() if k in known}
        for key in ("images", "labels", "hashtags", "problems", "notes"):
            d[key] = tuple(d.get(key) or ())
        return cls(**d)
