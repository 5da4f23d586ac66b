"""Posts from groups: one post per group of ``cluster_photos``, cover first, at most ``selection.k`` photos in all.

    photos, posts = select_posts(photos, cfg.selection, embeddings)

- Rank within a group: a photo's representativeness is the cosine of its embedding to the group's
  mean embedding. The cover is the sharpest photo among those within ``COVER_TIE`` of the most
  representative one (representativeness decides, sharpness breaks near-ties: of two nearly
  equal candidates the blurred one is the worse cover); the others rank by representativeness.
- Carousel order: the cover, then the other photos in shooting order (undated last).
- ``selection.k``: whole groups are taken until k photos are given, the events in turn (time
  order) and, within an event, its largest remaining group first; the group that reaches k keeps
  its best-ranked photos. So every event gets its fullest post before any event gets a second,
  and a dump larger than k gives fewer, fuller posts rather than many posts of one photo (handing
  photos out one per post in turn made 43 posts of 1-2 photos from the 92 demo photos at k = 48).
  Photos left out become ``beyond_selection`` with the reason.
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
    """Photos kept per group: whole groups, events in turn, each event's largest remaining group first, until k."""
    by_event: dict[str, list[str]] = defaultdict(list)
    for name in sorted(sizes, key=lambda n: (_group_order(n)[0], -sizes[n], _group_order(n)[1])):
        by_event[_group_order(name)[0]].append(name)
    queues = [by_event[e] for e in sorted(by_event)]
    kept = dict.fromkeys(sizes, 0)
    left = k
    for round_ in range(max((len(q) for q in queues), default=0)):
        for queue in queues:
            if round_ < len(queue) and left > 0:
                name = queue[round_]
                kept[name] = min(sizes[name], left)
                left -= kept[name]
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
        return (f"selection.k = {k} photos were taken by fuller groups (every event's largest first): "
                f"group {group} ({size} photos) got no post")
    return f"selection.k = {k}: ranked {place} of {size} in group {group}, which keeps {kept}"


def _sharpness(photo: Photo) -> float:
    return -np.inf if photo.sharpness is None else photo.sharpness


def _embedding(embeddings: Mapping[str, np.ndarray], photo: Photo) -> np.ndarray:
    if photo.sha256 not in embeddings:
        raise ValueError(f"select: no embedding for photo {photo.id} (sha256 {photo.sha256}): "
                         f"run the embeddings stage first")
    return np.asarray(embeddings[photo.sha256])
