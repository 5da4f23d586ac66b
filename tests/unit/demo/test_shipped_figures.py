"""The shipped models' figures in MANIFEST.json, recomputed on images that chose nothing.

The build trains on the world of its seed, picks the checkpoint on the world of ``seed + 1`` and
measures the manifest's figures on the world of ``seed + 2``. These tests regenerate that
held-out world and a second world no build has seen, and measure the shipped weights again.
"""

from __future__ import annotations

import math

import pytest

from captune.demo.build import heldout_figures, heldout_world
from captune.demo.shipped import WEIGHTS_DIR, read_manifest

pytestmark = pytest.mark.slow

# The held-out world and the weights are the ones the manifest was measured with; only the
# thread count can differ, which can flip an argmax for a caption or two out of 1,000.
SAME_WORLD_TOLERANCE = 0.01
ACCURACIES = ("naming", "colour", "shape", "material", "size", "count")


@pytest.fixture(scope="module")
def manifest():
    return read_manifest()


@pytest.fixture(scope="module")
def recomputed(manifest, tmp_path_factory):
    cfg = manifest["config"]
    held = heldout_world(tmp_path_factory.mktemp("heldout"), cfg["seed"], cfg["heldout_images"])
    return heldout_figures(WEIGHTS_DIR, held)


def test_heldout_world_is_not_the_validation_world(manifest):
    cfg = manifest["config"]
    # training: seed, validation (checkpoint choice, warm-up accuracy): seed + 1, figures: seed + 2
    assert cfg["heldout_images"] == manifest["figures"]["captioner"]["heldout_images"] == 1000
    assert "val_accuracy" in manifest["figures"]["captioner"]["vision_warmup"]


@pytest.mark.parametrize("decoding", ["greedy", "beam"])
def test_captioner_figures_match_the_manifest(manifest, recomputed, decoding):
    stated, found = manifest["figures"]["captioner"][decoding], recomputed["captioner"][decoding]
    for name in ACCURACIES:
        assert found[name] == pytest.approx(stated[name], abs=SAME_WORLD_TOLERANCE), name


def test_clip_figures_match_the_manifest(manifest, recomputed):
    stated, found = manifest["figures"]["clip"]["held_out"], recomputed["clip"]["held_out"]
    for name in ("retrieval_image_to_text_top1", "retrieval_text_to_image_top1", "true_beats_wrong_colours",
                 "nearest_neighbour_same_event", "near_duplicate_is_nearest"):
        assert found[name] == pytest.approx(stated[name], abs=SAME_WORLD_TOLERANCE), name
    for label, auc in stated["label_auc"].items():
        assert found["label_auc"][label] == pytest.approx(auc, abs=SAME_WORLD_TOLERANCE), label


def test_captioner_figures_hold_on_a_world_no_build_has_seen(manifest, tmp_path_factory):
    """Another 1,000 images: the greedy figures agree with the manifest within sampling error."""
    fresh = heldout_world(tmp_path_factory.mktemp("fresh"), 31337, 1000)
    found = heldout_figures(WEIGHTS_DIR, fresh)["captioner"]["greedy"]
    stated = manifest["figures"]["captioner"]["greedy"]
    for name in ACCURACIES:
        p = stated[name]
        # about 2,000 objects in 1,000 images; four binomial standard errors of the difference of
        # two such estimates (objects in one image are not independent, hence the margin)
        margin = 4 * math.sqrt(2 * p * (1 - p) / 2000)
        assert found[name] == pytest.approx(p, abs=margin), (name, found[name], p, margin)
