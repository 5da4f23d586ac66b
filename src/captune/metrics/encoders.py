"""Load Hugging Face encoders (CLIP, BERT-like, sentence encoders) for the model-based metrics.

    from captune.metrics.encoders import load_encoder
    enc = load_encoder("openai/clip-vit-base-patch32", images=True)   # or a local directory

A model is looked up on this machine first (a local directory, else the Hugging Face cache);
the hub is only tried when not offline (``captune.hub.from_pretrained``, shared with the captioners).
Loaded encoders are kept per ``(name, device)`` in the caller's ``MetricResources`` (at most
its ``encoders`` bound, least recently used dropped first), because training evaluates many
times and loading dominates the cost of a small evaluation; without one, each call loads. Models run in float32
in eval mode, so scores do not depend on the GPU's half-precision arithmetic.

Image processors use the PIL backend: it needs no torchvision (which would pull another torch
build) and resizes with PIL's bicubic filter as the original CLIP preprocessing does.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from captune.errors import ModelNotFoundError
from captune.hub import from_pretrained


@dataclass(frozen=True)
class Encoder:
    """A loaded model with its tokenizer (and image processor for image-text models)."""

    name: str
    """The name or local directory it was loaded from (part of the cache key)."""
    model: Any
    tokenizer: Any
    image_processor: Any | None
    device: str


def resolve_device(device: str | None = None) -> str:
    """``device`` as given, or ``"cuda"`` when a GPU is visible, else ``"cpu"``."""
    if device and device != "auto":
        return str(device)
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_encoder(
    name: str | os.PathLike, device: str | None = None, *, images: bool = False, resources=None
) -> Encoder:
    """Load the model, tokenizer and, with ``images``, the image processor (once per
    ``resources``, a ``MetricResources``, when given).

    ``name`` is a hub id (``roberta-large``), a local directory saved with ``save_pretrained``, or a
    registry name with a loader (``shapes-clip``, the CLIP that ships with captune). Raises
    ``ModelNotFoundError`` saying where it looked and how to get the weights.
    """
    name, dev = str(name), resolve_device(device)
    if resources is None:
        return _load(name, dev, images)
    return resources.encoders.get_or_make((name, dev, images), lambda: _load(name, dev, images))


def max_length(tokenizer: Any, fallback: int = 512) -> int:
    """The tokenizer's maximum input length; ``fallback`` when it declares none (a huge sentinel)."""
    limit = getattr(tokenizer, "model_max_length", None)
    return int(limit) if limit and limit < 100_000 else fallback


def _load(name: str, device: str, images: bool) -> Encoder:
    import torch
    from transformers import AutoImageProcessor, AutoModel, AutoTokenizer

    from captune.models.clip import registered_clip

    registered = registered_clip(name)
    if registered is not None:
        model, processor = registered
        model.to(device=device, dtype=torch.float32).eval()
        return Encoder(name, model, processor.tokenizer, processor.image_processor if images else None, device)
    source = _source(name)
    model = _from_pretrained(AutoModel, source)
    tokenizer = _from_pretrained(AutoTokenizer, source)
    image_processor = _from_pretrained(AutoImageProcessor, source, **_pil_backend()) if images else None
    model.to(device=device, dtype=torch.float32).eval()
    return Encoder(name, model, tokenizer, image_processor, device)


def _source(name: str) -> str:
    """A local directory as an absolute path, a hub id unchanged; a missing directory is an error."""
    path = Path(name).expanduser()
    if path.is_dir():
        return str(path.resolve())
    # A hub id is "name" or "org/name"; anything else that looks like a path is meant as one.
    if path.is_absolute() or name.startswith((".", "~")) or name.count("/") > 1:
        raise ModelNotFoundError(
            f"model directory {name!r} does not exist (resolved to {path.resolve()}). "
            "Pass the directory that holds config.json and the weights, or a Hugging Face model name."
        )
    return name


def _from_pretrained(cls: Any, source: str, **kwargs: Any) -> Any:
    return from_pretrained(cls.from_pretrained, source, what=cls.__name__, **kwargs)


def _pil_backend() -> dict[str, Any]:
    import transformers

    major = int(transformers.__version__.split(".")[0])
    return {"backend": "pil"} if major >= 5 else {"use_fast": False}
