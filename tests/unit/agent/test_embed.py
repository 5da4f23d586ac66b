"""The agent's CLIP: a missing model is a clear error; open_clip models go through the same interface."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
import torch

from captune.agent.config import EmbeddingsSection
from captune.agent.embed import AgentClip
from captune.errors import CaptuneError


def test_a_missing_model_names_itself_and_how_to_get_it(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    clip = AgentClip(EmbeddingsSection(model="openai/clip-vit-base-patch32"))
    with pytest.raises(CaptuneError, match="openai/clip-vit-base-patch32") as err:
        clip.embed_texts(["a photo"])
    assert "download" in str(err.value).lower() or "hf download" in str(err.value)


def test_a_captioner_is_not_taken_for_a_clip():
    with pytest.raises(CaptuneError, match="is a captioner, not a CLIP"):
        AgentClip(EmbeddingsSection(model="shapes-blip2-opt")).embed_texts(["x"])


def test_open_clip_backend_without_the_package_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "open_clip", None)
    with pytest.raises(CaptuneError, match="pip install open_clip_torch"):
        AgentClip(EmbeddingsSection(backend="open_clip", model="ViT-B-32", pretrained="x")).embed_texts(["x"])


def test_open_clip_backend_embeds_through_encode_image_and_encode_text(monkeypatch):
    class Model(torch.nn.Module):
        logit_scale = torch.tensor(np.log(100.0))

        def encode_image(self, pixels):
            return pixels.flatten(1)[:, :4] + 1.0

        def encode_text(self, tokens):
            return tokens.float()

    fake = types.SimpleNamespace(
        create_model_and_transforms=lambda name, pretrained, device: (Model(), None, lambda im: torch.ones(3, 2, 2)),
        get_tokenizer=lambda name: lambda texts: torch.tensor([[1.0, 2.0, 2.0, 0.0]] * len(texts)))
    monkeypatch.setitem(sys.modules, "open_clip", fake)
    clip = AgentClip(EmbeddingsSection(backend="open_clip", model="ViT-B-32", pretrained="laion2b_s34b_b79k"))
    from PIL import Image

    images = clip.embed_images([Image.new("RGB", (8, 8))])
    texts = clip.embed_texts(["a", "b"])
    assert images.shape == (1, 4) and np.allclose(images, 0.5)
    assert texts.shape == (2, 4) and np.allclose(texts[0], [1 / 3, 2 / 3, 2 / 3, 0])
    assert clip.logit_scale == pytest.approx(100.0)
