"""CLIP models by name, for the stages that score images against texts (``captune data enhance``).

    clip = load_clip("shapes-clip")                      # or "openai/clip-vit-base-patch32", or a folder
    cos = clip.embed_images(images) @ clip.embed_texts(["a red object"]).T

A name is a registry entry with a loader and task ``clip`` (``shapes-clip``, the tiny CLIP that
ships with captune), a local folder saved with ``save_pretrained``, or a Hugging Face id read
from the local cache (the hub only when not offline, ``captune.hub.from_pretrained``). A captioner's
registry name is refused. ``registered_clip`` is the registry half, shared with the metrics'
encoders (``captune.metrics.encoders``). Models run in float32 in eval mode; images go through the
PIL image processor (no torchvision).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from captune.errors import ConfigError
from captune.hub import from_pretrained


def registered_clip(name: str) -> tuple[Any, Any] | None:
    """``(model, processor)`` of a registry name that has a loader (``shapes-clip``); None for other names."""
    from captune.models.registry import CLIP, lookup

    entry = lookup(name)
    if entry is None or entry.loader is None:
        return None
    if entry.task != CLIP:
        raise ConfigError(f"{name!r} is a captioner, not a CLIP; use a CLIP such as "
                          "openai/clip-vit-base-patch32, a CLIP folder, or shapes-clip")
    return entry.loader()


@dataclass(frozen=True)
class Clip:
    """A loaded CLIP with its tokenizer and image processor."""

    name: str
    model: Any
    tokenizer: Any
    image_processor: Any
    device: str

    @property
    def logit_scale(self) -> float:
        """CLIP's learned temperature, ``exp(logit_scale)`` (100 for OpenAI's CLIP)."""
        return float(self.model.logit_scale.exp().item())

    def embed_images(self, images: Sequence[Any]) -> np.ndarray:
        """Unit vectors of PIL images, shape ``(n, dim)``, float32."""
        import torch

        pixels = self.image_processor(images=list(images), return_tensors="pt")["pixel_values"]
        with torch.inference_mode():
            return _unit(self.model.get_image_features(pixel_values=pixels.to(self.device)))

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors of texts, shape ``(n, dim)``, float32."""
        return text_features(self.model, self.tokenizer, texts, self.device)


def text_features(model: Any, tokenizer: Any, texts: Sequence[str], device: str) -> np.ndarray:
    """Unit text vectors of a Hugging Face image-text model (CLIP, SigLIP...), shape ``(n, dim)``.

    CLIP's texts are padded to the longest of the batch (its text tower reads the end token under a
    causal mask, so padding changes nothing); other towers' to the full length: they may pool a
    padded position (SigLIP pools the last one and was trained on full-length padding), and a text's
    vector must not depend on the batch it is in."""
    import torch

    padding = True if getattr(model.config, "model_type", None) == "clip" else "max_length"
    limit = getattr(tokenizer, "model_max_length", None)
    batch = tokenizer(list(texts), padding=padding, truncation=True, return_tensors="pt",
                      max_length=int(limit) if limit and limit < 100_000 else 77)
    with torch.inference_mode():
        return _unit(model.get_text_features(input_ids=batch["input_ids"].to(device),
                                             attention_mask=batch["attention_mask"].to(device)))


def load_clip(name: str, device: str | None = None) -> Clip:
    """Load a CLIP by registry name, folder or Hugging Face id (see the module docstring)."""
    import torch
    from transformers import AutoImageProcessor, AutoModel, AutoTokenizer

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    registered = registered_clip(name)
    if registered is not None:
        model, processor = registered
        tokenizer, image_processor = processor.tokenizer, processor.image_processor
    else:
        model = from_pretrained(AutoModel.from_pretrained, name, what="AutoModel")
        tokenizer = from_pretrained(AutoTokenizer.from_pretrained, name, what="AutoTokenizer")
        image_processor = from_pretrained(AutoImageProcessor.from_pretrained, name, what="AutoImageProcessor",
                                          backend="pil")
    if not hasattr(model, "get_image_features") or not hasattr(model, "logit_scale"):
        raise ConfigError(f"{name!r} ({type(model).__name__}) is not a CLIP-like image-text model")
    model.to(device=device, dtype=torch.float32).eval()
    return Clip(name, model, tokenizer, image_processor, device)


def _unit(feats: Any) -> np.ndarray:
    feats = feats if hasattr(feats, "norm") else feats.pooler_output
    feats = feats.float()
    return (feats / feats.norm(dim=-1, keepdim=True)).cpu().numpy().astype(np.float32)
