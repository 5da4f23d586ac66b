"""Reading predictions and references for scoring, joined by ``image_id``.

Predictions JSONL: ``{"image_id", "caption", ...}`` (model, adapter, decoding... are kept).
References JSONL: ``{"image_id", "captions": [...]}`` or caption records
``{"image_id", "image", "captions", "meta"}``; records give the image paths that image-based
metrics need. Errors name the file, the line and what to fix.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path
from typing import Any

from captune.errors import DataError
from captune.io import iter_jsonl, write_jsonl


class Predictions(list):
    """Prediction objects (dicts with ``image_id`` and ``caption``) read from ``path``."""

    path: str = "<predictions>"


@dataclass
class Reference:
    image_id: str
    captions: list[str]
    image: str | None = None


class References(list):
    """``Reference`` objects read from ``path``."""

    path: str = "<references>"


@dataclass
class Aligned:
    """Predictions and references of the same images, in the predictions' order."""

    image_ids: list[str]
    predictions: list[str]
    references: list[list[str]]
    images: list[str] | None  # image paths when every reference has one


def load_predictions(path: str | os.PathLike) -> Predictions:
    out, seen = Predictions(), {}
    out.path = str(path)
    for line, obj in iter_jsonl(path):
        where = f"{path}:{line}"
        if not isinstance(obj, dict) or "image_id" not in obj or "caption" not in obj:
            raise DataError(f"{where}: a prediction needs 'image_id' and 'caption'")
        if not isinstance(obj["caption"], str):
            raise DataError(f"{where}: 'caption' must be a string")
        image_id = obj["image_id"] = str(obj["image_id"])  # (the line's own dict)
        if image_id in seen:
            raise DataError(f"{where}: image_id {image_id!r} already has a prediction (line {seen[image_id]}); "
                            "score one caption per image")
        seen[image_id] = line
        out.append(obj)
    return out


def load_references(path: str | os.PathLike) -> References:
    out, seen = References(), {}
    out.path = str(path)
    for line, obj in iter_jsonl(path):
        where = f"{path}:{line}"
        if not isinstance(obj, dict) or "image_id" not in obj or "captions" not in obj:
            raise DataError(f"{where}: a reference line needs 'image_id' and 'captions' (a list of strings)")
        caps = obj["captions"]
        if not isinstance(caps, list) or not caps or not all(map(isinstance, caps, repeat(str))):
            raise DataError(f"{where}: 'captions' must be a non-empty list of strings")
        image_id = str(obj["image_id"])
        if image_id in seen:
            raise DataError(f"{where}: image_id {image_id!r} already appears on line {seen[image_id]}; "
                            "put all captions of an image on one line")
        seen[image_id] = line
        image = obj.get("image")
        out.append(Reference(image_id, caps, str(image) if image else None))  # (the line's own list)
    return out


def _some(ids: list[str], limit: int = 10) -> str:
    shown = ", ".join(repr(i) for i in ids[:limit])
    return shown + (f" and {len(ids) - limit} more" if len(ids) > limit else "")


def align(preds: Predictions | list[dict], refs: References | list[Reference]) -> Aligned:
    """Join predictions and references by ``image_id``; every image must be in both."""
    by_id = {r.image_id: r for r in refs}
    pred_ids = [str(p["image_id"]) for p in preds]
    ppath, rpath = getattr(preds, "path", "<predictions>"), getattr(refs, "path", "<references>")
    missing = [i for i in pred_ids if i not in by_id]
    if missing:
        raise DataError(f"{len(missing)} predicted image(s) in {ppath} have no references in {rpath}: "
                        f"{_some(missing)}")
    extra = sorted(set(by_id) - set(pred_ids))
    if extra:
        raise DataError(f"{len(extra)} image(s) in {rpath} have no prediction in {ppath}: {_some(extra)}; "
                        "predict every image or score a references file restricted to the predicted ones")
    matched = [by_id[i] for i in pred_ids]
    images = [r.image for r in matched]
    return Aligned(pred_ids, [p["caption"] for p in preds], [r.captions for r in matched],
                   images if all(images) else None)


def load_train_captions(path: str | os.PathLike) -> list[str]:
    """Training captions: a text file (one per line) or JSONL with ``captions`` or ``caption``."""
    path = Path(path)
    if path.suffix != ".jsonl":
        return [line.rstrip("\n") for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    out: list[str] = []
    for line, obj in iter_jsonl(path):
        caps = obj.get("captions", [obj.get("caption")]) if isinstance(obj, dict) else None
        if not caps or not all(isinstance(c, str) for c in caps):
            raise DataError(f"{path}:{line}: expected 'captions' (list of strings) or 'caption'")
        out.extend(caps)
    return out


def score_files(
    predictions: str | os.PathLike,
    references: str | os.PathLike,
    metrics=None,
    *,
    tokenizer: str = "python",
    per_item: str | os.PathLike | None = None,
    **options: Any,
):
    """Score a predictions file against a references file; optionally write per-item JSONL.

    Per-item lines are ``{"image_id", <metric>: value, ...}`` in the predictions' order.
    """
    from captune.metrics import score

    data = align(load_predictions(predictions), load_references(references))
    scores = score(data.predictions, data.references, data.images, metrics, tokenizer=tokenizer, **options)
    scores.info.setdefault("images", str(len(data.image_ids)))
    if per_item is not None:
        write_jsonl(per_item, ({"image_id": i, **row} for i, row in zip(data.image_ids, scores.per_item)))
    return scores


def read_json_option(path: str | os.PathLike, what: str) -> Any:
    """A JSON file given as an option (e.g. an attribute vocabulary), with a clear error."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise DataError(f"{path}: cannot read the {what} ({e})") from e
