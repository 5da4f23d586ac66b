"""The BLIP adapter: captions start with [DEC] and end with [SEP], the prompt is not supervised."""

import pytest
from PIL import Image

from captune.errors import ConfigError
from captune.models.blip import BlipBatcher
from captune.models.family import Example
from captune.models.peft import FinetuneConfig, apply_finetuning, trainable_report
from captune.models.tiny import build_tiny_blip, build_tiny_blip2


def test_caption_start_end_and_labels_position_by_position():
    model, processor = build_tiny_blip()
    b = BlipBatcher(processor, model.config)
    tok = processor.tokenizer
    batch = b.train_batch([Example(Image.new("RGB", (40, 30), "red"), "a picture of", "a red circle"),
                           Example(Image.new("RGB", (40, 30), "blue"), "", "a cat")])
    dec, sep, pad = tok.convert_tokens_to_ids(["[DEC]", "[SEP]", "[PAD]"])
    prompt = [dec] + tok("a picture of", add_special_tokens=False)["input_ids"]
    caption0 = tok("a red circle", add_special_tokens=False)["input_ids"] + [sep]
    caption1 = tok("a cat", add_special_tokens=False)["input_ids"] + [sep]
    width = len(prompt) + len(caption0)
    assert batch["input_ids"][0].tolist() == prompt + caption0
    assert batch["input_ids"][1].tolist() == [dec] + caption1 + [pad] * (width - 1 - len(caption1))
    assert batch["labels"][0].tolist() == [-100] * len(prompt) + caption0
    assert batch["labels"][1].tolist() == [-100] + caption1 + [-100] * (width - 1 - len(caption1))
    assert (dec, sep) == (model.config.text_config.bos_token_id, model.config.text_config.sep_token_id)


def test_lora_on_the_text_decoder_reaches_its_cross_attention():
    net = apply_finetuning(build_tiny_blip()[0], FinetuneConfig())
    adapted = {n.split(".lora_")[0] for n, p in net.named_parameters() if p.requires_grad}
    assert any(".crossattention.self.query" in n for n in adapted) and all("text_decoder" in n for n in adapted)
    assert set(trainable_report(net).by_part) == {"lm"}


@pytest.mark.parametrize("build,part,name", [(build_tiny_blip, "qformer", "BLIP"),
                                             (lambda: build_tiny_blip2("opt"), "projector", "BLIP-2")])
def test_a_part_the_family_lacks_is_refused(build, part, name):
    with pytest.raises(ConfigError, match=rf"finetune.{part}: full, but {name} has no {part}.*set finetune.{part}: frozen"):
        apply_finetuning(build()[0], FinetuneConfig(**{part: "full"}))
