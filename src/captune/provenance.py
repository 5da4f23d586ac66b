"""What a captions file was written with, and when its captions may be reused.

Every line that ``captune caption`` and ``captune evaluate`` write carries what made its caption:

    {"image_id": ..., "caption": ..., "model": "blip2-opt-2.7b", "adapter": "runs/x/checkpoints/best",
     "decoding": {...}, "model_weights": "sha256:…", "adapter_weights": "sha256:…",
     "prompt": "a photo of", "dtype": "bfloat16", "postprocess": {...}}

A rerun into the same file keeps a line only when all of ``KEY`` match this run: the base model's
weights (``captune.models.fingerprint``), the adapter's weights, the prompt, the dtype, every
decoding setting and the caption clean-up. On any difference it stops and says which line, what
differs and what to do: a file never mixes captions of two set-ups, and one model's captions are
never scored as another's. The model and adapter names are shown but not compared (the same
weights under another name or path are the same model). Lines without these fields (an older
file, or captions from elsewhere) are not reused either.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from captune.errors import CaptuneError

KEY = ("model_weights", "adapter_weights", "prompt", "dtype", "decoding", "postprocess")
_LABELS = {"model_weights": "model weights", "adapter_weights": "adapter weights"}
_UNRECORDED = ("the line does not say which model weights, prompt, dtype and clean-up made it (an earlier captune, "
               "or captions from elsewhere)")


def caption_source(model: str | None, adapter: str | os.PathLike | None, prompt: str | None,
                   dtype: str) -> dict[str, Any]:
    """The model part of the key, found without loading the model.

    ``model_weights`` is None when the base model is a hub id not yet in the local cache (load
    it, then ask again).
    """
    from captune.models.fingerprint import model_weights, weights_sha256
    from captune.models.loading import read_checkpoint_meta, resolve_dtype

    if not model and not adapter:
        raise CaptuneError("give --model NAME_OR_PATH, or --adapter DIR for a fine-tuned checkpoint")
    meta = read_checkpoint_meta(adapter) if adapter else {}
    adapter_weights = "sha256:" + weights_sha256(adapter) if adapter else None
    full = meta.get("kind") == "full"  # the checkpoint holds the whole model: no base model is loaded
    base = meta.get("base_model") if full else model or meta.get("base_model")
    return {
        "model": base,
        "adapter": str(adapter) if adapter else None,
        "model_weights": adapter_weights if full else model_weights(base),
        "adapter_weights": adapter_weights,
        "prompt": meta.get("prompt", "") if prompt is None else prompt,
        "dtype": resolve_dtype(dtype),
    }


def default_postprocess():
    """The caption clean-up used unless told otherwise: no @handles, hashtags or links."""
    from captune.data.clean import CleanConfig

    return CleanConfig(strip_urls=True, handles="strip", hashtags="strip", min_words=0)


def postprocess_json(postprocess) -> dict[str, Any] | str:
    """The clean-up as written in a line: the rules, or ``"raw"`` for none."""
    if postprocess is False:
        return "raw"
    return (postprocess or default_postprocess()).model_dump()


def reusable_ids(path: Path, key: Mapping[str, Any]) -> set[str]:
    """Image ids already captioned in ``path`` with ``key``; any line written otherwise stops the run."""
    from captune.io import iter_jsonl

    if not path.exists():
        return set()
    done = set()
    for line, row in iter_jsonl(path, skip_partial_last=True):
        differences = _differences(row, key)
        if differences:
            raise CaptuneError(
                f"{path}: line {line} does not match this run: "
                + "; ".join(differences)
                + f". Its captions are not reused: give another --out, or delete {path} to caption again"
            )
        done.add(row.get("image_id"))
    return done


def _differences(row: Mapping[str, Any], key: Mapping[str, Any]) -> list[str]:
    if "model_weights" not in row:
        return [_UNRECORDED]
    out = []
    for field in KEY:
        old, new = row.get(field, _MISSING), key[field]
        if old == new:
            continue
        if field == "decoding" and isinstance(old, dict):
            out += [f"decoding {k}: {old.get(k, _MISSING)!r} here {new.get(k, _MISSING)!r}"
                    for k in dict.fromkeys([*new, *old]) if old.get(k, _MISSING) != new.get(k, _MISSING)]
            continue
        label = _LABELS.get(field, field)
        if field == "model_weights":
            out.append(f"{label}: {old!r} ({row.get('model')}) here {new!r} ({key['model']})")
        else:
            out.append(f"{label}: {old!r} here {new!r}")
    return out


class _Missing:
    def __repr__(self) -> str:
        return "not recorded"


_MISSING = _Missing()
