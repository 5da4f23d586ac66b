"""CLIPScore, RefCLIPScore and the CLIP win rate against a direct computation on a tiny CLIP."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from tiny_encoders import build_tiny_clip, write_png

from captune.metrics import MetricResources
from captune.metrics import clipscore as cs
from captune.metrics.base import MetricUnavailable, spec_for
from captune.metrics.encoders import load_encoder

PREDICTIONS = ["a red circle on a white background", "a dog runs on the grass", "two yellow stars"]
REFERENCES = [
    ["a red circle", "a circle on white"],
    ["a dog with a red ball", "the dog runs", "a dog on grass"],
    ["two small yellow stars above a square"],
]


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    return build_tiny_clip(tmp_path_factory.mktemp("clip"))


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    return [write_png(folder / f"img{i}.png", seed=i) for i in range(3)]


def _direct(clip_dir, image_paths, texts):
    """Unit embeddings one input at a time, straight from transformers (no batching, no cache)."""
    from PIL import Image
    from transformers import AutoTokenizer, CLIPImageProcessor, CLIPModel

    model = CLIPModel.from_pretrained(clip_dir).eval()
    tok = AutoTokenizer.from_pretrained(clip_dir)
    proc = CLIPImageProcessor.from_pretrained(clip_dir)

    def unit(out):
        feats = out if isinstance(out, torch.Tensor) else out.pooler_output
        return (feats / feats.norm(dim=-1, keepdim=True))[0].numpy()

    with torch.no_grad():
        imgs = [
            unit(model.get_image_features(**proc(images=Image.open(p).convert("RGB"), return_tensors="pt")))
            for p in image_paths
        ]
        txts = [unit(model.get_text_features(**tok(t, return_tensors="pt"))) for t in texts]
    return np.array(imgs), np.array(txts)


def test_clipscore_and_refclipscore_equal_direct_computation(clip_dir, images):
    result = cs.clipscore(PREDICTIONS, REFERENCES, images, clip_model=str(clip_dir), batch_size=2)
    img, cand = _direct(clip_dir, images, ["A photo depicts " + p for p in PREDICTIONS])
    for i, refs in enumerate(REFERENCES):
        expected = 2.5 * max(float(img[i] @ cand[i]), 0.0)
        _, ref = _direct(clip_dir, [], ["A photo depicts " + r for r in refs])
        text_side = max(float((ref @ cand[i]).max()), 0.0)
        harmonic = 2 * expected * text_side / (expected + text_side) if expected + text_side else 0.0
        assert result.per_item[i]["clipscore"] == pytest.approx(expected, abs=1e-5)
        assert result.per_item[i]["refclipscore"] == pytest.approx(harmonic, abs=1e-5)
    assert result.corpus["clipscore"] == pytest.approx(np.mean([x["clipscore"] for x in result.per_item]))
    assert result.corpus["refclipscore"] == pytest.approx(
        np.mean([x["refclipscore"] for x in result.per_item])
    )
    assert "A photo depicts" in result.info["clipscore"]


def test_negative_cosine_scores_zero(images, tmp_path):
    from transformers import CLIPModel

    folder = build_tiny_clip(tmp_path / "clip", seed=3)
    text = "a red circle"
    img, txt = _direct(folder, images[:1], ["A photo depicts " + text])
    if float(img[0] @ txt[0]) > 0:  # flip every text embedding so this pair's cosine is negative
        model = CLIPModel.from_pretrained(folder)
        with torch.no_grad():
            model.text_projection.weight.neg_()
        model.save_pretrained(folder)
    result = cs.clipscore([text], [[text]], images[:1], clip_model=str(folder))
    assert result.per_item[0]["clipscore"] == 0.0
    assert result.per_item[0]["refclipscore"] == 0.0  # harmonic mean of 0 and a text cosine of 1


def _count_embedded(monkeypatch, enc, method):
    counter = {"n": 0}
    original = getattr(enc.model, method)

    def counting(*args, **kwargs):
        batch = kwargs.get("pixel_values", kwargs.get("input_ids"))
        counter["n"] += batch.shape[0]
        return original(*args, **kwargs)

    monkeypatch.setattr(enc.model, method, counting)
    return counter


def test_image_cache_is_keyed_by_content(clip_dir, images, tmp_path, monkeypatch):
    enc = load_encoder(str(clip_dir), None, images=True)
    res = MetricResources()
    embedded = _count_embedded(monkeypatch, enc, "get_image_features")
    first = cs.clip_embed_images(images, enc, resources=res)
    assert embedded["n"] == 3
    assert np.array_equal(cs.clip_embed_images(images, enc, resources=res), first)
    assert embedded["n"] == 3  # second call: all hits

    renamed = shutil.copy(images[0], tmp_path / "same-bytes-other-name.png")
    assert np.array_equal(cs.clip_embed_images([renamed], enc, resources=res)[0], first[0])
    assert embedded["n"] == 3  # same bytes under another name: hit

    changed = write_png(tmp_path / "img0.png", seed=99)
    assert not np.allclose(cs.clip_embed_images([changed], enc, resources=res)[0], first[0])
    assert embedded["n"] == 4  # different bytes: miss

    cs.clip_embed_images(images, enc)
    assert embedded["n"] == 7  # without resources nothing is kept


def test_embedding_caches_stay_within_their_bound(clip_dir, images):
    enc = load_encoder(str(clip_dir), None, images=True)
    res = MetricResources(image_embeddings=2, text_embeddings=3)
    bounded = cs.clip_embed_images(images, enc, resources=res)
    cs.clip_embed_texts([f"caption {i}" for i in range(10)], enc, resources=res)
    assert len(res.image_embeddings) == 2 and len(res.text_embeddings) == 3
    np.testing.assert_array_equal(bounded, cs.clip_embed_images(images, enc))  # same values, fewer kept
    res.close()
    assert len(res.image_embeddings) == 0 and len(res.text_embeddings) == 0


def test_repeated_evaluation_embeds_nothing_new(clip_dir, images, monkeypatch):
    res = MetricResources()
    enc = load_encoder(str(clip_dir), None, images=True, resources=res)
    first = cs.clipscore(PREDICTIONS, REFERENCES, images, clip_model=str(clip_dir), resources=res)
    img_calls = _count_embedded(monkeypatch, enc, "get_image_features")
    txt_calls = _count_embedded(monkeypatch, enc, "get_text_features")
    again = cs.clipscore(PREDICTIONS, REFERENCES, images, clip_model=str(clip_dir), resources=res)
    win = cs.clip_win_rate(PREDICTIONS, REFERENCES, images, clip_model=str(clip_dir), resources=res)
    assert (img_calls["n"], txt_calls["n"]) == (0, 0)
    assert again.per_item == first.per_item
    assert len(win.per_item) == 3


def test_win_rate_compares_with_best_reference(clip_dir, images):
    predictions = ["a red circle", "two yellow stars", "a dog runs"]
    references = [["a red circle"], ["a cat sitting", "rubber boots"], ["the man", "orange"]]
    result = cs.clip_win_rate(predictions, references, images, clip_model=str(clip_dir))
    img, cand = _direct(clip_dir, images, ["A photo depicts " + p for p in predictions])
    assert result.per_item[0]["clip_win_rate"] == 0.5  # the prediction is one of the references: tie
    for i in (1, 2):
        _, ref = _direct(clip_dir, [], ["A photo depicts " + r for r in references[i]])
        expected = float(float(img[i] @ cand[i]) > float((ref @ img[i]).max()))
        assert result.per_item[i]["clip_win_rate"] == expected
    assert result.corpus["clip_win_rate"] == pytest.approx(
        np.mean([x["clip_win_rate"] for x in result.per_item])
    )


def test_items_without_references_get_clipscore_only(clip_dir, images):
    result = cs.clipscore(PREDICTIONS[:2], [REFERENCES[0], []], images[:2], clip_model=str(clip_dir))
    assert set(result.per_item[1]) == {"clipscore"}
    assert result.corpus["refclipscore"] == pytest.approx(result.per_item[0]["refclipscore"])


def test_similarity_matrix_matches_embeddings(clip_dir, images):
    texts = ["a dog", "two stars", "a red circle on white"]
    sims = cs.clip_similarity(images, texts, str(clip_dir))
    img, txt = _direct(clip_dir, images, texts)
    assert sims.shape == (3, 3)
    np.testing.assert_allclose(sims, img @ txt.T, atol=1e-5)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu(clip_dir, images):
    cpu = cs.clipscore(PREDICTIONS, REFERENCES, images, clip_model=str(clip_dir), device="cpu")
    gpu = cs.clipscore(PREDICTIONS, REFERENCES, images, clip_model=str(clip_dir), device="cuda")
    for a, b in zip(cpu.per_item, gpu.per_item):
        assert a == pytest.approx(b, abs=1e-4)


def test_metrics_are_registered_as_needing_images():
    assert spec_for("refclipscore").needs_images and spec_for("clip_win_rate").needs_images


def test_unavailable_without_images_model_or_weights(clip_dir, images, tmp_path):
    with pytest.raises(MetricUnavailable, match="images"):
        cs.clipscore(PREDICTIONS, REFERENCES, None, clip_model=str(clip_dir))
    with pytest.raises(MetricUnavailable, match="--clip-model"):
        cs.clip_win_rate(PREDICTIONS, REFERENCES, images)
    missing = tmp_path / "clip-weights-not-here"
    with pytest.raises(MetricUnavailable, match="clip-weights-not-here"):
        cs.clipscore(PREDICTIONS, REFERENCES, images, clip_model=str(missing))
