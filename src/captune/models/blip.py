"""The BLIP captioning adapter (``BlipForConditionalGeneration``, e.g. ``Salesforce/blip-image-captioning-base``).

BLIP is the small, fast baseline: a ViT and a BERT text decoder that cross-attends to its
output. It has no image tokens; what is easy to get wrong instead:

- a caption starts with ``[DEC]`` (the text config's ``bos_token_id``) and ends with ``[SEP]``:
  BLIP's ``generate`` swaps the tokenizer's ``[CLS]`` for ``[DEC]``, so a model trained on
  tokenizer output (``[CLS] ...``) is trained on another start than it generates from.
  ``BlipCaptioner.forward`` refuses such a batch, and one without pixels or cached features;
- a prompt (``a picture of``) is the start of the caption: ``[DEC] prompt caption [SEP]`` with
  labels -100 on ``[DEC]``, the prompt and padding. Generation pads on the left (positions come
  from the attention mask) and slices the prompt off.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from captune.errors import CaptuneError
from captune.models.family import Example, Family, PromptBatcher, base_model, pad_rows, with_pixels


def ensure_ready(model, processor) -> None:
    """BLIP needs no image tokens; its text config must name the tokens a caption starts and ends with."""
    text = model.config.text_config
    if text.bos_token_id is None or text.sep_token_id is None:
        raise CaptuneError("the BLIP text config has no bos_token_id ([DEC]) or sep_token_id ([SEP]): "
                           "load the config saved with this model")


class BlipBatcher(PromptBatcher):
    """Builds training and generation batches for one BLIP model."""

    decoder_only = True
    image_token_id = None

    def __init__(self, processor, config, max_prompt_tokens: int = 64, max_caption_tokens: int = 48):
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.family = "bert"
        text = config.text_config
        self.bos_token_id, self.sep_token_id, self.pad_token_id = text.bos_token_id, text.sep_token_id, text.pad_token_id
        self.max_prompt_tokens = max_prompt_tokens
        self.max_caption_tokens = max_caption_tokens

    def __call__(self, examples: list[Example], train: bool = True) -> dict[str, torch.Tensor]:
        return self.train_batch(examples) if train else self.generation_batch(examples)

    def _prompt_ids(self, examples: list[Example]) -> tuple[list[list[int]], torch.Tensor | None]:
        """``[DEC]`` + prompt for each example, and the pixel values (None when features are cached)."""
        ids = [[self.bos_token_id] + self._ids(e.prompt)[: self.max_prompt_tokens] for e in examples]
        if all(e.image is None for e in examples):
            return ids, None
        pixels = self.processor.image_processor([e.image for e in examples])["pixel_values"]
        return ids, torch.from_numpy(np.stack([np.asarray(x) for x in pixels]))  # [B, 3, H, W]

    def _ids(self, text: str) -> list[int]:
        return list(self.tokenizer(text.strip(), add_special_tokens=False)["input_ids"]) if text.strip() else []

    def train_batch(self, examples: list[Example]) -> dict[str, torch.Tensor]:
        prompts, pixels = self._prompt_ids(examples)
        rows, labels = [], []
        for e, p in zip(examples, prompts):
            if e.caption is None:
                raise CaptuneError(f"example {e.image_id or '?'} has no caption to train on")
            caption = self._ids(e.caption)[: self.max_caption_tokens] + [self.sep_token_id]
            rows.append(p + caption)
            labels.append([-100] * len(p) + caption)
        input_ids, mask = pad_rows(rows, self.pad_token_id, left=False)
        labels, _ = pad_rows(labels, -100, left=False)
        return with_pixels({"input_ids": input_ids, "attention_mask": mask, "labels": labels}, pixels)


class BlipCaptioner(nn.Module):
    """A BLIP model (plain or PEFT-wrapped) whose ``forward`` returns the caption loss."""

    decoder_only = True
    family = "bert"

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    @property
    def blip(self):
        """The underlying ``BlipForConditionalGeneration`` (inside a PEFT wrapper if any)."""
        return base_model(self.model)

    @property
    def vision(self) -> nn.Module:
        return self.blip.vision_model

    def vision_embeds(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """The ViT's last hidden state, which the text decoder cross-attends to: ``[B, patches + 1, H]``."""
        vision = self.vision
        interpolate = pixel_values.shape[-1] != self.blip.config.vision_config.image_size
        dtype = vision.embeddings.patch_embedding.weight.dtype
        return vision(pixel_values=pixel_values.to(dtype), interpolate_pos_encoding=interpolate).last_hidden_state

    def _image(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, pixel_values, vision_embeds) -> torch.Tensor:
        bos = self.blip.config.text_config.bos_token_id
        first = input_ids.gather(1, attention_mask.argmax(dim=1, keepdim=True))[:, 0]  # [B]: after left padding
        if not bool((first == bos).all()):
            raise CaptuneError(
                f"batch rows start with {sorted(set(first.tolist()))}, not BLIP's caption start "
                f"[DEC] ({bos}): inputs built with the tokenizer alone start with [CLS], which BLIP never "
                "generates from. Build inputs with captune's BLIP batcher")
        if vision_embeds is None and pixel_values is None:
            raise CaptuneError("a BLIP batch needs pixel_values or cached vision features: without them the "
                               "caption would not see the image")
        return self.vision_embeds(pixel_values) if vision_embeds is None else vision_embeds

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        labels: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        vision_embeds: torch.Tensor | None = None,
    ):
        image = self._image(input_ids, attention_mask, pixel_values, vision_embeds)
        decoder = self.blip.text_decoder
        return decoder(input_ids=input_ids, attention_mask=attention_mask, encoder_hidden_states=image.to(
            decoder.dtype), labels=labels, reduction="mean")

    @torch.no_grad()
    def generate(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        pixel_values: torch.Tensor | None = None,
        vision_embeds: torch.Tensor | None = None,
        **generate_kwargs,
    ) -> torch.Tensor:
        """Generated token ids only (``[DEC]`` and the prompt are sliced off)."""
        image = self._image(input_ids, attention_mask, pixel_values, vision_embeds)
        text = self.blip.config.text_config
        generate_kwargs.setdefault("eos_token_id", text.sep_token_id)
        generate_kwargs.setdefault("pad_token_id", text.pad_token_id)
        decoder = self.blip.text_decoder
        out = decoder.generate(
            input_ids=input_ids, attention_mask=attention_mask, encoder_hidden_states=image.to(decoder.dtype),
            encoder_attention_mask=torch.ones(image.shape[:-1], dtype=torch.long, device=image.device),
            **generate_kwargs)
        return out[:, input_ids.shape[1]:]


FAMILY = Family(
    name="BLIP",
    model_class="BlipForConditionalGeneration",
    parts={"vision": ("vision_model",), "lm": ("text_decoder",)},
    targets={
        "lm": {"query_value": ["query", "value"], "all_linear": ["query", "key", "value", "dense"]},
        "vision": {"query_value": ["qkv"], "all_linear": ["qkv", "projection", "fc1", "fc2"]},
    },
    quantization_skip=("vision_model", "cls"),
    captioner=BlipCaptioner,
    batcher=BlipBatcher,
    prepare=ensure_ready,
    language_model=lambda config: "bert",
)
