"""The LLaVA-1.5 adapter: the chat format, image tokens from the processor, and which parts train."""

import pytest
from PIL import Image

from captune.errors import CaptuneError, ConfigError
from captune.models.family import Example
from captune.models.llava import LlavaBatcher, ensure_image_tokens, expected_image_tokens
from captune.models.peft import FinetuneConfig, apply_finetuning, trainable_report
from captune.models.tiny import build_tiny_llava


def test_chat_format_and_labels_position_by_position():
    model, processor = build_tiny_llava()
    b = LlavaBatcher(processor, model.config)
    tok = processor.tokenizer
    n = expected_image_tokens(model.config)
    batch = b.train_batch([Example(Image.new("RGB", (40, 30), "red"), "Colour of {x}:", "a red circle"),
                           Example(Image.new("RGB", (40, 30), "blue"), "", "a cat")])
    image = "<image>" * n
    prompt0 = tok(f"USER: {image}\nColour of {{x}}: ASSISTANT:")["input_ids"]
    row0 = tok(f"USER: {image}\nColour of {{x}}: ASSISTANT: a red circle")["input_ids"] + [tok.eos_token_id]
    row1 = tok(f"USER: {image}\n ASSISTANT: a cat")["input_ids"] + [tok.eos_token_id]
    assert row0[0] == tok.bos_token_id and row0[: len(prompt0)] == prompt0
    assert batch["input_ids"][0].tolist() == row0
    assert batch["input_ids"][1].tolist() == row1 + [tok.pad_token_id] * (len(row0) - len(row1))
    assert batch["labels"][0].tolist() == [-100] * len(prompt0) + row0[len(prompt0):]
    assert tok.decode(row0[len(prompt0):]) == " a red circle</s>"
    assert batch["input_ids"][0].tolist().count(model.config.image_token_id) == n == 16


def test_a_processor_saved_without_patch_size_is_repaired():
    model, processor = build_tiny_llava()
    processor.patch_size = processor.vision_feature_select_strategy = None
    processor.num_additional_image_tokens = 0
    ensure_image_tokens(model, processor)
    ids = processor(images=[Image.new("RGB", (32, 32))], text=["<image>"])["input_ids"][0]
    assert ids.count(model.config.image_token_id) == expected_image_tokens(model.config)


def test_a_processor_one_image_token_short_is_refused():
    """llava-hf processors saved without num_additional_image_tokens write 575 tokens for 576 features."""
    model, processor = build_tiny_llava()
    processor.num_additional_image_tokens = 0
    with pytest.raises(CaptuneError, match="writes 15 image tokens per image but the model makes 16"):
        ensure_image_tokens(model, processor)


def _trained_names(net):
    return {n.removeprefix("base_model.model.") for n, p in net.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("projector", ["frozen", "full", "lora"])
def test_lora_on_the_language_model_with_the_projector_switch(projector):
    net = apply_finetuning(build_tiny_llava()[0], FinetuneConfig(targets="all_linear", projector=projector))
    trained = _trained_names(net)
    adapted = {n.split(".lora_")[0].rsplit(".", 1)[-1] for n in trained if ".lora_" in n and "language_model" in n}
    assert adapted == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    assert not any("vision_tower" in n for n in trained)
    projector_params = {n for n in trained if "multi_modal_projector" in n}
    report = trainable_report(net)
    if projector == "frozen":
        assert not projector_params and set(report.by_part) == {"lm"}
    elif projector == "full":
        assert projector_params == {f"model.multi_modal_projector.linear_{i}.{w}" for i in (1, 2)
                                    for w in ("weight", "bias")}
        assert set(report.by_part) == {"lm", "projector"}
    else:
        assert projector_params and all(".lora_" in n for n in projector_params)


def test_query_value_targets_and_a_part_llava_lacks():
    net = apply_finetuning(build_tiny_llava()[0], FinetuneConfig())
    assert {n.split(".lora_")[0].rsplit(".", 1)[-1] for n in _trained_names(net)} == {"q_proj", "v_proj"}
    with pytest.raises(ConfigError, match="finetune.qformer: lora, but LLaVA has no qformer.*vision, projector, lm"):
        apply_finetuning(build_tiny_llava()[0], FinetuneConfig(qformer="lora"))
