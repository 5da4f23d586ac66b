"""The adapter tests every captioning family passes (BLIP-2 with OPT and T5, LLaVA-1.5, BLIP):
the image matters, labels sit on the caption only, generation returns only new tokens (left
padding for decoder-only models), cached features give the same loss, and a batch built
without the family's batcher is refused."""

import numpy as np
import pytest
import torch
from PIL import Image

from captune.errors import CaptuneError
from captune.models.family import Example, adapt, family_for
from captune.models.tiny import build_tiny_blip, build_tiny_blip2, build_tiny_llava

BUILDERS = {
    "opt": lambda: build_tiny_blip2("opt"),
    "t5": lambda: build_tiny_blip2("t5"),
    "llava": build_tiny_llava,
    "blip": build_tiny_blip,
}


def images(n, seed=0):
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)) for _ in range(n)]


@pytest.fixture(scope="module", params=list(BUILDERS))
def tiny(request):
    model, processor = BUILDERS[request.param]()
    captioner, batcher = adapt(model, processor)
    return request.param, model, processor, captioner.eval(), batcher


def test_the_family_is_found_from_the_config(tiny):
    name, model, *_ = tiny
    expected = {"opt": "BLIP-2", "t5": "BLIP-2", "llava": "LLaVA", "blip": "BLIP"}[name]
    assert family_for(model.config).name == expected


def test_an_unknown_architecture_is_named_with_the_supported_ones():
    from transformers import CLIPConfig

    with pytest.raises(CaptuneError, match=r"model type 'clip' is not a captioning family.*llava"):
        family_for(CLIPConfig())


def test_labels_are_the_caption_and_its_end_only(tiny):
    """Nothing of the prompt, the image tokens or the padding is supervised; what is decodes to the caption."""
    _name, _model, _processor, _captioner, b = tiny
    captions = ["a red circle above a blue square", "a cat"]
    batch = b.train_batch([Example(im, p, c) for im, p, c in zip(images(2), ["Focus on: stage.", ""], captions)])
    labels = batch["labels"]
    for i, caption in enumerate(captions):
        supervised = labels[i] != -100
        assert b.decode(labels[i][supervised][None])[0] == caption
        if b.decoder_only:  # labels align with the input ids
            assert torch.equal(labels[i][supervised], batch["input_ids"][i][supervised])
            assert not (supervised & (batch["attention_mask"][i] == 0)).any()
            if b.image_token_id is not None:
                assert not (supervised & (batch["input_ids"][i] == b.image_token_id)).any()
    prompt_only = set(b.tokenizer("Focus on: stage.", add_special_tokens=False)["input_ids"]) - set(
        b.tokenizer(" " + captions[0], add_special_tokens=False)["input_ids"])
    assert prompt_only and not prompt_only & set(labels[0][labels[0] != -100].tolist())


def test_generation_batch_pads_left_for_decoder_only_models(tiny):
    name, _model, _processor, _captioner, b = tiny
    g = b.generation_batch([Example(images(1)[0], "a long prompt here", None), Example(images(1)[0], "", None)])
    mask = g["attention_mask"][1].tolist()
    assert b.decoder_only == (name != "t5")
    if b.decoder_only:
        assert mask[0] == 0 and mask[-1] == 1
    else:
        assert mask[0] == 1 and mask[-1] == 0


def test_swapping_images_changes_the_loss(tiny):
    *_, cap, b = tiny
    batch = b.train_batch([Example(im, "", c) for im, c in zip(images(2), ["a red circle", "a blue square"])])
    with torch.no_grad():
        loss = cap(**batch).loss
        swapped = cap(**dict(batch, pixel_values=batch["pixel_values"].flip(0))).loss
    assert abs(float(loss) - float(swapped)) > 1e-4


def test_own_forward_equals_transformers_forward(tiny):
    _name, model, _processor, cap, b = tiny
    batch = b.train_batch([Example(im, "hi", c) for im, c in zip(images(2, 1), ["a red circle", "two cats"])])
    with torch.no_grad():
        ours = cap(**batch).loss
        theirs = model(**batch).loss
    assert torch.allclose(ours, theirs, atol=1e-6)


REFUSAL = {"opt": "image tokens per example", "t5": "image tokens per example",
           "llava": "image tokens per example", "blip": r"not BLIP's caption start \[DEC\]"}


def test_tokenizer_only_batch_is_refused(tiny):
    """Inputs from the tokenizer alone lack the image tokens (BLIP: start with [CLS], not [DEC])."""
    name, _model, processor, cap, b = tiny
    enc = processor.tokenizer(["a red circle", "a cat"], return_tensors="pt", padding=True)
    pixels = b.train_batch([Example(im, "", "x") for im in images(2)])["pixel_values"]
    with pytest.raises(CaptuneError, match=REFUSAL[name]):
        cap(enc["input_ids"], enc["attention_mask"], labels=enc["input_ids"], pixel_values=pixels)


def test_cached_features_path_builds_the_same_ids(tiny):
    *_, cap, b = tiny
    exs = [Example(im, p, "a cap") for im, p in zip(images(2), ["Focus on: stage.", ""])]
    with_pixels = b.train_batch(exs)
    without = b.train_batch([Example(None, e.prompt, e.caption) for e in exs])
    assert torch.equal(with_pixels["input_ids"], without["input_ids"])
    assert "pixel_values" not in without
    with torch.no_grad():
        vision = cap.vision_embeds(with_pixels["pixel_values"])
        a = cap(**with_pixels).loss
        c = cap(**without, vision_embeds=vision).loss
    assert torch.allclose(a, c, atol=1e-6)


def _transformers_generate(name, model, processor, g, examples, **kw):
    """What transformers itself generates for the batch, as new tokens only (one row per example)."""
    if name == "blip":  # BLIP's generate swaps the processor's [CLS] for [DEC] and drops its [SEP]
        rows = []
        for e in examples:
            enc = processor(images=[e.image], text=[e.prompt] if e.prompt else None, return_tensors="pt")
            out = model.generate(**enc, **kw)
            rows.append(out[0, enc["input_ids"].shape[1] - 1 if e.prompt else 1:].tolist())
        return rows
    out = model.generate(**g, **kw)
    return (out[:, g["input_ids"].shape[1]:] if name != "t5" else out).tolist()


def _strip(row, pad):
    while row and row[-1] == pad:
        row = row[:-1]
    return row


def test_generate_returns_new_tokens_only_as_transformers_does(tiny):
    name, model, processor, cap, b = tiny
    examples = [Example(im, p, None) for im, p in zip(images(2), ["a photo of", "a photo of"])]
    g = b.generation_batch(examples)
    ours = cap.generate(**g, max_new_tokens=5, num_beams=2)
    theirs = _transformers_generate(name, model, processor, g, examples, max_new_tokens=5, num_beams=2)
    pad = b.pad_token_id
    assert [_strip(r, pad) for r in ours.tolist()] == [_strip(r, pad) for r in theirs]
    # new tokens only (no prompt, no image tokens); T5's output starts with its decoder start token
    assert ours.shape[1] <= 5 + (name == "t5")


def test_batched_generation_equals_one_image_at_a_time(tiny):
    """Prompts of different lengths in one batch: left padding must not change any caption."""
    *_, cap, b = tiny
    examples = [Example(im, p, None) for im, p in zip(images(3, 2), ["Colour of the spring fair:", "", "hi"])]
    batched = cap.generate(**b.generation_batch(examples), max_new_tokens=6, num_beams=1)
    alone = [cap.generate(**b.generation_batch([e]), max_new_tokens=6, num_beams=1)[0] for e in examples]
    assert b.decode(batched) == b.decode(torch.nn.utils.rnn.pad_sequence(alone, batch_first=True))
