"""Attribute-enhanced captions: CLIP picks each image's colour, material, ... from a vocabulary.

    captune data enhance records.jsonl --vocab attributes.yaml --clip-model shapes-clip --out enhanced.jsonl
    summary = enhance_file("records.jsonl", "attributes.yaml", "shapes-clip", "enhanced.jsonl")

The vocabulary is the mapping the ``attributes`` metric takes, ``{category: [values]}`` (YAML or
JSON). For each image and category, CLIP scores one prompt per value (``prompt``, default
"a photo of a {value} object"; "a photo of a {value} shoe" for a shoe catalogue); a value's
score is its probability under a softmax over the category's values of CLIP's logits
(``logit_scale`` x cosine). The best value is kept when its probability beats the runner-up's
by at least ``min_margin`` (a category of one value is always kept). Every caption of the record
is rewritten by ``template``, whose placeholders are the categories and ``{caption}`` (default:
the categories in vocabulary order, then the caption: "{colour} {material} {caption}"); a
category that was not kept is left out with its space.

Each record gains ``meta.enhanced_attributes`` (``{category: value}``, the kept ones),
``meta.enhanced_scores`` (``{category: probability}`` of those values), ``meta.enhanced_margins``
(``{category: best minus runner-up probability}`` for every category, kept or not, to choose
another margin without running CLIP again) and ``meta.original_captions``. A record whose image cannot be read keeps its captions, with no
enhanced attributes, and is counted in the summary. Relative image paths are written absolute
when the output goes to another folder, so they still resolve.

Measured on single-object shapes-world images with the shipped CLIP (``benchmarks/enhance.py``,
``benchmarks/RESULTS.md``): the right colour for 99.1% of 1,000; the material (pattern) for 26.2%,
chance level, since that CLIP was never taught patterns.
"""

from __future__ import annotations

import os
import string
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from captune.data.records import CaptionRecord, read_records, with_absolute_images, write_records
from captune.errors import ConfigError

DEFAULT_PROMPT = "a photo of a {value} object"


@dataclass
class Choice:
    """What CLIP chose for one image: the kept attributes, their probabilities, and every margin."""

    attributes: dict[str, str] = field(default_factory=dict)
    scores: dict[str, float] = field(default_factory=dict)
    margins: dict[str, float] = field(default_factory=dict)
    """Best minus runner-up probability per category (kept or not)."""


def read_vocab(vocab: Mapping[str, Sequence[str]] | str | os.PathLike) -> dict[str, list[str]]:
    """The vocabulary given inline or as a YAML/JSON file: ``{category: [values]}``, checked."""
    import yaml

    source = "vocabulary"
    if isinstance(vocab, (str, os.PathLike)):
        source = str(vocab)
        try:
            vocab = yaml.safe_load(Path(vocab).read_text(encoding="utf-8"))
        except OSError as err:
            raise ConfigError(f"cannot read the vocabulary {source}: {err.strerror or err}") from None
        except yaml.YAMLError as err:
            raise ConfigError(f"{source}: not valid YAML or JSON ({err})") from None
    if not isinstance(vocab, Mapping) or not vocab:
        raise ConfigError(f"{source}: expected a mapping of category -> list of values, e.g. {{colour: [red, blue]}}")
    for category, values in vocab.items():
        if not isinstance(values, list) or not values or not all(isinstance(v, str) and v.strip() for v in values):
            raise ConfigError(f"{source}: category {category!r} must map to a list of non-empty strings")
    return {str(c): list(v) for c, v in vocab.items()}


def default_template(vocab: Mapping[str, Sequence[str]]) -> str:
    """The categories in vocabulary order, then the caption: ``"{colour} {material} {caption}"``."""
    return " ".join([*(f"{{{c}}}" for c in vocab), "{caption}"])


def check_template(template: str, vocab: Mapping[str, Sequence[str]]) -> str:
    """``template`` when its placeholders are categories of ``vocab`` and ``{caption}``; else a ConfigError."""
    try:
        names = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as err:
        raise ConfigError(f"--template {template!r}: {err} (write braces as {{{{ and }}}})") from None
    allowed = [*vocab, "caption"]
    unknown = [n for n in names if n not in allowed]
    if unknown:
        raise ConfigError(f"--template {template!r}: unknown placeholder {{{unknown[0]}}}; "
                          f"use the vocabulary's categories and caption: {', '.join(allowed)}")
    if "caption" not in names:
        raise ConfigError(f"--template {template!r}: put {{caption}} where the original caption goes")
    return template


def check_prompt(prompt: str) -> str:
    if "{value}" not in prompt:
        raise ConfigError(f"--prompt {prompt!r}: needs {{value}} where the attribute goes, "
                          f"e.g. {DEFAULT_PROMPT!r}")
    return prompt


def enhance_caption(template: str, caption: str, attributes: Mapping[str, str],
                    categories: Sequence[str]) -> str:
    """``template`` filled with the caption and the kept attributes; missing ones leave no gap."""
    values = {c: attributes.get(c, "") for c in categories}
    return " ".join(template.format(caption=caption, **values).split())


def choose(probs: Mapping[str, np.ndarray], vocab: Mapping[str, Sequence[str]], min_margin: float) -> Choice:
    """Keep each category's best value when its probability beats the runner-up's by ``min_margin``."""
    out = Choice()
    for category, p in probs.items():
        order = np.argsort(-p)
        best = float(p[order[0]])
        margin = best - (float(p[order[1]]) if len(p) > 1 else 0.0)
        value = vocab[category][int(order[0])]
        out.margins[category] = round(margin, 4)
        if margin >= min_margin:
            out.attributes[category], out.scores[category] = value, round(best, 4)
    return out


def attribute_probabilities(clip, images: Sequence[Any], vocab: Mapping[str, Sequence[str]],
                            prompt: str = DEFAULT_PROMPT) -> list[dict[str, np.ndarray]]:
    """Per image, per category: the probability of each value (softmax of CLIP's logits over the category)."""
    image_vectors = clip.embed_images(images)  # (n_images, dim)
    scale = clip.logit_scale
    per_category = {}
    for category, values in vocab.items():
        texts = clip.embed_texts([prompt.format(value=v, category=category) for v in values])  # (n_values, dim)
        logits = scale * image_vectors @ texts.T  # (n_images, n_values)
        logits -= logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        per_category[category] = e / e.sum(axis=1, keepdims=True)
    return [{c: p[i] for c, p in per_category.items()} for i in range(len(images))]


@dataclass
class EnhanceResult:
    records: list[CaptionRecord]
    summary: dict[str, Any]


def enhance_records(records: Sequence[CaptionRecord], vocab: Mapping[str, Sequence[str]], clip,
                    image_root: str | os.PathLike, template: str | None = None, min_margin: float = 0.0,
                    prompt: str = DEFAULT_PROMPT, batch_size: int = 64,
                    progress: bool | None = None) -> EnhanceResult:
    """Enhanced copies of ``records`` (images resolved against ``image_root``) and a summary."""
    from tqdm.auto import tqdm

    template = check_template(template or default_template(vocab), vocab)
    check_prompt(prompt)
    out: list[CaptionRecord] = []
    unreadable: list[str] = []
    kept: Counter = Counter()
    batches = [records[i:i + batch_size] for i in range(0, len(records), batch_size)]
    for batch in tqdm(batches, desc="enhancing", unit="batch", disable=not progress if progress is not None else None):
        images, readable = _load_images(batch, Path(image_root), unreadable)
        probs = attribute_probabilities(clip, images, vocab, prompt) if images else []
        choices = dict(zip(readable, (choose(p, vocab, min_margin) for p in probs)))
        for k, record in enumerate(batch):
            if k not in choices:  # unreadable: the captions stay as they are
                out.append(_enhanced(record, Choice(), None, []))
                continue
            kept.update(choices[k].attributes.keys())  # counts per category (a dict would add its values)
            out.append(_enhanced(record, choices[k], template, list(vocab)))
    summary = {"records": len(records), "scored": len(records) - len(unreadable), "unreadable": unreadable,
               "kept": {c: kept[c] for c in vocab}, "clip_model": clip.name, "prompt": prompt,
               "template": template, "min_margin": min_margin}
    return EnhanceResult(out, summary)


def _load_images(batch: Sequence[CaptionRecord], root: Path, unreadable: list[str]) -> tuple[list, list[int]]:
    from captune.data.images import ImageError, load_image

    images, readable = [], []
    for k, record in enumerate(batch):
        try:
            images.append(load_image(root / record.image))
            readable.append(k)
        except ImageError:
            unreadable.append(record.image_id)
    return images, readable


def _enhanced(record: CaptionRecord, choice: Choice, template: str | None, categories: list[str]) -> CaptionRecord:
    """The record with its captions rewritten by ``template`` (None: kept as they are) and the choice in meta."""
    meta = {**record.meta, "enhanced_attributes": choice.attributes, "enhanced_scores": choice.scores,
            "enhanced_margins": choice.margins, "original_captions": list(record.captions)}
    captions = [enhance_caption(template, c, choice.attributes, categories) if template else c
                for c in record.captions]
    return CaptionRecord(record.image_id, record.image, captions, meta)


def enhance_file(records: str | os.PathLike, vocab: Mapping[str, Sequence[str]] | str | os.PathLike,
                 clip_model: str, out: str | os.PathLike, template: str | None = None, min_margin: float = 0.0,
                 prompt: str = DEFAULT_PROMPT, image_root: str | os.PathLike | None = None,
                 device: str | None = None, batch_size: int = 64, progress: bool | None = None) -> dict[str, Any]:
    """Enhance a records file into ``out`` (JSONL); returns the summary (also its ``out``)."""
    from captune.models.clip import load_clip

    vocab = read_vocab(vocab)
    template = check_template(template or default_template(vocab), vocab)
    check_prompt(prompt)
    source = Path(records)
    loaded = read_records(source)
    root = Path(image_root) if image_root is not None else source.parent
    result = enhance_records(loaded, vocab, load_clip(clip_model, device), root, template, min_margin, prompt,
                             batch_size, progress)
    written = result.records
    if Path(out).resolve().parent != root.resolve():
        written = with_absolute_images(written, root)
    write_records(out, written)
    return {**result.summary, "out": str(out)}
