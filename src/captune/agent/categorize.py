"""Zero-shot labels: each photo against ``prompt_template`` for every label, with CLIP.

A label's score is CLIP's zero-shot probability: the softmax over the labels of the cosines
scaled by the model's own temperature (``logit_scale``, 100 for OpenAI's CLIP), so scores of
one photo sum to 1 and ``threshold`` means the same across models. A photo keeps the labels
scoring at least ``threshold``, best first, at most ``topk``; it may keep none. Every readable
photo is labelled (duplicates and low-quality ones too, so the label metrics see them all).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import numpy as np

from captune.agent.config import CategorizeSection
from captune.agent.records import Photo


def label_probabilities(image_vectors: np.ndarray, label_vectors: np.ndarray, logit_scale: float) -> np.ndarray:
    """``(n_images, n_labels)`` softmax over labels of ``logit_scale`` x cosine."""
    logits = logit_scale * image_vectors @ label_vectors.T
    logits -= logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(axis=1, keepdims=True)


def categorize(photos: list[Photo], cfg: CategorizeSection, embeddings: Mapping[str, np.ndarray],
               label_vectors: np.ndarray, logit_scale: float) -> tuple[list[Photo], dict[str, np.ndarray]]:
    """Photos with ``labels`` set, and every labelled photo's full score vector by sha256 (for clustering)."""
    shas = sorted({p.sha256 for p in photos if p.status != "rejected" and p.sha256 in embeddings})
    scores: dict[str, np.ndarray] = {}
    if shas:
        probs = label_probabilities(np.stack([embeddings[s] for s in shas]), label_vectors, logit_scale)
        scores = dict(zip(shas, probs, strict=True))
    out = []
    for p in photos:
        if p.sha256 not in scores:
            out.append(p)
            continue
        row = scores[p.sha256]
        order = np.argsort(-row, kind="stable")[: cfg.topk]
        kept = tuple((cfg.labels[i], round(float(row[i]), 4)) for i in order if row[i] >= cfg.threshold)
        out.append(replace(p, labels=kept))
    return out, scores


def label_texts(cfg: CategorizeSection) -> list[str]:
    return [cfg.prompt_template.format(label=label) for label in cfg.labels]
