"""Captioning families: the one interface training, validation and generation use for every architecture.

A family is one transformers architecture with its adapter module, which defines ``FAMILY``:
BLIP-2 (``captune.models.blip2``), LLaVA-1.5 (``captune.models.llava``) and BLIP
(``captune.models.blip``). ``family_for(config)`` finds it from ``config.model_type``, and
``adapt`` wraps a loaded model:

    captioner, batcher = adapt(model, processor)       # any family, plain or PEFT-wrapped
    loss = captioner(**batcher.train_batch(examples)).loss
    new_ids = captioner.generate(**batcher.generation_batch(examples), max_new_tokens=20)
    captions = batcher.decode(new_ids)                 # the prompt is never part of them

What each family provides:

- ``Family``: its transformers class, its trainable parts (``finetune`` keys -> module-name
  prefixes), LoRA target presets, the modules QLoRA leaves unquantized, and ``prepare`` (make the
  processor and the model agree on image tokens; a batch without them silently ignores the image);
- a ``Captioner`` (``nn.Module``): ``forward`` returns the caption loss (labels only on the
  caption), ``generate`` returns the new tokens only, ``vision_embeds`` is the frozen vision
  encoder's output (what the feature cache stores), ``vision`` the encoder module;
- a batcher: ``train_batch``, ``generation_batch`` (left padding for decoder-only language models),
  ``decode``, and ``image_token_id`` (None for a family without image tokens, such as BLIP, whose
  decoder cross-attends to the image).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from captune.errors import CaptuneError

MODEL_TYPES = {"blip-2": "captune.models.blip2", "llava": "captune.models.llava", "blip": "captune.models.blip"}
"""``config.model_type`` -> the adapter module defining ``FAMILY``."""


@dataclass
class Example:
    image: Any
    """A PIL image (or anything the image processor takes); None when its vision features come from the cache."""
    prompt: str = ""
    caption: str | None = None
    image_id: str = ""


@dataclass(frozen=True)
class Family:
    name: str
    """How errors and the model card name it: ``BLIP-2``, ``LLaVA``, ``BLIP``."""
    model_class: str
    """The transformers class that loads it, e.g. ``LlavaForConditionalGeneration``."""
    parts: dict[str, tuple[str, ...]]
    """``finetune`` part -> the module-name prefixes (in the transformers model) that make it up."""
    targets: dict[str, dict[str, list[str]]]
    """Part (or ``part:language model``) -> LoRA target presets ``query_value`` and ``all_linear``."""
    quantization_skip: tuple[str, ...]
    """Modules QLoRA keeps in full precision (everything but the language model)."""
    captioner: type = field(compare=False, repr=False)
    """The ``Captioner`` class: ``captioner(model)``."""
    batcher: type = field(compare=False, repr=False)
    """The batcher class: ``batcher(processor, config, max_prompt_tokens, max_caption_tokens)``."""
    prepare: Callable[[Any, Any], None] = field(compare=False, repr=False)
    """``prepare(model, processor)``: make them agree on image tokens, repairing older checkpoints."""
    language_model: Callable[[Any], str] = field(compare=False, repr=False)
    """``config -> str``: the language model's kind (``opt``, ``t5``, ``llama``, ``bert``)."""

    def lora_presets(self, part: str, config) -> dict[str, list[str]]:
        return self.targets.get(f"{part}:{self.language_model(config)}") or self.targets[part]

    def transformers_class(self):
        import transformers

        return getattr(transformers, self.model_class)


def family_for(config) -> Family:
    """The family of a transformers config (``model.config``), or an error naming the supported ones."""
    model_type = getattr(config, "model_type", None)
    if model_type not in MODEL_TYPES:
        names = ", ".join(f"{t} ({m.rsplit('.', 1)[-1]})" for t, m in MODEL_TYPES.items())
        raise CaptuneError(f"model type {model_type!r} is not a captioning family captune supports ({names}); "
                           "pass a BLIP-2, LLaVA-1.5 or BLIP checkpoint")
    return importlib.import_module(MODEL_TYPES[model_type]).FAMILY


def base_model(model):
    """The transformers model inside a PEFT wrapper (or the model itself)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def adapt(model, processor, max_prompt_tokens: int = 64, max_caption_tokens: int = 48):
    """``(captioner, batcher)`` for a loaded model of any family (plain or PEFT-wrapped)."""
    config = base_model(model).config
    family = family_for(config)
    return family.captioner(model), family.batcher(processor, config, max_prompt_tokens, max_caption_tokens)


def pad_rows(rows: list[list[int]], value: int, left: bool):
    """``(ids, attention_mask)`` ``[B, T]`` tensors, each row padded with ``value`` on the left or the right."""
    import torch

    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), value, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        sl = slice(width - len(r), width) if left else slice(0, len(r))
        ids[i, sl] = torch.tensor(r, dtype=torch.long)
        mask[i, sl] = 1
    return ids, mask


def with_pixels(batch: dict, pixels) -> dict:
    """``batch`` with ``pixel_values`` added when there are pixels (none when features come from the cache)."""
    if pixels is not None:
        batch["pixel_values"] = pixels
    return batch


class PromptBatcher:
    """Generation batches and decoding shared by every family's batcher; a subclass gives
    ``_prompt_ids(examples) -> (prompt rows, pixels)``, ``pad_token_id`` and ``tokenizer``."""

    pad_prompts_left = True
    """Decoder-only models continue the last position, so their prompts are padded on the left."""

    def generation_batch(self, examples):
        prompts, pixels = self._prompt_ids(examples)
        input_ids, mask = pad_rows(prompts, self.pad_token_id, left=self.pad_prompts_left)
        return with_pixels({"input_ids": input_ids, "attention_mask": mask}, pixels)

    def decode(self, ids) -> list[str]:
        texts = self.tokenizer.batch_decode(ids, skip_special_tokens=True)
        return [" ".join(t.split()) for t in texts]


def scatter_image_features(model, input_ids, features, image_token_id: int, family: str, fix: str):
    """``model``'s token embeddings of ``input_ids`` with ``features`` scattered into the image-token
    positions (refused when the counts differ: the image would be ignored)."""
    image_mask = input_ids == image_token_id  # [B, T]
    image_tokens_guard(image_mask.sum(dim=1), features.shape[1], family, fix)
    embeds = model.get_input_embeddings()(input_ids)  # [B, T, H_lm]
    return embeds.masked_scatter(image_mask.unsqueeze(-1), features.to(embeds.dtype))


def image_tokens_guard(counts, expected: int, family: str, fix: str) -> None:
    """Refuse a batch whose image-token count per example is not ``expected``: the image would be ignored."""
    if not bool((counts == expected).all()):
        raise CaptuneError(
            f"batch has {counts.tolist()} image tokens per example, expected {expected}: the image would be "
            f"ignored. {fix} (captune's {family} batcher does)")
