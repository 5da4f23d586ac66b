"""CLIP by name: the shipped ``shapes-clip`` through the registry, for ``data enhance`` and the metrics."""

from __future__ import annotations

import numpy as np
import pytest

from captune.demo.render import render
from captune.demo.scene import Obj, Scene
from captune.errors import ConfigError
from captune.models.clip import load_clip, registered_clip


def _red_circle():
    return render(Scene((Obj("circle", "red", "solid", "large", 0.5, 0.5),), (), "grey"), 64)


def test_shapes_clip_loads_by_name_and_by_folder_with_the_same_vectors():
    from captune.demo.shipped import shipped_path

    by_name, by_folder = load_clip("shapes-clip", "cpu"), load_clip(str(shipped_path("clip")), "cpu")
    image = [_red_circle()]
    texts = ["a red circle", "a blue circle"]
    assert np.allclose(by_name.embed_images(image), by_folder.embed_images(image), atol=1e-6)
    assert np.allclose(by_name.embed_texts(texts), by_folder.embed_texts(texts), atol=1e-6)
    cos = by_name.embed_images(image) @ by_name.embed_texts(texts).T
    assert cos[0, 0] > cos[0, 1]  # the red circle is red
    assert by_name.logit_scale > 1


def test_a_captioner_name_is_refused_as_a_clip():
    with pytest.raises(ConfigError, match="captioner, not a CLIP"):
        registered_clip("tiny-blip2-opt")
    assert registered_clip("openai/clip-vit-base-patch32") is None


def test_the_metrics_take_shapes_clip_by_name(tmp_path):
    from captune.metrics.clipscore import clipscore

    image = tmp_path / "red.png"
    _red_circle().save(image)
    right = clipscore(["a red circle"], [["a large red circle"]], [image], clip_model="shapes-clip").corpus
    wrong = clipscore(["a blue circle"], [["a large red circle"]], [image], clip_model="shapes-clip").corpus
    assert right["clipscore"] > wrong["clipscore"]
