"""Duplicates: exact copies, perceptual-hash near-copies and CLIP-similar shots of one burst.

    photos = dedupe(photos, cfg.dedupe, embeddings)     # after quality.flag_quality

Three links, each recorded with its evidence:

- ``exact``: the same bytes (sha256), distance 0;
- ``hash``: 256-bit pHashes within ``hash_threshold`` bits (re-encodes, resizes, small crops and
  exposure changes; see ``captune.data.near_duplicates`` for the measurements behind 48), at any
  time apart; distance in bits;
- ``clip``: CLIP cosine at least ``clip_threshold`` *and* shot within ``burst_seconds`` of each
  other (a re-shot pose). Time alone never links two photos (two people shot a second apart stay
  apart), and CLIP similarity alone never does either: photos of one event look alike to CLIP,
  which is how a 0.8 threshold flags nearly everything. Distance is 1 - cosine.

Linked photos form groups (union-find). From each group the best photo is kept: one that passed
the quality checks before one that did not, then the one with the most pixels (sharpness is
measured on a fixed-size copy, where a half-size copy of a photo scores sharper than the photo
itself), then the sharpest, then the first by path. The
others become ``duplicate`` with ``duplicate_of`` naming the kept photo, and the reason and
distance of their own strongest link to it (or, for a photo linked only through another, of its
strongest link in the group).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import numpy as np

from captune.agent.config import DedupeSection
from captune.agent.dedupe_pairs import clip_burst_pairs
from captune.agent.records import Photo
from captune.data.near_duplicates import HASH_BITS, close_pairs, components

CANDIDATES = ("ok", "low_quality")
REASON_ORDER = {"exact": 0, "hash": 1, "clip": 2}


def hash_bits(hex_hashes: list[str]) -> np.ndarray:
    """Hex pHashes as a boolean matrix ``(n, 256)``."""
    if not hex_hashes:
        return np.zeros((0, HASH_BITS), bool)
    raw = np.frombuffer(b"".join(bytes.fromhex(h) for h in hex_hashes), np.uint8).reshape(len(hex_hashes), -1)
    return np.unpackbits(raw, axis=1)[:, :HASH_BITS].astype(bool)


def find_links(photos: list[Photo], cfg: DedupeSection,
               embeddings: Mapping[str, np.ndarray] | None) -> dict[tuple[int, int], tuple[str, float]]:
    """``{(i, j): (reason, distance)}`` for linked photo indexes i < j (the strongest reason per pair)."""
    links: dict[tuple[int, int], tuple[str, float]] = {}

    def add(pairs, reason: str, distance) -> None:
        for (i, j), d in zip(pairs, distance, strict=True):
            key = (min(i, j), max(i, j))
            old = links.get(key)
            if old is None or REASON_ORDER[reason] < REASON_ORDER[old[0]]:
                links[key] = (reason, float(d))

    by_sha: dict[str, list[int]] = {}
    for i, p in enumerate(photos):
        by_sha.setdefault(p.sha256 or "", []).append(i)
    exact = [(group[0], j) for group in by_sha.values() for j in group[1:]]
    add(exact, "exact", [0.0] * len(exact))
    if cfg.method in ("hash", "both"):
        bits = hash_bits([p.phash or "0" * (HASH_BITS // 4) for p in photos])
        pairs = close_pairs(bits, cfg.hash_threshold)
        add(pairs.tolist(), "hash", (bits[pairs[:, 0]] != bits[pairs[:, 1]]).sum(1).tolist() if len(pairs) else [])
    if cfg.method in ("clip", "both"):
        if embeddings is None:
            raise ValueError("dedupe.method uses clip but no embeddings were given")
        vectors = np.stack([embeddings[p.sha256] for p in photos]) if photos else np.zeros((0, 1), np.float32)
        times = np.array([np.nan if p.timestamp is None else p.timestamp for p in photos], dtype=np.float64)
        pairs = clip_burst_pairs(vectors, times, cfg.clip_threshold, cfg.burst_seconds)
        cos = (vectors[pairs[:, 0]] * vectors[pairs[:, 1]]).sum(1) if len(pairs) else []
        add(pairs.tolist(), "clip", [round(1 - float(c), 6) for c in cos])
    return links


def keeper_rank(photo: Photo) -> tuple:
    """Sort key of the photo kept from a group: passed quality, most pixels, sharpest, first path."""
    pixels = (photo.width or 0) * (photo.height or 0)
    return (photo.status != "ok", -pixels, -(photo.sharpness or 0.0), photo.id)


def dedupe(photos: list[Photo], cfg: DedupeSection,
           embeddings: Mapping[str, np.ndarray] | None = None) -> list[Photo]:
    """Mark all but the best photo of every linked group ``duplicate`` (others returned unchanged)."""
    index = [k for k, p in enumerate(photos) if p.status in CANDIDATES]
    cands = [photos[k] for k in index]
    links = find_links(cands, cfg, embeddings)
    labels = components(len(cands), np.array(list(links), dtype=int).reshape(-1, 2))
    groups: dict[int, list[int]] = {}
    for i, g in enumerate(labels):
        groups.setdefault(g, []).append(i)
    out = list(photos)
    for members in groups.values():
        if len(members) < 2:
            continue
        keep = min(members, key=lambda i: keeper_rank(cands[i]))
        for i in members:
            if i != keep:
                reason, distance = _evidence(i, keep, members, links)
                out[index[i]] = replace(cands[i], status="duplicate", reason=None,
                                        duplicate_of=cands[keep].id, duplicate_reason=reason,
                                        duplicate_distance=distance)
    return out


def _evidence(i: int, keep: int, members: list[int], links) -> tuple[str, float]:
    direct = links.get((min(i, keep), max(i, keep)))
    if direct is not None:
        return direct
    own = [links[(min(i, j), max(i, j))] for j in members if (min(i, j), max(i, j)) in links]
    return min(own, key=lambda rd: (REASON_ORDER[rd[0]], rd[1]))
