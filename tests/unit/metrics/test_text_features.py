"""Every stage that embeds texts with an image-text model (CLIP metrics, ``captune data enhance``,
the agent's labels) pads them as the model was trained: a text's vector never depends on its batch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tiny_encoders import build_tiny_siglip

from captune.agent.config import EmbeddingsSection
from captune.agent.embed import AgentClip
from captune.metrics import clipscore as cs
from captune.models.clip import load_clip

SHORT, LONG = "a red circle", "a cat is sitting on a wooden chair near the window"


@pytest.fixture(scope="module")
def siglip(tmp_path_factory):
    return build_tiny_siglip(tmp_path_factory.mktemp("siglip") / "siglip")


def _full_length(path) -> np.ndarray:
    from transformers import AutoTokenizer, SiglipModel

    tok, model = AutoTokenizer.from_pretrained(path), SiglipModel.from_pretrained(path).eval()
    with torch.no_grad():
        out = model.get_text_features(**tok([SHORT], padding="max_length", max_length=16, return_tensors="pt"))
    full = out if isinstance(out, torch.Tensor) else out.pooler_output
    return (full / full.norm(dim=-1, keepdim=True))[0].numpy()


@pytest.mark.parametrize("stage", ["metrics", "data enhance", "agent"])
def test_siglip_texts_embed_alike_alone_and_in_a_batch(siglip, stage):
    embed = {
        "metrics": lambda texts: cs.clip_embed_texts(texts, str(siglip)),
        "data enhance": lambda texts: load_clip(str(siglip), "cpu").embed_texts(texts),
        "agent": AgentClip(EmbeddingsSection(model=str(siglip), device="cpu")).embed_texts,
    }[stage]
    expected = _full_length(siglip)
    np.testing.assert_allclose(embed([SHORT])[0], expected, atol=1e-5)
    np.testing.assert_allclose(embed([SHORT, LONG])[0], expected, atol=1e-5)
