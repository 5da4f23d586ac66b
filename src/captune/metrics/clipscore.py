"""CLIPScore, RefCLIPScore and the CLIP win rate, on any Hugging Face CLIP-like model.

    from captune.metrics.clipscore import clipscore
    result = clipscore(predictions, references, images, clip_model="openai/clip-vit-base-patch32")

Definitions follow Hessel et al. 2021, "CLIPScore: A Reference-free Evaluation Metric for Image
Captioning" (EMNLP), and its reference implementation (github.com/jmhessel/clipscore):

- CLIPScore(c, v) = 2.5 * max(cos(E_img(v), E_txt("A photo depicts " + c)), 0).
- RefCLIPScore(c, R, v) = harmonic mean of CLIPScore(c, v) and max(max_r cos(E_txt(c), E_txt(r)), 0).
  As in the reference code, the references carry the same "A photo depicts " prefix and the text
  side has no 2.5 weight. The reference code does not clip the text side at 0 while the paper's
  equation does; we follow the paper (the two agree whenever the best reference cosine is >= 0,
  which is the norm for CLIP text embeddings). A harmonic mean of two zeros is 0.
- CLIP win rate: per image, the generated caption wins (1) when its image cosine exceeds that of
  the best-scoring reference caption, ties (within 1e-6) count 0.5, otherwise 0; the corpus
  value is the share of images won. Both sides use the "A photo depicts " prefix.

Corpus values are means of the per-item values. Items without references get CLIPScore only.
Embeddings are unit-normalized float32. With a ``MetricResources`` (option ``resources``),
image embeddings are kept per model by the sha256 of the image bytes and text embeddings by the
exact text, within its bounds, so repeated evaluations (every epoch, every decoding preset)
embed each image and reference once; without one, nothing outlives the call. ``clip_embed_images``,
``clip_embed_texts`` and ``clip_similarity`` are the building blocks for other CLIP uses.
"""

from __future__ import annotations

import hashlib
import itertools
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from captune.errors import DataError, ModelNotFoundError
from captune.io import file_sha256
from captune.metrics.base import MetricResult, MetricUnavailable, register
from captune.metrics.encoders import Encoder, load_encoder
from captune.metrics.resources import BoundedCache, MetricResources

CLIP_PREFIX = "A photo depicts "
CLIP_WEIGHT = 2.5
TIE_TOLERANCE = 1e-6

ImageInput = str | os.PathLike | Any  # a path, or a PIL image
ModelInput = str | os.PathLike | Encoder


def clip_embed_images(
    images: Sequence[ImageInput],
    model: ModelInput,
    *,
    device: str | None = None,
    batch_size: int = 32,
    resources: MetricResources | None = None,
) -> np.ndarray:
    """Unit image embeddings, shape ``(len(images), dim)``; ``images`` are paths or PIL images.
    ``resources`` keeps the model and the embeddings for later calls."""
    enc = _clip_encoder(model, device, resources)
    keyed = [_image_key(img) for img in images]
    keys = [(enc.name, digest) for digest, _ in keyed]
    sources = [source for _, source in keyed]
    return _embed_cached(
        keys, sources, resources and resources.image_embeddings, lambda chunk: _image_features(enc, chunk), batch_size, enc
    )


def clip_embed_texts(
    texts: Sequence[str],
    model: ModelInput,
    *,
    prefix: str = "",
    device: str | None = None,
    batch_size: int = 64,
    resources: MetricResources | None = None,
) -> np.ndarray:
    """Unit text embeddings of ``prefix + text``, shape ``(len(texts), dim)``."""
    enc = _clip_encoder(model, device, resources)
    full = [prefix + t for t in texts]
    keys = [(enc.name, t) for t in full]
    return _embed_cached(
        keys, full, resources and resources.text_embeddings, lambda chunk: _text_features(enc, chunk), batch_size, enc, True
    )


def clip_similarity(
    images: Sequence[ImageInput],
    texts: Sequence[str],
    model: ModelInput,
    *,
    prefix: str = "",
    device: str | None = None,
    batch_size: int = 32,
    resources: MetricResources | None = None,
) -> np.ndarray:
    """Cosine of every image with every text, shape ``(len(images), len(texts))``."""
    img = clip_embed_images(images, model, device=device, batch_size=batch_size, resources=resources)
    txt = clip_embed_texts(texts, model, prefix=prefix, device=device, batch_size=batch_size, resources=resources)
    return img @ txt.T


@register("clipscore", outputs=("clipscore", "refclipscore"), needs_images=True)
def clipscore(
    predictions: list[str],
    references: list[list[str]],
    images: list[str | Path] | None = None,
    **options: Any,
) -> MetricResult:
    """CLIPScore per item and RefCLIPScore where the item has references (options: clip_model,
    device, batch_size, resources)."""
    enc, batch, res = _metric_setup(images, predictions, options)
    img = clip_embed_images(images, enc, batch_size=batch, resources=res)
    cand = clip_embed_texts(predictions, enc, prefix=CLIP_PREFIX, batch_size=batch, resources=res)
    refs = _ref_embeddings(references, enc, batch, res)
    per_item = []
    for i, ref in enumerate(refs):
        item = {"clipscore": CLIP_WEIGHT * max(float(img[i] @ cand[i]), 0.0)}
        if len(ref):
            text_side = max(float(np.max(ref @ cand[i])), 0.0)
            item["refclipscore"] = _harmonic_mean(item["clipscore"], text_side)
        per_item.append(item)
    info = _info(enc, "clipscore", f"w={CLIP_WEIGHT}")
    return MetricResult(_corpus_means(per_item, ("clipscore", "refclipscore")), per_item, info)


@register("clip_win_rate", outputs=("clip_win_rate",), needs_images=True)
def clip_win_rate(
    predictions: list[str],
    references: list[list[str]],
    images: list[str | Path] | None = None,
    **options: Any,
) -> MetricResult:
    """Share of images where CLIP prefers the generated caption to the best reference (ties 0.5)."""
    enc, batch, res = _metric_setup(images, predictions, options)
    img = clip_embed_images(images, enc, batch_size=batch, resources=res)
    cand = clip_embed_texts(predictions, enc, prefix=CLIP_PREFIX, batch_size=batch, resources=res)
    per_item: list[dict[str, float]] = []
    for i, ref in enumerate(_ref_embeddings(references, enc, batch, res)):
        if not len(ref):
            per_item.append({})
            continue
        best_ref = float(np.max(ref @ img[i]))
        margin = float(cand[i] @ img[i]) - best_ref
        per_item.append({"clip_win_rate": 0.5 if abs(margin) <= TIE_TOLERANCE else float(margin > 0)})
    info = _info(enc, "clip_win_rate", f"vs=best reference tie_tolerance={TIE_TOLERANCE}")
    return MetricResult(_corpus_means(per_item, ("clip_win_rate",)), per_item, info)


def _metric_setup(images: Any, predictions: list[str], options: dict[str, Any]) -> tuple[Encoder, int, Any]:
    if images is None:
        raise MetricUnavailable("CLIP metrics need the images: pass the image of each prediction")
    if len(images) != len(predictions):
        raise ValueError(f"{len(images)} images for {len(predictions)} predictions")
    name = options.get("clip_model")
    if not name:
        raise MetricUnavailable("no CLIP model configured: pass --clip-model NAME_OR_PATH")
    try:
        enc = load_encoder(name, options.get("device"), images=True, resources=options.get("resources"))
    except ModelNotFoundError as err:
        raise MetricUnavailable(str(err)) from err
    return enc, int(options.get("batch_size") or 32), options.get("resources")


def _ref_embeddings(references: list[list[str]], enc: Encoder, batch: int, resources) -> list[np.ndarray]:
    """Each item's reference embeddings ``(n_refs, dim)``, embedded in one batched pass."""
    flat = [r for refs in references for r in refs]
    emb = clip_embed_texts(flat, enc, prefix=CLIP_PREFIX, batch_size=batch, resources=resources)
    bounds = np.cumsum([0] + [len(refs) for refs in references])
    return [emb[a:b] for a, b in itertools.pairwise(bounds)]


def _clip_encoder(model: ModelInput, device: str | None, resources: MetricResources | None) -> Encoder:
    return model if isinstance(model, Encoder) else load_encoder(model, device, images=True, resources=resources)


def _image_key(image: ImageInput) -> tuple[str, Any]:
    """``(sha256 of the content, the image)``: the hash keys the embedding cache.

    The bytes are hashed and dropped (holding a dataset's files in memory would not scale);
    an image that misses the cache is read again when it is embedded.
    """
    if hasattr(image, "tobytes"):  # a PIL image already in memory
        head = f"{image.mode}:{image.size}".encode()
        return hashlib.sha256(head + image.tobytes()).hexdigest(), image
    try:
        return file_sha256(image), image
    except OSError as err:
        raise DataError(f"cannot read image {image}: {err.strerror or err}") from err


def _open_image(image: ImageInput) -> Any:
    from PIL import Image, UnidentifiedImageError

    if hasattr(image, "tobytes"):
        return image.convert("RGB")
    try:
        with Image.open(image) as im:
            return im.convert("RGB")
    except (UnidentifiedImageError, OSError) as err:
        raise DataError(f"cannot decode image {image}: {err}") from err


def _embed_cached(
    keys: list[tuple[str, str]],
    sources: list[Any],
    cache: BoundedCache | None,
    embed: Any,
    batch_size: int,
    enc: Encoder,
    longest_first: bool = False,
) -> np.ndarray:
    """Embeddings for ``keys``: cached ones looked up, the rest computed in batches and cached
    (``cache`` None: each distinct key computed once, nothing kept)."""
    found = {} if cache is None else {k: v for k in dict.fromkeys(keys) if (v := cache.get(k)) is not None}
    todo = [(k, src) for k, src in dict(zip(keys, sources)).items() if k not in found]
    if longest_first:
        todo.sort(key=lambda kv: -len(kv[1]))  # texts: each batch pads to similar lengths
    for start in range(0, len(todo), batch_size):
        chunk = todo[start : start + batch_size]
        for (key, _), vec in zip(chunk, embed([src for _, src in chunk])):
            found[key] = vec
            if cache is not None:
                cache.put(key, vec)
    if not keys:
        return np.zeros((0, getattr(enc.model.config, "projection_dim", 0)), dtype=np.float32)
    return np.stack([found[k] for k in keys])


def _image_features(enc: Encoder, images: list[ImageInput]) -> np.ndarray:
    import torch

    pil_images = [_open_image(img) for img in images]
    pixels = enc.image_processor(images=pil_images, return_tensors="pt")["pixel_values"]
    with torch.inference_mode():
        out = enc.model.get_image_features(pixel_values=pixels.to(enc.device))
    return _unit(out)


def _text_features(enc: Encoder, texts: list[str]) -> np.ndarray:
    from captune.models.clip import text_features

    return text_features(enc.model, enc.tokenizer, texts, enc.device)


def _unit(out: Any) -> np.ndarray:
    """Projected features (a tensor, or ``pooler_output`` in transformers 5) scaled to length 1."""
    feats = out if hasattr(out, "norm") else out.pooler_output  # (batch, dim)
    feats = feats.float()
    return (feats / feats.norm(dim=-1, keepdim=True)).cpu().numpy()


def _harmonic_mean(a: float, b: float) -> float:
    return 2 * a * b / (a + b) if a + b > 0 else 0.0


def _corpus_means(per_item: list[dict[str, float]], outputs: tuple[str, ...]) -> dict[str, float]:
    corpus = {}
    for name in outputs:
        values = [item[name] for item in per_item if name in item]
        if values:
            corpus[name] = float(np.mean(values))
    return corpus


def _info(enc: Encoder, group: str, extra: str) -> dict[str, str]:
    import transformers

    return {group: f"model={enc.name} prefix={CLIP_PREFIX!r} {extra} transformers={transformers.__version__}"}
