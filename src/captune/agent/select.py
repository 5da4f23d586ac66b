"""Posts from groups: one post per group of ``cluster_photos``, cover first, at most ``selection.k`` photos in all.

    photos, posts = select_posts(photos, cfg.selection, embeddings)

- Rank within a group: a photo's representativeness is the cosine of its embedding to the group's
  mean embedding. The cover is the sharpest photo among those within ``COVER_TIE`` of the most
  representative one (representativeness decides, sharpness breaks near-ties: of two nearly
  equal candidates the blurred one is the worse cover); the others rank by representativeness.
- Carousel order: the cover, then the other photos in shooting order (undated last).
- ``selection.k``: photos are handed out round-robin by rank: every post gets its cover, then
  every post its second photo, and so on, until k photos are given; within a round the posts of
  larger groups come first (then by group id). So a post loses a photo only while every other
  post keeps at most one more, and no post vanishes while another keeps two photos; when there
  are more groups than k, the smallest groups get no post. Photos left out become
  ``beyond_selection`` with the reason.
- A post's labels: the labels most frequent among its photos (then by summed score), at most
  ``MAX_POST_LABELS``. Post ids are ``e01-p01``, ... numbered within the event by group.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import replace

import numpy as np
from threadpoolctl import threadpool_limits

from captune.agent.config import SelectionSection
from captune.agent.records import Photo, Post

COVER_TIE = 0.02
"""Cosines to the group's centre closer than this to the best count as a tie, which sharpness breaks."""
MAX_POST_LABELS = 3
"""Labels kept per post (the categorize stage's default topk)."""


def select_posts(photos: list[Photo], cfg: SelectionSection,
                 embeddings: Mapping[str, np.ndarray]) -> tuple[list[Photo], list[Post]]:
    """Turn each group of the photos with status ok into a post; return the photos (order kept) and the posts."""
    groups = _groups(photos)
    with threadpool_limits(1, user_api="blas"):  # tiny products (see captune.agent.cluster)
        ranked = {name: rank_group([photos[i] for i in members], embeddings) for name, members in groups.items()}
    ranked = {name: [groups[name][j] for j in order] for name, order in ranked.items()}
    kept = allocate({name: len(m) for name, m in ranked.items()}, cfg.k)
    out, posts = list(photos), []
    numbers: Counter[str] = Counter()
    for name in sorted(ranked, key=_group_order):
        members = ranked[name]
        if kept[name]:
            event = photos[members[0]].event or ""
            numbers[event] += 1
            images = carousel(photos, members[:kept[name]])
            post = Post(post_id=f"{event}-p{numbers[event]:02d}", event=event,
                        images=tuple(photos[i].id for i in images), cover=photos[images[0]].id,
                        labels=post_labels([photos[i] for i in images]))
            posts.append(post)
            for rank, i in enumerate(images):
                out[i] = replace(photos[i], status="posted", reason=None, post_id=post.post_id, rank=rank)
        for place, i in enumerate(members[kept[name]:], start=kept[name] + 1):
            out[i] = replace(photos[i], status="beyond_selection", post_id=None, rank=None,
                             reason=_dropped_reason(cfg.k, name, place, len(members), kept[name], len(ranked)))
    return out, posts


def rank_group(photos: list[Photo], embeddings: Mapping[str, np.ndarray]) -> list[int]:
    """Indexes of the group's photos, best first: the cover, then by cosine to the group's centre."""
    e = np.stack([_embedding(embeddings, p) for p in photos]).astype(np.float64)
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    centre = e.mean(0)
    cosine = e @ (centre / max(np.linalg.norm(centre), 1e-12))  # (n,)
    near = np.flatnonzero(cosine >= cosine.max() - COVER_TIE)
    cover = max(near, key=lambda i: (_sharpness(photos[i]), cosine[i], -i))
    rest = sorted((i for i in range(len(photos)) if i != cover), key=lambda i: (-cosine[i], photos[i].id))
    return [int(cover)] + [int(i) for i in rest]


def allocate(sizes: Mapping[str, int], k: int) -> dict[str, int]:
    """Photos kept per group: round-robin over the groups (larger first, then by name) until k are given."""
    order = sorted(sizes, key=lambda name: (-sizes[name], _group_order(name)))
    kept = dict.fromkeys(sizes, 0)
    left = k
    for round_ in range(max(sizes.values(), default=0)):
        for name in order:
            if left == 0:
                return kept
            if sizes[name] > round_:
                kept[name] += 1
                left -= 1
    return kept


def post_labels(photos: list[Photo]) -> tuple[str, ...]:
    """The labels most frequent among the photos (ties: larger summed score, then name), at most MAX_POST_LABELS."""
    count: Counter[str] = Counter()
    score: defaultdict[str, float] = defaultdict(float)
    for p in photos:
        for name, s in p.labels:
            count[name] += 1
            score[name] += s
    return tuple(sorted(count, key=lambda n: (-count[n], -score[n], n))[:MAX_POST_LABELS])


def carousel(photos: list[Photo], ranked: list[int]) -> list[int]:
    """Carousel order of the kept photos (indexes, best first): the cover, then the rest in shooting order."""
    def when(i: int) -> tuple:
        return (photos[i].timestamp is None, photos[i].timestamp or 0.0, photos[i].id)

    return [ranked[0], *sorted(ranked[1:], key=when)]


def _group_order(name: str) -> tuple[str, int]:
    """``e01-c02`` -> ("e01", 2): groups by event, then by number (c100 after c99)."""
    event, _, number = name.rpartition("-c")
    return (event, int(number)) if number.isdigit() else (name, 0)


def _groups(photos: list[Photo]) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = defaultdict(list)
    for i, p in enumerate(photos):
        if p.status == "ok":
            if p.cluster is None:
                raise ValueError(f"select: photo {p.id} has status ok but no cluster: run cluster_photos first")
            groups[p.cluster].append(i)
    return dict(groups)


def _dropped_reason(k: int, group: str, place: int, size: int, kept: int, n_groups: int) -> str:
    if kept == 0:
        return (f"selection.k = {k} is below the {n_groups} groups: group {group} ({size} photos) is among "
                f"the smallest and got no post")
    return f"selection.k = {k}: ranked {place} of {size} in group {group}, which keeps {kept}"


def _sharpness(photo: Photo) -> float:
    return -np.inf if photo.sharpness is None else photo.sharpness


def _embedding(embeddings: Mapping[str, np.ndarray], photo: Photo) -> np.ndarray:
    if photo.sha256 not in embeddings:
        raise ValueError(f"select: no embedding for photo {photo.id} (sha256 {photo.sha256}): "
                         f"run the embeddings stage first")
    return np.asarray(embeddings[photo.sha256])
