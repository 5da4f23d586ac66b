"""The BLIP-2 adapter: label masking position by position for OPT and T5 (the tests every family
passes are in test_families.py)."""

import numpy as np
from PIL import Image

from captune.models.blip2 import Blip2Batcher, Example
from captune.models.tiny import build_tiny_blip2


def images(n, seed=0):
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)) for _ in range(n)]


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
