"""Evaluate a captioner (or a file of captions) on a records file; write ``eval.json``.

    captune evaluate --adapter runs/x/checkpoints/best --data data/splits/test.jsonl --out runs/x/eval/tuned
    captune evaluate --model tiny-blip2-opt --data data/splits/test.jsonl --out runs/x/eval/base
    captune evaluate --predictions preds.jsonl --data data/splits/test.jsonl --out runs/x/eval/mine

Captions go to ``OUT/predictions.jsonl`` (a rerun reuses the captions already there, like
``captune caption``); ``--decodings beam,top_k,top_p`` also writes ``OUT/decodings/NAME.jsonl``
and a decoding table. ``OUT/eval.json`` holds:

- ``metrics`` (corpus values; ``null`` for unavailable ones, with the reason in ``unavailable``),
  ``info`` (metric settings, e.g. the CLIP model);
- ``per_image``: image id, image path, caption, references, per-image scores and error flags;
- ``errors``: counts per error flag (see ``captune.evaluate.errors``);
- ``model`` and ``data`` fingerprints: base model, adapter folder and the sha256 of its weight
  files, prompt; sha256 of the records file, image and reference counts; sha256 of the captions;
- ``config``: decoding, metrics, options; ``decodings``: the decoding table when asked for.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from captune import __version__
from captune.errors import CaptuneError, DataError
from captune.evaluate.errors import analyze_errors

if TYPE_CHECKING:
    from captune.generate import CaptionItem, Decoding

CLIP_METRICS = ("clipscore", "refclipscore")
EVAL_FILE, PREDICTIONS_FILE = "eval.json", "predictions.jsonl"
PRIMARY = "_primary"  # the --decoding captions, written to predictions.jsonl


def default_metrics(clip_model: str | None) -> list[str]:
    """The COCO metrics and the diversity metrics; CLIPScore and RefCLIPScore with a CLIP model."""
    from captune.metrics import DEFAULT_METRICS

    return list(DEFAULT_METRICS) + (list(CLIP_METRICS) if clip_model else [])


def evaluate(
    data: str | os.PathLike,
    out: str | os.PathLike,
    model: str | None = None,
    adapter: str | os.PathLike | None = None,
    predictions: str | os.PathLike | None = None,
    decoding: Decoding | str = "beam",
    decodings: str | Sequence[str | Decoding] | Mapping[str, Decoding] = (),
    metrics: Sequence[str] | None = None,
    clip_model: str | None = None,
    prompt: str | None = None,
    batch_size: int = 8,
    image_root: str | None = None,
    dtype: str = "float32",
    progress: bool | None = None,
    **metric_options: Any,
) -> dict[str, Any]:
    """Caption (or read) captions for every record of ``data``, score them, write ``out/eval.json``."""
    from captune.evaluate.decodings import decoding_table, parse_decodings
    from captune.generate import caption_to_files, decoding_preset, items_from_input

    out = Path(out)
    items = _items_with_references(data, image_root, items_from_input)
    decoding = decoding_preset(decoding) if isinstance(decoding, str) else decoding
    extra = parse_decodings(decodings) if decodings else {}
    preds_path = out / PREDICTIONS_FILE
    if predictions is not None:
        if model or adapter or extra:
            raise CaptuneError(
                "--predictions evaluates captions already written: leave out --model, --adapter "
                "and --decodings"
            )
        _copy_predictions(predictions, items, preds_path)
        run = {"prompt": None, "captioned": 0, "skipped": len(items)}
    else:
        _check_reusable(preds_path, decoding, adapter)
        outs = {PRIMARY: preds_path} | {n: out / "decodings" / f"{n}.jsonl" for n in extra}
        run = caption_to_files(
            items, outs, {PRIMARY: decoding} | extra, model, adapter, prompt, batch_size, dtype, progress
        )
    captions = _read_captions(preds_path, items)
    refs, images = [it.meta["_references"] for it in items], [it.image for it in items]
    metrics = list(metrics) if metrics else default_metrics(clip_model)
    result = _score(captions, refs, images, metrics, clip_model, metric_options)
    errors = analyze_errors(captions, refs, images, clip_model, **_clip_options(metric_options))
    report = _report(items, captions, result, errors, data, preds_path)
    report["model"] = _model_fingerprint(model, adapter, run.get("prompt"), predictions)
    report["predictions"] |= {"captioned": run["captioned"], "reused": run["skipped"]}
    report["config"] = {
        "decoding": None if predictions else decoding.model_dump(),
        "decoding_label": None if predictions else decoding.label(),
        "metrics": metrics,
        "clip_model": clip_model,
        "options": {k: str(v) for k, v in metric_options.items()},
        "predictions": str(predictions) if predictions else None,
    }
    if extra:
        extra_caps = {n: _read_captions(out / "decodings" / f"{n}.jsonl", items) for n in extra}
        report["decodings"] = decoding_table(extra_caps, extra, refs, images, clip_model, **metric_options)
    from captune.io import write_json

    write_json(out / EVAL_FILE, report)
    return report


def _items_with_references(data, image_root, items_from_input) -> list[CaptionItem]:
    from captune.data.records import read_records

    records = read_records(data)
    if not records:
        raise DataError(f"{data}: no records to evaluate")
    bare = [r.image_id for r in records if not r.captions]
    if bare:
        raise DataError(
            f"{data}: {len(bare)} records have no reference captions (e.g. {bare[0]!r}); "
            "evaluation needs references (to caption new images use `captune caption`)"
        )
    items = items_from_input(data, image_root)
    by_id = {r.image_id: r for r in records}
    for it in items:
        it.image = os.path.abspath(it.image)
        it.meta = dict(it.meta) | {"_references": list(by_id[it.image_id].captions)}
    return items


def _check_reusable(path: Path, decoding: Decoding, adapter) -> None:
    """Refuse to resume a predictions file written by another model or decoding."""
    from captune.io import iter_jsonl

    if not path.exists():
        return
    for line, row in iter_jsonl(path, skip_partial_last=True):
        same_adapter = (row.get("adapter") is None) == (adapter is None) and (
            adapter is None or Path(row["adapter"]).resolve() == Path(adapter).resolve()
        )
        if row.get("decoding") != decoding.model_dump() or not same_adapter:
            raise CaptuneError(
                f"{path}: line {line} was written with adapter {row.get('adapter')} and decoding "
                f"{row.get('decoding')}; choose another --out or delete the file to start over"
            )
        return


def _copy_predictions(source, items: Sequence[CaptionItem], dest: Path) -> None:
    from captune.io import iter_jsonl, write_jsonl

    rows: dict[str, dict] = {}
    for line, row in iter_jsonl(source):
        if not isinstance(row.get("image_id"), str) or not isinstance(row.get("caption"), str):
            raise DataError(f'{source}: line {line}: expected {{"image_id": ..., "caption": ...}}')
        rows[row["image_id"]] = row
    missing = [it.image_id for it in items if it.image_id not in rows]
    if missing:
        raise DataError(f"{source}: no caption for {len(missing)} of {len(items)} images: {_some(missing)}")
    if Path(source).resolve() != dest.resolve():
        write_jsonl(dest, (rows[it.image_id] for it in items))


def _read_captions(path: Path, items: Sequence[CaptionItem]) -> list[str]:
    from captune.io import iter_jsonl

    found = {row["image_id"]: row.get("caption") or "" for _, row in iter_jsonl(path, skip_partial_last=True)}
    missing = [it.image_id for it in items if it.image_id not in found]
    if missing:
        raise DataError(f"{path}: no caption for {len(missing)} images: {_some(missing)}")
    return [found[it.image_id] for it in items]


def _some(ids: Sequence[str], k: int = 10) -> str:
    shown = ", ".join(repr(i) for i in ids[:k])
    return shown + (f" and {len(ids) - k} more" if len(ids) > k else "")


def _clip_options(options: dict[str, Any]) -> dict[str, Any]:
    return {k: options[k] for k in ("device", "batch_size") if k in options}


def _score(captions, refs, images, metrics, clip_model, options):
    from captune.metrics import score

    return score(captions, refs, images=images, metrics=metrics, clip_model=clip_model, **options)


def _report(items, captions, result, errors, data, preds_path: Path) -> dict[str, Any]:
    per_image = []
    for i, (it, caption) in enumerate(zip(items, captions)):
        scores = result.per_item[i] if i < len(result.per_item) else {}
        per_image.append(
            {
                "image_id": it.image_id,
                "image": it.image,
                "caption": caption,
                "references": it.meta["_references"],
                "scores": scores,
                "flags": errors.per_image[i],
            }
        )
    return {
        "captune_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "metrics": {m: result.corpus.get(m) for m in _names(result)},
        "unavailable": dict(result.unavailable),
        "info": dict(result.info),
        "errors": errors.to_json(),
        "data": {
            "path": str(Path(data).resolve()),
            "sha256": file_sha256(data),
            "images": len(items),
            "references": sum(len(it.meta["_references"]) for it in items),
        },
        "predictions": {"path": str(preds_path), "sha256": file_sha256(preds_path)},
        "per_image": per_image,
    }


def _names(result) -> list[str]:
    return list(result.corpus) + [m for m in result.unavailable if m not in result.corpus]


def _model_fingerprint(model, adapter, prompt, predictions) -> dict[str, Any]:
    if predictions is not None:
        return {
            "base_model": None,
            "adapter": None,
            "adapter_sha256": None,
            "prompt": None,
            "source": "predictions file",
        }
    meta: dict[str, Any] = {}
    if adapter:
        from captune.models.loading import read_checkpoint_meta

        meta = read_checkpoint_meta(adapter)
    return {
        "base_model": model or meta.get("base_model"),
        "adapter": str(Path(adapter).resolve()) if adapter else None,
        "adapter_sha256": weights_sha256(adapter) if adapter else None,
        "adapter_step": meta.get("step"),
        "prompt": prompt,
        "source": "fine-tuned checkpoint" if adapter else "base model",
    }


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def weights_sha256(folder: str | os.PathLike) -> str:
    """One sha256 over the folder's weight files (``*.safetensors``, ``*.bin``) in name order."""
    h = hashlib.sha256()
    files = sorted(p for p in Path(folder).iterdir() if p.suffix in (".safetensors", ".bin") and p.is_file())
    if not files:
        raise CaptuneError(f"{folder}: no weight files (*.safetensors, *.bin) to fingerprint")
    for p in files:
        h.update(p.name.encode() + b"\0" + file_sha256(p).encode())
    return h.hexdigest()
