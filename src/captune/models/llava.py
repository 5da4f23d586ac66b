"""The LLaVA-1.5 captioning adapter (``LlavaForConditionalGeneration``, e.g. ``llava-hf/llava-1.5-7b-hf``).

It owns what is easy to get wrong with LLaVA:

- the chat format LLaVA-1.5 was tuned on: ``USER: <image>\\n{prompt} ASSISTANT: {caption}</s>``;
  labels are -100 on everything but the caption and its ``</s>`` (the image tokens, the chat
  words, the prompt and the padding);
- the processor expands ``<image>`` into one token per image feature (576 for llava-1.5: 336 px
  at patch 14 is 577 CLIP outputs, CLS dropped by the ``default`` feature strategy). A processor
  saved without ``patch_size`` expands nothing, and one without ``num_additional_image_tokens``
  writes 575: ``prepare`` fills both from the model's config and checks the count, and
  ``LlavaCaptioner.forward`` refuses a batch whose image tokens do not match the features;
- generation pads on the left and slices the prompt off the output;
- ``vision_embeds`` is the frozen CLIP layer the projector reads (``vision_feature_layer``, CLS
  dropped), so the feature cache stores it and the projector can still train (``finetune.projector``).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from captune.errors import CaptuneError
from captune.models.family import (
    Example,
    Family,
    PromptBatcher,
    base_model,
    pad_rows,
    scatter_image_features,
    with_pixels,
)

CHAT = "USER: {image}\n{prompt} ASSISTANT:"
"""LLaVA-1.5's conversation format for one image and one answer."""


def expected_image_tokens(config) -> int:
    """Image features the model makes per image: CLIP's patches + CLS, less CLS under ``default``."""
    vision = config.vision_config
    patches = (vision.image_size // vision.patch_size) ** 2 + 1
    return patches - (config.vision_feature_select_strategy == "default")


def processor_image_tokens(processor) -> int:
    """How many image tokens the processor writes for one image at its own size (counted, not computed)."""
    from PIL import Image

    crop = getattr(processor.image_processor, "crop_size", None) or processor.image_processor.size
    size = (crop["width"], crop["height"]) if crop.get("height") else (crop["shortest_edge"],) * 2
    ids = processor(images=[Image.new("RGB", size)], text=[processor.image_token])["input_ids"][0]
    return sum(i == processor.image_token_id for i in ids)


def ensure_image_tokens(model, processor) -> None:
    """Make the processor expand ``<image>`` into exactly as many tokens as the model has features.

    llava-hf processors saved before transformers expanded image tokens in the processor lack
    ``patch_size`` (nothing is expanded) and ``num_additional_image_tokens`` (one token short):
    both are filled from the model's config. A processor whose image token differs from the
    model's, or whose count still differs, is refused.
    """
    config = model.config
    if getattr(processor, "patch_size", None) is None:
        processor.patch_size = config.vision_config.patch_size
        processor.vision_feature_select_strategy = config.vision_feature_select_strategy
        processor.num_additional_image_tokens = 1  # CLIP's CLS
    if processor.image_token_id != config.image_token_id:
        raise CaptuneError(f"the processor's image token has id {processor.image_token_id} but the model expects "
                           f"{config.image_token_id}: load the processor saved with this model")
    made, expected = processor_image_tokens(processor), expected_image_tokens(config)
    if made != expected:
        raise CaptuneError(
            f"the processor writes {made} image tokens per image but the model makes {expected} image features "
            "(the image would not fit): load the processor saved with this model, or set its patch_size, "
            "vision_feature_select_strategy and num_additional_image_tokens to the model's")


class LlavaBatcher(PromptBatcher):
    """Builds training and generation batches in LLaVA-1.5's chat format."""

    decoder_only = True

    def __init__(self, processor, config, max_prompt_tokens: int = 64, max_caption_tokens: int = 48):
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.family = config.text_config.model_type
        self.image_token = processor.image_token
        self.image_token_id = config.image_token_id
        self.num_image_tokens = processor_image_tokens(processor)
        self.eos_token_id = self.tokenizer.eos_token_id
        pad = self.tokenizer.pad_token_id
        self.pad_token_id = self.eos_token_id if pad is None else pad
        self.max_prompt_tokens = max_prompt_tokens
        self.max_caption_tokens = max_caption_tokens

    def __call__(self, examples: list[Example], train: bool = True) -> dict[str, torch.Tensor]:
        return self.train_batch(examples) if train else self.generation_batch(examples)

    def chat(self, prompt: str) -> str:
        """The conversation up to ``ASSISTANT:``, the user's prompt cut to ``max_prompt_tokens``."""
        ids = self.tokenizer(prompt, add_special_tokens=False)["input_ids"]
        if len(ids) > self.max_prompt_tokens:
            prompt = self.tokenizer.decode(ids[: self.max_prompt_tokens])
        return CHAT.format(image=self.image_token, prompt=prompt.strip())

    def _prompt_ids(self, examples: list[Example]) -> tuple[list[list[int]], torch.Tensor | None]:
        """Each example's conversation up to ``ASSISTANT:`` with its image tokens from the processor.

        Examples without an image (their vision features come from the cache) get the image
        tokens the processor writes for an image of its size (counted once).
        """
        texts = [self.chat(e.prompt) for e in examples]
        if all(e.image is None for e in examples):
            return [self._expanded_ids(t, self.num_image_tokens) for t in texts], None
        enc = self.processor(images=[e.image for e in examples], text=texts)
        pixels = torch.from_numpy(np.stack([np.asarray(x) for x in enc["pixel_values"]]))  # [B, 3, H, W]
        return [list(ids) for ids in enc["input_ids"]], pixels

    def _expanded_ids(self, text: str, n_image: int, answer: str = "") -> list[int]:
        return list(self.tokenizer(text.replace(self.image_token, self.image_token * n_image) + answer)["input_ids"])

    def _answer(self, e: Example, prompt: list[int]) -> tuple[int, list[int]]:
        """Where the answer starts in ``prompt`` and its ids (the caption, cut, then ``</s>``).

        The caption is tokenized after the conversation, as the model reads it; the supervised part
        starts where that tokenization leaves the prompt's.
        """
        if e.caption is None:
            raise CaptuneError(f"example {e.image_id or '?'} has no caption to train on")
        n_image = sum(t == self.image_token_id for t in prompt)
        full = self._expanded_ids(self.chat(e.prompt), n_image, " " + e.caption.strip())
        start = next((i for i, (a, b) in enumerate(zip(prompt, full)) if a != b), min(len(prompt), len(full)))
        return start, full[start:][: self.max_caption_tokens] + [self.eos_token_id]

    def train_batch(self, examples: list[Example]) -> dict[str, torch.Tensor]:
        prompts, pixels = self._prompt_ids(examples)
        rows, labels = [], []
        for e, p in zip(examples, prompts):
            start, answer = self._answer(e, p)
            rows.append(p[:start] + answer)
            labels.append([-100] * start + answer)
        input_ids, mask = pad_rows(rows, self.pad_token_id, left=False)
        labels, _ = pad_rows(labels, -100, left=False)
        return with_pixels({"input_ids": input_ids, "attention_mask": mask, "labels": labels}, pixels)


class LlavaCaptioner(nn.Module):
    """A LLaVA model (plain or PEFT-wrapped) whose ``forward`` returns the caption loss."""

    decoder_only = True

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.family = self.llava.config.text_config.model_type

    @property
    def llava(self):
        """The underlying ``LlavaForConditionalGeneration`` (inside a PEFT wrapper if any)."""
        return base_model(self.model)

    @property
    def vision(self) -> nn.Module:
        return self.llava.model.vision_tower

    def vision_embeds(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """The CLIP hidden states the projector reads: ``[B, image tokens, H_vision]``."""
        config = self.llava.config
        vision = self.vision
        interpolate = pixel_values.shape[-1] != config.vision_config.image_size
        out = vision(pixel_values.to(next(vision.parameters()).dtype), output_hidden_states=True,
                     interpolate_pos_encoding=interpolate, return_dict=True)
        layers = config.vision_feature_layer
        states = [out.hidden_states[i] for i in (layers if isinstance(layers, (list, tuple)) else [layers])]
        if config.vision_feature_select_strategy == "default":
            states = [s[:, 1:] for s in states]  # drop CLS
        return torch.cat(states, dim=-1)

    def image_features(self, pixel_values=None, vision_embeds=None) -> torch.Tensor:
        """Projected image features, one per image token: ``[B, image tokens, H_lm]``."""
        if vision_embeds is None:
            vision_embeds = self.vision_embeds(pixel_values)
        projector = self.llava.model.multi_modal_projector
        return projector(vision_embeds.to(projector.linear_1.weight.dtype))

    def embed(self, input_ids: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """Token embeddings with the image features scattered into the image-token positions."""
        return scatter_image_features(self.llava, input_ids, features, self.llava.config.image_token_id, "LLaVA",
                                      "Build inputs with the processor (LlavaProcessor with patch_size set)")

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        labels: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        vision_embeds: torch.Tensor | None = None,
    ):
        embeds = self.embed(input_ids, self.image_features(pixel_values, vision_embeds))
        return self.llava(inputs_embeds=embeds, attention_mask=attention_mask, labels=labels)

    @torch.no_grad()
    def generate(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        pixel_values: torch.Tensor | None = None,
        vision_embeds: torch.Tensor | None = None,
        **generate_kwargs,
    ) -> torch.Tensor:
        """Generated token ids only (the conversation and image tokens are sliced off)."""
        llava = self.llava
        embeds = self.embed(input_ids, self.image_features(pixel_values, vision_embeds))
        text_config = llava.config.text_config
        generate_kwargs.setdefault("eos_token_id", text_config.eos_token_id)
        pad = text_config.pad_token_id
        generate_kwargs.setdefault("pad_token_id", text_config.eos_token_id if pad is None else pad)
        out = llava.generate(input_ids=input_ids, inputs_embeds=embeds, attention_mask=attention_mask, **generate_kwargs)
        return out[:, input_ids.shape[1]:]


FAMILY = Family(
    name="LLaVA",
    model_class="LlavaForConditionalGeneration",
    parts={"vision": ("model.vision_tower",), "projector": ("model.multi_modal_projector",),
           "lm": ("model.language_model", "lm_head")},
    targets={
        "lm": {"query_value": ["q_proj", "v_proj"],
               "all_linear": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]},
        "projector": {"query_value": ["linear_1", "linear_2"], "all_linear": ["linear_1", "linear_2"]},
        "vision": {"query_value": ["q_proj", "v_proj"], "all_linear": ["q_proj", "k_proj", "v_proj", "out_proj",
                                                                        "fc1", "fc2"]},
    },
    quantization_skip=("vision_tower", "multi_modal_projector", "lm_head"),
    captioner=LlavaCaptioner,
    batcher=LlavaBatcher,
    prepare=ensure_image_tokens,
    language_model=lambda config: config.text_config.model_type,
)
