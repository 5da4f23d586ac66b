"""The BLIP-2 adapter: label masking, image tokens, and that the image matters."""

import numpy as np
import pytest
import torch
from PIL import Image

from captune.errors import CaptuneError
from captune.models.blip2 import Blip2Batcher, Blip2Captioner, Example
from captune.models.tiny import build_tiny_blip2


def images(n, seed=0):
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)) for _ in range(n)]


@pytest.fixture(scope="module", params=["opt", "t5"])
def tiny(request):
    model, processor = build_tiny_blip2(request.param)
    return request.param, model, processor, Blip2Batcher(processor, model.config)


def test_opt_label_masking_position_by_position():
    model, processor = build_tiny_blip2("opt")
    b = Blip2Batcher(processor, model.config)
    tok = processor.tokenizer
    ex = [Example(images(1)[0], "Caption:", "a red circle", "x"), Example(images(1)[0], "", "a blue square below", "y")]
    batch = b.train_batch(ex)
    q, img, eos = model.config.num_query_tokens, model.config.image_token_index, model.config.text_config.eos_token_id
    prompt = tok("Caption:")["input_ids"]           # </s> + prompt
    cap0 = tok(" a red circle", add_special_tokens=False)["input_ids"]
    cap1 = tok("a blue square below", add_special_tokens=False)["input_ids"]
    row0 = [img] * q + prompt + cap0 + [eos]
    row1 = [img] * q + [tok.bos_token_id] + cap1 + [eos]
    width = max(len(row0), len(row1))
    pad = tok.pad_token_id
    assert batch["input_ids"][0].tolist() == row0 + [pad] * (width - len(row0))
    assert batch["input_ids"][1].tolist() == row1 + [pad] * (width - len(row1))
    assert batch["labels"][0].tolist() == [-100] * (q + len(prompt)) + cap0 + [eos] + [-100] * (width - len(row0))
    assert batch["labels"][1].tolist() == [-100] * (q + 1) + cap1 + [eos] + [-100] * (width - len(row1))
    assert batch["attention_mask"][1].tolist() == [1] * len(row1) + [0] * (width - len(row1))
    # The end of caption is the language model's eos: "\n" as in the Salesforce OPT checkpoints.
    assert tok.decode([eos]) == "\n"


def test_t5_prompt_to_encoder_caption_only_to_labels():
    model, processor = build_tiny_blip2("t5")
    b = Blip2Batcher(processor, model.config)
    tok = processor.tokenizer
    ex = [Example(images(1)[0], "Describe the scene.", "a red circle", "x"), Example(images(1)[0], "", "a cat", "y")]
    batch = b.train_batch(ex)
    q, img = model.config.num_query_tokens, model.config.image_token_index
    enc0 = [img] * q + tok("Describe the scene.")["input_ids"]     # prompt + </s>
    enc1 = [img] * q + [tok.eos_token_id]
    assert batch["input_ids"][0].tolist() == enc0
    assert batch["input_ids"][1].tolist() == enc1 + [tok.pad_token_id] * (len(enc0) - len(enc1))
    lab0 = tok("a red circle")["input_ids"]
    lab1 = tok("a cat")["input_ids"]
    assert lab0[-1] == tok.eos_token_id
    assert batch["labels"][0].tolist() == lab0
    assert batch["labels"][1].tolist() == lab1 + [-100] * (len(lab0) - len(lab1))
    caption_ids = set(tok("a red circle", add_special_tokens=False)["input_ids"])
    assert not caption_ids & set(batch["input_ids"][0].tolist()), "the caption must not reach the encoder"


def test_generation_batch_pads_left_for_opt_only(tiny):
    family, _model, _processor, b = tiny
    g = b.generation_batch([Example(images(1)[0], "a long prompt here", None), Example(images(1)[0], "", None)])
    mask = g["attention_mask"][1].tolist()
    if family == "opt":
        assert mask[0] == 0 and mask[-1] == 1
    else:
        assert mask[0] == 1 and mask[-1] == 0


def test_swapping_images_changes_the_loss(tiny):
    _family, model, _processor, b = tiny
    cap = Blip2Captioner(model).eval()
    batch = b.train_batch([Example(im, "", c) for im, c in zip(images(2), ["a red circle", "a blue square"])])
    with torch.no_grad():
        loss = cap(**batch).loss
        swapped = cap(**dict(batch, pixel_values=batch["pixel_values"].flip(0))).loss
    assert abs(float(loss) - float(swapped)) > 1e-4


def test_own_forward_equals_transformers_forward(tiny):
    _family, model, _processor, b = tiny
    batch = b.train_batch([Example(im, "hi", c) for im, c in zip(images(2, 1), ["a red circle", "two cats"])])
    with torch.no_grad():
        ours = Blip2Captioner(model)(**batch).loss
        theirs = model(**batch).loss
    assert torch.allclose(ours, theirs, atol=1e-6)


def test_tokenizer_only_batch_is_refused(tiny):
    _family, model, processor, b = tiny
    enc = processor.tokenizer(["a red circle", "a cat"], return_tensors="pt", padding=True)
    pixels = b.train_batch([Example(im, "", "x") for im in images(2)])["pixel_values"]
    with pytest.raises(CaptuneError, match="image tokens per example"):
        Blip2Captioner(model)(enc["input_ids"], enc["attention_mask"], labels=enc["input_ids"], pixel_values=pixels)


def test_cached_features_path_builds_the_same_ids(tiny):
    _family, model, _processor, b = tiny
    exs = [Example(im, p, "a cap") for im, p in zip(images(2), ["Focus on: stage.", ""])]
    with_pixels = b.train_batch(exs)
    without = b.train_batch([Example(None, e.prompt, e.caption) for e in exs])
    assert torch.equal(with_pixels["input_ids"], without["input_ids"])
    assert "pixel_values" not in without
    cap = Blip2Captioner(model).eval()
    with torch.no_grad():
        vision = cap.vision_embeds(with_pixels["pixel_values"])
        a = cap(**with_pixels).loss
        c = cap(**without, vision_embeds=vision).loss
    assert torch.allclose(a, c, atol=1e-6)


def test_generate_slices_prompt_and_matches_transformers(tiny):
    family, model, _processor, b = tiny
    g = b.generation_batch([Example(im, p, None) for im, p in zip(images(2), ["a photo of", ""])])
    cap = Blip2Captioner(model).eval()
    ours = cap.generate(**g, max_new_tokens=5, num_beams=2)
    theirs = model.generate(**g, max_new_tokens=5, num_beams=2)
    if family == "opt":
        theirs = theirs[:, g["input_ids"].shape[1]:]
    assert torch.equal(ours, theirs)
    assert model.config.image_token_index not in ours.tolist()[0]
