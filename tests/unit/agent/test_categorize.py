"""Zero-shot labels: binary scores let a photo hold several labels; softmax makes them compete."""

from __future__ import annotations

import numpy as np

from captune.agent.categorize import binary_probabilities, categorize, label_probabilities
from captune.agent.config import CategorizeSection
from captune.agent.records import Photo


def _unit(v):
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


LABELS = ["night", "outdoors", "food"]
LABEL_VECTORS = _unit(np.eye(4)[:3])  # three label directions
NEUTRAL = _unit([0.0, 0.0, 0.0, 1.0])


def test_binary_keeps_every_label_the_photo_shows_and_softmax_only_the_top_one():
    photo = Photo(id="a.jpg", path="a.jpg", sha256="a")
    embeddings = {"a": _unit([1.0, 0.9, 0.0, 0.3])}  # night and outdoors, no food
    binary = CategorizeSection(labels=LABELS, threshold=0.4)
    (out,), scores = categorize([photo], binary, embeddings, LABEL_VECTORS, 100.0, NEUTRAL)
    assert [name for name, _ in out.labels] == ["night", "outdoors"]
    assert scores["a"].shape == (3,)
    softmax = CategorizeSection(labels=LABELS, threshold=0.4, score="softmax")
    (out,), _ = categorize([photo], softmax, embeddings, LABEL_VECTORS, 100.0)
    assert [name for name, _ in out.labels] == ["night"]


def test_scores_and_limits():
    images = _unit(np.random.default_rng(0).normal(size=(5, 4)))
    p = label_probabilities(images, LABEL_VECTORS, 100.0)
    assert np.allclose(p.sum(1), 1)
    b = binary_probabilities(images, LABEL_VECTORS, NEUTRAL, 100.0)
    margin = images @ LABEL_VECTORS.T - (images @ NEUTRAL)[:, None]
    assert np.array_equal(b > 0.5, margin > 0)
    photos = [Photo(id=f"{i}", path=f"{i}", sha256=f"{i}") for i in range(5)]
    cfg = CategorizeSection(labels=LABELS, threshold=0.0, topk=2)
    out, _ = categorize(photos, cfg, {f"{i}": v for i, v in enumerate(images)}, LABEL_VECTORS, 100.0, NEUTRAL)
    assert all(len(o.labels) == 2 and o.labels[0][1] >= o.labels[1][1] for o in out)


def test_rejected_photos_get_no_labels():
    photo = Photo(id="bad.jpg", path="bad.jpg", status="rejected", reason="truncated", sha256="x")
    out, scores = categorize([photo], CategorizeSection(labels=LABELS), {"x": NEUTRAL}, LABEL_VECTORS, 100.0, NEUTRAL)
    assert out == [photo] and scores == {}
