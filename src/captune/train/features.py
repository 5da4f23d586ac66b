"""The vision-feature cache: run a frozen vision encoder once per image, reuse it every epoch.

When the ViT is frozen (the usual LoRA setup) its output for an image never changes, and it is
the most expensive part of BLIP-2. Features are stored per image under
``$CAPTUNE_HOME/cache/features/<fingerprint>/<content hash>.safetensors``; the fingerprint
covers the vision weights, their dtype and the image size, so a changed model never reuses
stale features.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors.torch import load_file, save

from captune.io import atomic_write, file_sha256


def captune_home() -> Path:
    return Path(os.environ.get("CAPTUNE_HOME", Path.home() / ".cache" / "captune"))


def vision_fingerprint(captioner, image_size: int) -> str:
    vision = captioner.vision
    h = hashlib.sha256(f"{vision.config.to_json_string()}|{image_size}".encode())
    for name, p in sorted(vision.state_dict().items()):
        h.update(name.encode())
        h.update(str(p.dtype).encode())
        # A strided sample of each tensor identifies the weights without hashing gigabytes.
        h.update(p.detach().flatten()[:: max(1, p.numel() // 64)].float().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


class FeatureCache:
    """Vision-encoder outputs keyed by image content, on disk."""

    def __init__(self, directory: str | os.PathLike):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._keys: dict[str, str] = {}

    def key(self, image: str) -> str:
        if image not in self._keys:
            self._keys[image] = file_sha256(image)[:32]
        return self._keys[image]

    def path(self, image: str) -> Path:
        return self.dir / f"{self.key(image)}.safetensors"

    def get(self, image: str) -> torch.Tensor:
        return load_file(self.path(image))["features"]

    def missing(self, images: Sequence[str]) -> list[str]:
        return [img for img in dict.fromkeys(images) if not self.path(img).exists()]

    def build(self, captioner, batcher, images: Sequence[str], batch_size: int = 16, progress: bool = False) -> int:
        """Compute and store features for images not cached yet; returns how many were computed."""
        from tqdm.auto import tqdm

        from captune.data.images import load_image

        todo = self.missing(images)
        device = next(captioner.parameters()).device
        for start in tqdm(range(0, len(todo), batch_size), desc="caching vision features",
                          disable=not progress or None):
            chunk = todo[start:start + batch_size]
            pixels = batcher.processor.image_processor([load_image(p) for p in chunk], return_tensors="pt")
            with torch.inference_mode():
                feats = captioner.vision_embeds(pixels["pixel_values"].to(device)).cpu()  # [B, P+1, H]
            for img, f in zip(chunk, feats):
                with atomic_write(self.path(img), mode="wb") as fh:
                    fh.write(_to_bytes(f.contiguous()))
        return len(todo)


def _to_bytes(t: torch.Tensor) -> bytes:
    return save({"features": t})
