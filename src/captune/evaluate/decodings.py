"""The same model under several decodings: captions for each, image features computed once.

    captune evaluate --adapter runs/x/checkpoints/best --data test.jsonl --out runs/x/eval/finetuned \
        --decodings beam,top_k,top_p

``caption_with_decodings`` writes one predictions file per decoding (lines as ``captune
caption`` writes them) and resumes like it: images already in every file are skipped.
``decoding_table`` scores each file for quality (BLEU-4, CIDEr, ROUGE-L, CLIPScore with a CLIP
model) and diversity (distinct n-grams, self-BLEU, vocabulary, mean length) side by side.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from captune.errors import CaptuneError

if TYPE_CHECKING:
    from captune.generate import CaptionItem, Decoding

QUALITY_METRICS = ("bleu_4", "cider", "rouge_l")
CLIP_METRICS = ("clipscore",)


def parse_decodings(names: str | Sequence[str | Decoding]) -> dict[str, Decoding]:
    """``"beam,top_k,top_p"`` (preset names) or a list of names / ``Decoding`` objects, by name."""
    from captune.generate import decoding_preset

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


def caption_with_decodings(
    items: Sequence[CaptionItem],
    outs: Mapping[str, str | os.PathLike],
    decodings: Mapping[str, Decoding],
    model: str | None = None,
    adapter: str | None = None,
    prompt: str | None = None,
    batch_size: int = 8,
    dtype: str = "float32",
    progress: bool | None = None,
    postprocess=None,
) -> dict[str, Any]:
    """Caption ``items`` with every decoding (``outs[name]`` is its JSONL file), resumably."""
    import torch

    from captune.generate import generate_captions, load_for_captioning, tidy
    from captune.io import JsonlAppender, iter_jsonl
    from captune.models.blip2 import Blip2Batcher, Blip2Captioner

    paths = {name: Path(outs[name]) for name in decodings}
    done = {
        name: {o.get("image_id") for _, o in iter_jsonl(p, skip_partial_last=True)} if p.exists() else set()
        for name, p in paths.items()
    }
    todo = [it for it in items if any(it.image_id not in done[name] for name in decodings)]
    net, processor, meta = load_for_captioning(model, adapter, dtype)
    prompt = meta.get("prompt", "") if prompt is None else prompt
    device = "cuda" if torch.cuda.is_available() else "cpu"
    captioner = Blip2Captioner(net).to(device).eval()
    batcher = Blip2Batcher(processor, captioner.blip2.config)
    fields = {"model": meta.get("base_model", model), "adapter": str(adapter) if adapter else None}
    logs = {name: JsonlAppender(p) for name, p in paths.items()}
    try:

        def write(chunk, results):
            for (name, dec), per_item in zip(decodings.items(), results):
                for it, candidates in zip(chunk, per_item):
                    if it.image_id in done[name]:
                        continue
                    candidates = [tidy(c, postprocess) for c in candidates]
                    row = {
                        "image_id": it.image_id,
                        "caption": candidates[0],
                        **fields,
                        "decoding": dec.model_dump(),
                    }
                    if len(candidates) > 1:
                        row["candidates"] = candidates
                    logs[name].write(row)

        generate_captions(
            captioner,
            batcher,
            todo,
            list(decodings.values()),
            prompt,
            batch_size,
            on_batch=write,
            progress=progress,
        )
    finally:
        for log in logs.values():
            log.close()
    return {
        "images": len(items),
        "captioned": len(todo),
        "skipped": len(items) - len(todo),
        "prompt": prompt,
        "files": {name: str(p) for name, p in paths.items()},
    }


def decoding_table(
    captions: Mapping[str, Sequence[str]],
    decodings: Mapping[str, Decoding],
    references: Sequence[Sequence[str]],
    images: Sequence[str],
    clip_model: str | None = None,
    **options: Any,
) -> list[dict[str, Any]]:
    """One row per decoding: ``{"name", "label", "metrics": {...}, "unavailable": {...}}``."""
    from captune.metrics import score
    from captune.metrics.diversity import OUTPUTS as DIVERSITY

    wanted = list(QUALITY_METRICS) + (list(CLIP_METRICS) if clip_model else []) + list(DIVERSITY)
    rows = []
    for name, dec in decodings.items():
        scores = score(
            list(captions[name]), references, images=images, metrics=wanted, clip_model=clip_model, **options
        )
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
