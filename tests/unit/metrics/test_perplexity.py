import math

import pytest

from captune.metrics.base import MetricUnavailable
from captune.metrics.perplexity import perplexity


def test_perplexity_matches_the_training_loss(colour_data):
    """With one reference per image, corpus perplexity is exp of the token-weighted loss."""
    import torch

    from captune.data.images import load_image
    from captune.data.records import read_records
    from captune.models.blip2 import Blip2Batcher, Blip2Captioner, Example
    from captune.models.tiny import build_tiny_blip2

    records = read_records(colour_data)[:4]
    images = [str(colour_data.parent / r.image) for r in records]
    refs = [[r.captions[0]] for r in records]
    result = perplexity(["x"] * 4, refs, images, caption_model="tiny-blip2-opt")
    model, processor = build_tiny_blip2("opt")
    cap = Blip2Captioner(model).eval()
    b = Blip2Batcher(processor, model.config)
    nll = tokens = 0.0
    for img, ref in zip(images, refs):
        batch = b.train_batch([Example(load_image(img), "", ref[0])])
        n = int((batch["labels"][:, 1:] != -100).sum())
        with torch.no_grad():
            nll += float(cap(**batch).loss) * n
        tokens += n
    assert result.corpus["perplexity"] == pytest.approx(math.exp(nll / tokens), rel=1e-5)
    assert len(result.per_item) == 4 and all(v["perplexity"] > 1 for v in result.per_item)


def test_perplexity_needs_a_model_and_images():
    with pytest.raises(MetricUnavailable, match="caption_model"):
        perplexity(["a"], [["a"]], ["x.png"])
    with pytest.raises(MetricUnavailable, match="images"):
        perplexity(["a"], [["a"]], None, caption_model="tiny-blip2-opt")


def test_the_captioner_is_kept_by_the_callers_resources_only(colour_data, monkeypatch):
    from captune.data.records import read_records
    from captune.metrics import MetricResources
    from captune.metrics import perplexity as module

    loads = []
    real = module._load
    monkeypatch.setattr(module, "_load", lambda *a: loads.append(a) or real(*a))
    records = read_records(colour_data)[:2]
    images, refs = [str(colour_data.parent / r.image) for r in records], [r.captions[:1] for r in records]
    resources = MetricResources()
    first = perplexity(["x"] * 2, refs, images, caption_model="tiny-blip2-opt", resources=resources)
    again = perplexity(["x"] * 2, refs, images, caption_model="tiny-blip2-opt", resources=resources)
    assert len(loads) == 1 and len(resources.caption_models) == 1 and again.corpus == first.corpus
    perplexity(["x"] * 2, refs, images, caption_model="tiny-blip2-opt")  # no resources: loads, keeps nothing
    assert len(loads) == 2
    resources.close()
    assert len(resources.caption_models) == 0
