"""The same model under several decodings: captions for each, image features computed once.

    captune evaluate --adapter runs/x/checkpoints/best --data test.jsonl --out runs/x/eval/finetuned \
        --decodings beam,top_k,top_p

``captune.generate.caption_to_files`` writes one predictions file per decoding and resumes:
images already in every file are skipped.
``decoding_table`` scores each file for quality (BLEU-4, CIDEr, ROUGE-L, CLIPScore with a CLIP
model) and diversity (distinct n-grams, self-BLEU, vocabulary, mean length) side by side.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from captune.errors import CaptuneError

if TYPE_CHECKING:
    from captune.generate import Decoding

QUALITY_METRICS = ("bleu_4", "cider", "rouge_l")
CLIP_METRICS = ("clipscore",)


def parse_decodings(names: str | Sequence[str | Decoding] | Mapping[str, Decoding]) -> dict[str, Decoding]:
    """``"beam,top_k,top_p"`` (preset names), a list of names / ``Decoding`` objects, or ``{name: Decoding}``."""
    from captune.generate import decoding_preset

    if isinstance(names, Mapping):
        return dict(names)
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    out: dict[str, Decoding] = {}
    for item in names:
        dec = decoding_preset(item) if isinstance(item, str) else item
        name = item if isinstance(item, str) else dec.label()
        if name in out:
            raise CaptuneError(f"decoding {name!r} given twice")
        out[name] = dec
    return out


def decoding_table(
    captions: Mapping[str, Sequence[str]],
    decodings: Mapping[str, Decoding],
    references: Sequence[Sequence[str]],
    images: Sequence[str],
    clip_model: str | None = None,
    **options: Any,
) -> list[dict[str, Any]]:
    """One row per decoding: ``{"name", "label", "metrics": {...}, "unavailable": {...}}``."""
    from captune.metrics import MetricResources, score
    from captune.metrics.diversity import OUTPUTS as DIVERSITY

    wanted = list(QUALITY_METRICS) + (list(CLIP_METRICS) if clip_model else []) + list(DIVERSITY)
    rows = []
    with MetricResources() as resources:  # models and reference tokens kept across the decodings
        for name, dec in decodings.items():
            scores = score(list(captions[name]), references, images=images, metrics=wanted,
                           clip_model=clip_model, resources=resources, **options)
            rows.append(
                {
                    "name": name,
                    "label": dec.label(),
                    "decoding": dec.model_dump(),
                    "metrics": {m: scores.corpus.get(m) for m in wanted},
                    "unavailable": scores.unavailable,
                }
            )
    return rows
