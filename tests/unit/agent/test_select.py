"""Posts from groups: the cover rule, carousel order, the selection.k cap by round-robin, post labels."""

from __future__ import annotations

import numpy as np
import pytest

from captune.agent.config import SelectionSection
from captune.agent.records import Photo
from captune.agent.select import COVER_TIE, allocate, post_labels, rank_group, select_posts


def unit(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def photo(i: int, cluster: str, t: float | None, sharp: float | None = 100.0, **extra) -> Photo:
    return Photo(id=f"p{i:02d}.jpg", path=f"/x/p{i:02d}.jpg", sha256=f"h{i}", timestamp=t,
                 event=cluster.split("-")[0], cluster=cluster, sharpness=sharp, **extra)


def spread_vectors(n: int, dim: int = 16) -> np.ndarray:
    """Unit vectors, photo i pushed off a common base along its own axis by more as i grows."""
    offsets = np.linspace(0.1, 1.5, n)[:, None] * np.eye(dim)[1:n + 1]
    return unit(np.eye(dim)[0] + offsets)


def test_cover_is_the_most_representative_and_the_rest_in_shooting_order():
    vectors = spread_vectors(5)  # photo 0 is closest to the centre
    photos = [photo(i, "e01-c01", t) for i, t in enumerate([50.0, 10.0, None, 30.0, 20.0])]
    emb = {p.sha256: v for p, v in zip(photos, vectors)}
    cosine = vectors @ unit(vectors.mean(0))
    assert cosine[0] - np.delete(cosine, 0).max() > COVER_TIE
    out, posts = select_posts(photos, SelectionSection(k=48), emb)
    assert len(posts) == 1 and posts[0].post_id == "e01-p01" and posts[0].event == "e01"
    assert posts[0].cover == "p00.jpg"
    assert posts[0].images == ("p00.jpg", "p01.jpg", "p04.jpg", "p03.jpg", "p02.jpg")  # undated last
    assert [p.status for p in out] == ["posted"] * 5
    assert {p.id: p.rank for p in out} == {"p00.jpg": 0, "p01.jpg": 1, "p04.jpg": 2, "p03.jpg": 3, "p02.jpg": 4}


def test_sharpness_breaks_a_near_tie_but_not_a_clear_lead():
    axes = np.eye(6)
    # photo 0 is the most central, photo 1 within COVER_TIE of it and sharper, photo 2 far and sharpest
    vectors = unit([axes[0] + 0.2 * axes[1], axes[0] + 0.3 * axes[2], axes[0] + 1.5 * axes[3]])
    cos = vectors @ unit(vectors.mean(0))
    assert 0 < cos[0] - cos[1] < COVER_TIE < cos[0] - cos[2]
    photos = [photo(0, "e01-c01", 0.0, sharp=50.0), photo(1, "e01-c01", 1.0, sharp=300.0),
              photo(2, "e01-c01", 2.0, sharp=900.0)]
    emb = {p.sha256: v for p, v in zip(photos, vectors)}
    assert rank_group(photos, emb)[0] == 1
    blurred = [photos[0], photo(1, "e01-c01", 1.0, sharp=None), photos[2]]
    assert rank_group(blurred, emb)[0] == 0


def test_allocate_takes_whole_groups_events_in_turn_largest_first():
    sizes = {"e01-c01": 2, "e01-c02": 5, "e02-c01": 3, "e02-c02": 1}
    assert allocate(sizes, 100) == sizes
    assert allocate(sizes, 9) == {"e01-c01": 1, "e01-c02": 5, "e02-c01": 3, "e02-c02": 0}  # then e01's next
    assert allocate(sizes, 8) == {"e01-c01": 0, "e01-c02": 5, "e02-c01": 3, "e02-c02": 0}  # each event's fullest
    assert allocate(sizes, 6) == {"e01-c01": 0, "e01-c02": 5, "e02-c01": 1, "e02-c02": 0}
    assert allocate({"e01-c10": 1, "e01-c9": 1}, 1) == {"e01-c10": 0, "e01-c9": 1}  # numeric order on ties


@pytest.mark.parametrize("k", [1, 2, 3, 4, 7, 10, 13, 20])
def test_selection_k_caps_the_photos_with_fuller_posts_first(k):
    rng = np.random.default_rng(k)
    sizes = [6, 4, 1, 2]
    photos, n = [], 0
    for g, size in enumerate(sizes):
        for _ in range(size):
            photos.append(photo(n, f"e01-c{g + 1:02d}", float(n)))
            n += 1
    emb = {p.sha256: unit(rng.normal(size=8)) for p in photos}
    out, posts = select_posts(photos, SelectionSection(k=k), emb)
    posted = [p for p in out if p.status == "posted"]
    assert len(posted) == min(k, 13) == sum(len(post.images) for post in posts)
    kept = {f"e01-c{g + 1:02d}": 0 for g in range(4)}
    for p in posted:
        kept[p.cluster] += 1
    partial = [g for g, size in enumerate(sizes) if 0 < kept[f"e01-c{g + 1:02d}"] < size]
    assert len(partial) <= 1  # only the group that reached k is cut
    for g, size in enumerate(sizes):  # a group gets photos only once every larger group has all of its own
        if kept[f"e01-c{g + 1:02d}"]:
            assert all(kept[f"e01-c{h + 1:02d}"] == other for h, other in enumerate(sizes) if other > size)
    for p in out:
        if p.status == "beyond_selection":
            assert p.reason.startswith(f"selection.k = {k}") and p.post_id is None
    for post in posts:  # every post keeps the best-ranked photos of its group, the cover first
        group = [p for p in photos if p.cluster == next(q.cluster for q in photos if q.id == post.cover)]
        best = [group[i].id for i in rank_group(group, emb)[:len(post.images)]]
        assert post.cover == best[0] and set(post.images) == set(best)


def test_only_ok_photos_are_posted_and_post_ids_count_per_event():
    photos = [photo(0, "e01-c01", 0.0), photo(1, "e01-c02", 1.0), photo(2, "e02-c01", 9.0),
              Photo(id="dup.jpg", path="/x/dup.jpg", status="duplicate", duplicate_of="p00.jpg")]
    emb = {f"h{i}": unit(np.eye(3)[i]) for i in range(3)}
    out, posts = select_posts(photos, SelectionSection(), emb)
    assert [p.post_id for p in posts] == ["e01-p01", "e01-p02", "e02-p01"]
    assert out[3] == photos[3]


def test_an_ok_photo_without_a_cluster_is_an_error_naming_it():
    photos = [Photo(id="a.jpg", path="/x/a.jpg", sha256="h0")]
    with pytest.raises(ValueError, match="a.jpg.*cluster_photos"):
        select_posts(photos, SelectionSection(), {"h0": np.ones(3)})


def test_post_labels_most_frequent_first_at_most_three():
    photos = [photo(0, "e01-c01", 0.0, labels=(("people", 0.9), ("night", 0.5))),
              photo(1, "e01-c01", 1.0, labels=(("night", 0.6), ("food", 0.4))),
              photo(2, "e01-c01", 2.0, labels=(("night", 0.7), ("people", 0.2), ("indoors", 0.45))),
              photo(3, "e01-c01", 3.0, labels=(("food", 0.3),))]
    # night 3x; people 2x (1.1) before food 2x (0.7); indoors 1x is the fourth
    assert post_labels(photos) == ("night", "people", "food")
    assert post_labels([photo(4, "e01-c01", 0.0)]) == ()
