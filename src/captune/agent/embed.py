"""CLIP for the agent: photo embeddings (cached by content hash), text embeddings, CLIPScore.

    clip = AgentClip(cfg.embeddings, cache_dir="out/cache")
    vectors = clip.embed_photos(photos)            # {sha256: unit vector}; cached photos are not decoded
    scores = clip.label_scores(vectors, ["a photo of food", ...])

``embeddings.model`` is a Hugging Face CLIP (hub id in the local cache, or a folder saved with
``save_pretrained``), a registry name (``shapes-clip``, the tiny CLIP that ships with captune), or
with ``backend: open_clip`` an open_clip architecture and ``pretrained`` tag (the ``open_clip``
extra). Embeddings are stored one file per photo under
``CACHE/embeddings/<model key>/<sha256[:2]>/<sha256>.npy``; the model key hashes the backend,
the name and the weights, so a different model never reads another's vectors, and a rerun after
adding photos embeds only the new ones.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from captune.agent.config import EmbeddingsSection
from captune.agent.ingest import open_photo
from captune.agent.records import Photo
from captune.errors import CaptuneError
from captune.io import atomic_write
from captune.metrics.clipscore import CLIP_PREFIX, CLIP_WEIGHT

OPEN_CLIP_HINT = "pip install open_clip_torch (it pulls torchvision and a CUDA torch build)"


class AgentClip:
    """A CLIP model with the agent's embedding cache; loads the model on first use."""

    def __init__(self, cfg: EmbeddingsSection, cache_dir: str | os.PathLike | None = None,
                 loaded: dict[str, Any] | None = None):
        self.cfg = cfg
        self.cache_dir = Path(cache_dir) / "embeddings" if cache_dir is not None else None
        self._model: Any = None
        self._loaded = loaded
        """Models already loaded, by backend, name, tag and device: shared by the runs of a sweep."""
        self.embedded = 0
        """Photos embedded by the model in this process (the rest came from the cache)."""
        self.cached = 0

    @cached_property
    def key(self) -> str:
        """What identifies this model's vectors: backend, name, pretrained tag and weights (hashed once:
        a local folder's weights are read to hash them)."""
        from captune.models.fingerprint import model_weights

        weights = model_weights(self.cfg.model) if self.cfg.backend == "hf" else None
        ident = [self.cfg.backend, self.cfg.model, self.cfg.pretrained, weights]
        return hashlib.sha256(json.dumps(ident).encode()).hexdigest()[:16]

    def embed_photos(self, photos: Sequence[Photo]) -> dict[str, np.ndarray]:
        """Unit image vectors keyed by sha256, for every photo with a sha256 that ingest could read."""
        todo = {p.sha256: p.path for p in photos if p.sha256 and p.status != "rejected"}
        out: dict[str, np.ndarray] = {}
        folder = self.cache_dir / self.key if self.cache_dir is not None and todo else None
        if folder is not None:
            for sha in list(todo):
                f = folder / sha[:2] / f"{sha}.npy"
                if f.exists():
                    out[sha] = np.load(f)
                    del todo[sha]
        self.cached += len(out)
        items = sorted(todo.items())
        bs = self.cfg.batch_size
        with ThreadPoolExecutor(max_workers=2) as pool:
            batches = [items[i:i + bs] for i in range(0, len(items), bs)]
            decoded = pool.map(lambda b: [open_photo(path) for _, path in b], batches)
            for batch, images in zip(batches, decoded, strict=True):
                vectors = self.embed_images(images)
                for (sha, _), v in zip(batch, vectors, strict=True):
                    out[sha] = v
                    if folder is not None:
                        _save(folder / sha[:2] / f"{sha}.npy", v)
        self.embedded += len(items)
        return out

    def embed_images(self, images: list) -> np.ndarray:
        """Unit vectors of PIL images, shape ``(n, dim)``, float32."""
        if not images:
            return np.zeros((0, 0), np.float32)
        import torch

        m = self.model
        with torch.inference_mode():
            if m["kind"] == "open_clip":
                pixels = torch.stack([m["preprocess"](im) for im in images]).to(m["device"])
                feats = m["model"].encode_image(pixels)
            else:
                pixels = m["image_processor"](images=images, return_tensors="pt")["pixel_values"]
                feats = m["model"].get_image_features(pixel_values=pixels.to(m["device"]))
        return _unit(feats)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors of texts, shape ``(n, dim)``, float32."""
        m = self.model
        if m["kind"] != "open_clip":
            from captune.models.clip import text_features

            return text_features(m["model"], m["tokenizer"], texts, m["device"])
        import torch

        with torch.inference_mode():
            return _unit(m["model"].encode_text(m["tokenizer"](list(texts)).to(m["device"])))

    @property
    def logit_scale(self) -> float:
        """CLIP's learned temperature (``exp(logit_scale)``, 100 for OpenAI's CLIP)."""
        return float(self.model["model"].logit_scale.exp().item())

    def clipscore(self, images: list, captions: Sequence[str]) -> list[float]:
        """CLIPScore (Hessel et al. 2021) of each caption against its image: 2.5 x max(cos, 0)."""
        if not images:
            return []
        a = self.embed_images(images)
        b = self.embed_texts([CLIP_PREFIX + c for c in captions])
        return [round(CLIP_WEIGHT * max(float(x), 0.0), 4) for x in (a * b).sum(1)]

    @property
    def model(self) -> dict[str, Any]:
        if self._model is None:
            if self._loaded is None:
                self._model = _load(self.cfg)
            else:
                which = json.dumps([self.cfg.backend, self.cfg.model, self.cfg.pretrained, self.cfg.device])
                if which not in self._loaded:
                    self._loaded[which] = _load(self.cfg)
                self._model = self._loaded[which]
        return self._model


def _load(cfg: EmbeddingsSection) -> dict[str, Any]:
    from captune.metrics.encoders import resolve_device

    device = resolve_device(cfg.device)
    if cfg.backend == "open_clip":
        return _load_open_clip(cfg, device)
    from captune.models.registry import CLIP, lookup

    entry = lookup(cfg.model)
    if entry is not None and entry.loader is not None:
        if entry.task != CLIP:
            raise CaptuneError(f"embeddings.model {cfg.model!r} is a captioner, not a CLIP; "
                               "use a CLIP such as openai/clip-vit-base-patch32 or shapes-clip")
        model, processor = entry.loader()
        model.to(device).eval()
        return {"kind": "hf", "model": model, "tokenizer": processor.tokenizer,
                "image_processor": processor.image_processor, "device": device}
    from captune.metrics.encoders import load_encoder

    enc = load_encoder(entry.checkpoint if entry else cfg.model, device, images=True)
    return {"kind": "hf", "model": enc.model, "tokenizer": enc.tokenizer,
            "image_processor": enc.image_processor, "device": device}


def _load_open_clip(cfg: EmbeddingsSection, device: str) -> dict[str, Any]:
    try:
        import open_clip
    except ImportError:
        raise CaptuneError(f"embeddings.backend open_clip needs the open_clip package: {OPEN_CLIP_HINT}; "
                           "or use backend: hf with a Hugging Face CLIP") from None
    model, _, preprocess = open_clip.create_model_and_transforms(cfg.model, pretrained=cfg.pretrained,
                                                                 device=device)
    model.eval()
    return {"kind": "open_clip", "model": model, "preprocess": preprocess,
            "tokenizer": open_clip.get_tokenizer(cfg.model), "device": device}


def _unit(feats: Any) -> np.ndarray:
    feats = feats if hasattr(feats, "norm") else feats.pooler_output
    feats = feats.float()
    return (feats / feats.norm(dim=-1, keepdim=True)).cpu().numpy().astype(np.float32)


def _save(path: Path, vector: np.ndarray) -> None:
    with atomic_write(path, "wb") as f:
        np.save(f, vector)
