"""Sentence-embedding cosine between each caption and its closest reference.

    from captune.metrics.sentence import sentence_cosine
    result = sentence_cosine(predictions, references, sentence_model="sentence-transformers/all-MiniLM-L6-v2")

Any Hugging Face text encoder works. A sentence embedding is the mean of the last hidden layer
over real tokens (attention mask 1, special tokens included), the pooling of most
sentence-transformers models (all-MiniLM-L6-v2, all-mpnet-base-v2); sentence-transformers itself
is not needed. Per item: the maximum cosine between the caption and each of its references.
The corpus value is the mean over items that have references.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from captune.errors import ModelNotFoundError
from captune.metrics.base import MetricResult, MetricUnavailable, register
from captune.metrics.encoders import Encoder, load_encoder, max_length


def embed_sentences(texts: Sequence[str], encoder: Encoder, *, batch_size: int = 64) -> np.ndarray:
    """Unit mean-pooled embeddings, shape ``(len(texts), dim)``."""
    unique = sorted(set(texts), key=len, reverse=True)  # similar lengths share a batch
    vectors: dict[str, np.ndarray] = {}
    for start in range(0, len(unique), batch_size):
        chunk = unique[start : start + batch_size]
        for text, vec in zip(chunk, _mean_pooled(chunk, encoder)):
            vectors[text] = vec
    if not texts:
        return np.zeros((0, encoder.model.config.hidden_size), dtype=np.float32)
    return np.stack([vectors[t] for t in texts])


@register("sentence_cosine", outputs=("sentence_cosine",))
def sentence_cosine(
    predictions: list[str],
    references: list[list[str]],
    images: list[str | Path] | None = None,
    **options: Any,
) -> MetricResult:
    """Max cosine with the references per item (options: sentence_model, device, batch_size,
    resources)."""
    name = options.get("sentence_model")
    if not name:
        raise MetricUnavailable(
            "no sentence encoder configured: pass --sentence-model NAME_OR_PATH "
            "(e.g. sentence-transformers/all-MiniLM-L6-v2)"
        )
    try:
        enc = load_encoder(name, options.get("device"), resources=options.get("resources"))
    except ModelNotFoundError as err:
        raise MetricUnavailable(str(err)) from err
    batch = int(options.get("batch_size") or 64)
    flat = [r for refs in references for r in refs]
    emb = embed_sentences([*predictions, *flat], enc, batch_size=batch)
    cand, ref = emb[: len(predictions)], emb[len(predictions) :]
    per_item: list[dict[str, float]] = []
    start = 0
    for i, refs in enumerate(references):
        sims = ref[start : start + len(refs)] @ cand[i]
        per_item.append({"sentence_cosine": float(sims.max())} if len(refs) else {})
        start += len(refs)
    values = [item["sentence_cosine"] for item in per_item if item]
    corpus = {"sentence_cosine": float(np.mean(values))} if values else {}
    return MetricResult(corpus, per_item, {"sentence_cosine": f"model={enc.name} pooling=mean"})


def _mean_pooled(texts: list[str], encoder: Encoder) -> np.ndarray:
    import torch

    batch = encoder.tokenizer(
        texts, padding=True, truncation=True, max_length=max_length(encoder.tokenizer), return_tensors="pt"
    )
    model = encoder.model.get_encoder() if encoder.model.config.is_encoder_decoder else encoder.model
    mask = batch["attention_mask"].to(encoder.device)
    with torch.inference_mode():
        hidden = model(input_ids=batch["input_ids"].to(encoder.device), attention_mask=mask).last_hidden_state
    weights = mask.unsqueeze(-1).float()  # (batch, seq, 1)
    pooled = (hidden.float() * weights).sum(1) / weights.sum(1).clamp_min(1e-9)  # (batch, dim)
    return torch.nn.functional.normalize(pooled, dim=-1).cpu().numpy()
