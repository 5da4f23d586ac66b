"""The BLIP-2 captioning adapter (OPT and Flan-T5 language models).

It owns what is easy to get wrong with BLIP-2:

- inputs are built with the processor, which puts ``num_query_tokens`` image tokens in the
  input ids; the model scatters the Q-Former outputs into those positions. A batch without
  them would silently ignore the image, so ``Blip2Captioner.forward`` refuses it;
- OPT (decoder-only): ``image tokens + </s> + prompt + caption + end``; labels are -100 on image
  tokens, prompt and padding; the end token is the language model's ``eos_token_id`` ("\\n" for
  the Salesforce OPT checkpoints). Generation pads on the left and slices the input ids off;
- Flan-T5 (encoder-decoder): the prompt goes to the encoder, the caption only to the labels.

``Blip2Batcher`` turns ``Example``s into tensors; ``Blip2Captioner`` wraps the model (plain or
PEFT) so that everything trainable runs inside ``forward`` (what DDP and FSDP need) and can take
cached vision features instead of pixels. ``FAMILY`` is BLIP-2's entry in ``captune.models.family``.
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


def model_family(config) -> str:
    """``"opt"`` for decoder-only language models, ``"t5"`` for encoder-decoder ones."""
    return "opt" if config.use_decoder_only_language_model else "t5"


def ensure_image_tokens(model, processor) -> None:
    """Make processor and model agree on image tokens (older checkpoints lack them).

    Checkpoints saved before transformers put image tokens in the input ids have a processor
    without ``num_query_tokens`` and a config without ``image_token_index``; without this, the
    image would be silently ignored.
    """
    config = model.config
    if getattr(processor, "num_query_tokens", None) is None:
        processor.num_query_tokens = config.num_query_tokens
    tokenizer = processor.tokenizer
    token_id = tokenizer.convert_tokens_to_ids(processor.image_token.content)
    if getattr(config, "image_token_index", None) is None:
        if token_id >= model.get_input_embeddings().num_embeddings:
            model.resize_token_embeddings(len(tokenizer), pad_to_multiple_of=64)
        config.image_token_index = token_id
    elif config.image_token_index != token_id:
        raise CaptuneError(
            f"the processor's image token has id {token_id} but the model expects {config.image_token_index}: "
            "load the processor saved with this model"
        )


class Blip2Batcher(PromptBatcher):
    """Builds training and generation batches for one BLIP-2 model."""

    def __init__(self, processor, config, max_prompt_tokens: int = 64, max_caption_tokens: int = 48):
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.family = model_family(config)
        self.decoder_only = self.family == "opt"
        self.pad_prompts_left = self.decoder_only  # T5's encoder reads the prompt whole: right padding
        self.num_query_tokens = config.num_query_tokens
        self.image_token_id = config.image_token_index
        self.eos_token_id = config.text_config.eos_token_id
        self.pad_token_id = self.tokenizer.pad_token_id
        self.max_prompt_tokens = max_prompt_tokens
        self.max_caption_tokens = max_caption_tokens

    def __call__(self, examples: list[Example], train: bool = True) -> dict[str, torch.Tensor]:
        return self.train_batch(examples) if train else self.generation_batch(examples)

    def _prompt_ids(self, examples: list[Example]) -> tuple[list[list[int]], torch.Tensor | None]:
        """Image tokens + prompt for each example (from the processor), and the pixel values.

        Examples without an image (their vision features come from the cache) get the image
        tokens exactly as the processor writes them: ``image_token * num_query_tokens``,
        tokenized without special tokens, before the prompt.
        """
        prompts = [e.prompt for e in examples]
        kwargs = {"padding": False, "truncation": True, "max_length": self.max_prompt_tokens + self.num_query_tokens}
        if all(e.image is None for e in examples):
            text = self.processor(text=prompts, **kwargs)["input_ids"]
            return [self._image_token_ids() + list(ids) for ids in text], None
        enc = self.processor(images=[e.image for e in examples], text=prompts, **kwargs)
        pixels = torch.from_numpy(np.stack([np.asarray(x) for x in enc["pixel_values"]]))  # [B, 3, H, W]
        return [list(ids) for ids in enc["input_ids"]], pixels

    def _image_token_ids(self) -> list[int]:
        text = self.processor.image_token.content * self.num_query_tokens
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _caption_ids(self, e: Example) -> list[int]:
        if e.caption is None:
            raise CaptuneError(f"example {e.image_id or '?'} has no caption to train on")
        # A space keeps the caption's first word a word-start token after a non-empty prompt.
        text = f" {e.caption.strip()}" if self.family == "opt" and e.prompt.strip() else e.caption.strip()
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"][: self.max_caption_tokens]
        return ids + [self.eos_token_id]

    def train_batch(self, examples: list[Example]) -> dict[str, torch.Tensor]:
        prompts, pixels = self._prompt_ids(examples)
        captions = [self._caption_ids(e) for e in examples]
        if self.family == "opt":
            rows = [p + c for p, c in zip(prompts, captions)]
            labels = [[-100] * len(p) + c for p, c in zip(prompts, captions)]
            input_ids, mask = pad_rows(rows, self.pad_token_id, left=False)
            labels, _ = pad_rows(labels, -100, left=False)
        else:
            input_ids, mask = pad_rows(prompts, self.pad_token_id, left=False)
            labels, _ = pad_rows(captions, -100, left=False)
        return with_pixels({"input_ids": input_ids, "attention_mask": mask, "labels": labels}, pixels)


class Blip2Captioner(nn.Module):
    """A BLIP-2 model (plain or PEFT-wrapped) whose ``forward`` returns the caption loss."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.family = model_family(self.blip2.config)
        self.decoder_only = self.family == "opt"

    @property
    def blip2(self):
        """The underlying ``Blip2ForConditionalGeneration`` (inside a PEFT wrapper if any)."""
        return base_model(self.model)

    @property
    def vision(self) -> nn.Module:
        """The vision encoder whose output ``vision_embeds`` returns (and the feature cache stores)."""
        return self.blip2.vision_model

    def vision_embeds(self, pixel_values: torch.Tensor) -> torch.Tensor:
        vision = self.blip2.vision_model
        dtype = vision.embeddings.patch_embedding.weight.dtype
        # Training at another resolution than pre-training (e.g. 364 px) interpolates positions.
        interpolate = pixel_values.shape[-1] != self.blip2.config.vision_config.image_size
        out = vision(pixel_values=pixel_values.to(dtype), interpolate_pos_encoding=interpolate, return_dict=True)
        return out.last_hidden_state  # [B, patches + 1, H_vision]

    def image_features(self, pixel_values=None, vision_embeds=None) -> torch.Tensor:
        """Q-Former outputs projected to the language model's width: ``[B, num_query_tokens, H_lm]``."""
        blip = self.blip2
        if vision_embeds is None:
            vision_embeds = self.vision_embeds(pixel_values)
        qformer_dtype = blip.query_tokens.dtype
        vision_embeds = vision_embeds.to(qformer_dtype)
        mask = torch.ones(vision_embeds.shape[:-1], dtype=torch.long, device=vision_embeds.device)
        queries = blip.query_tokens.expand(vision_embeds.shape[0], -1, -1)
        out = blip.qformer(
            query_embeds=queries, encoder_hidden_states=vision_embeds, encoder_attention_mask=mask, return_dict=True
        ).last_hidden_state
        proj = blip.language_projection
        return proj(out.to(proj.weight.dtype))

    def embed(self, input_ids: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """Token embeddings with the image features scattered into the image-token positions."""
        return scatter_image_features(self.blip2, input_ids, features, self.blip2.config.image_token_index, "BLIP-2",
                                      "Build inputs with the processor (Blip2Processor with num_query_tokens set)")

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        labels: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        vision_embeds: torch.Tensor | None = None,
    ):
        features = self.image_features(pixel_values, vision_embeds)
        embeds = self.embed(input_ids, features)
        return self.blip2.language_model(inputs_embeds=embeds, attention_mask=attention_mask, labels=labels)

    @torch.no_grad()
    def generate(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        pixel_values: torch.Tensor | None = None,
        vision_embeds: torch.Tensor | None = None,
        **generate_kwargs,
    ) -> torch.Tensor:
        """Generated token ids only (the prompt and image tokens are sliced off for OPT)."""
        blip = self.blip2
        embeds = self.embed(input_ids, self.image_features(pixel_values, vision_embeds))
        text_config = blip.config.text_config
        generate_kwargs.setdefault("eos_token_id", text_config.eos_token_id)
        generate_kwargs.setdefault("pad_token_id", text_config.pad_token_id)
        lm = blip.language_model
        if self.family == "opt":
            out = lm.generate(input_ids=input_ids, inputs_embeds=embeds, attention_mask=attention_mask, **generate_kwargs)
            return out[:, input_ids.shape[1]:]
        return lm.generate(inputs_embeds=embeds, attention_mask=attention_mask, **generate_kwargs)


# Linear layers LoRA adapts, per part and preset; OPT and T5 name their projections differently.
FAMILY = Family(
    name="BLIP-2",
    model_class="Blip2ForConditionalGeneration",
    parts={"vision": ("vision_model",), "qformer": ("qformer", "language_projection", "query_tokens"),
           "lm": ("language_model",)},
    targets={
        "lm:opt": {"query_value": ["q_proj", "v_proj"],
                   "all_linear": ["q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"]},
        "lm:t5": {"query_value": ["q", "v"], "all_linear": ["q", "k", "v", "o", "wi", "wi_0", "wi_1", "wo"]},
        "qformer": {"query_value": ["query", "value"], "all_linear": ["query", "key", "value", "dense"]},
        "vision": {"query_value": ["qkv"], "all_linear": ["qkv", "projection", "fc1", "fc2"]},
    },
    quantization_skip=("vision_model", "qformer", "language_projection", "lm_head"),
    captioner=Blip2Captioner,
    batcher=Blip2Batcher,
    prepare=ensure_image_tokens,
    language_model=model_family,
)
