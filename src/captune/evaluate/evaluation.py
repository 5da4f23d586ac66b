"""Evaluate a captioner (or a file of captions) on a records file; write ``eval.json``.

    captune evaluate --adapter runs/x/checkpoints/best --data data/splits/test.jsonl --out runs/x/eval/tuned
    captune evaluate --model tiny-blip2-opt --data data/splits/test.jsonl --out runs/x/eval/base
    captune evaluate --predictions preds.jsonl --data data/splits/test.jsonl --out runs/x/eval/mine

Captions go to ``OUT/predictions.jsonl``; ``--decodings beam,top_k,top_p`` also writes
``OUT/decodings/NAME.jsonl`` and a decoding table. A rerun reuses the captions already there when
they were written with the same model weights, adapter weights, prompt, dtype, decoding and
clean-up, and refuses the folder otherwise (``captune.provenance``); when every caption is there
it loads no model. ``OUT/eval.json`` holds:

- ``metrics`` (corpus values of the metrics run; a requested one that cannot run here is ``null``),
  ``unavailable`` (metric -> why it cannot run here, including default metrics left out),
  ``info`` (metric settings, e.g. the CLIP model);
- ``per_image``: image id, image path, caption, references, per-image scores and error flags;
- ``errors``: counts per error flag (see ``captune.evaluate.error_analysis``);
- ``model`` and ``data`` fingerprints: base model, adapter folder and the sha256 of its weight
  files, prompt; sha256 of the records file, image and reference counts; sha256 of the captions;
- ``config``: decoding, metrics, options; ``decodings``: the decoding table when asked for.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from captune import __version__
from captune.errors import CaptuneError, DataError
from captune.evaluate.error_analysis import analyze_errors
from captune.io import file_sha256
from captune.models.fingerprint import weights_sha256

if TYPE_CHECKING:
    from captune.generate import CaptionItem, Decoding

CLIP_METRICS = ("clipscore", "refclipscore")
EVAL_FILE, PREDICTIONS_FILE = "eval.json", "predictions.jsonl"
PRIMARY = "_primary"  # the --decoding captions, written to predictions.jsonl


def default_metrics(clip_model: str | None) -> tuple[list[str], dict[str, str]]:
    """The COCO and diversity metrics that can run here (CLIPScore and RefCLIPScore with a CLIP
    model), and the ones left out with the reason."""
    from captune.metrics import default_metrics as runnable

    names, left_out = runnable()
    return names + (list(CLIP_METRICS) if clip_model else []), left_out


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
    dtype: str = "auto",
    progress: bool | None = None,
    **metric_options: Any,
) -> dict[str, Any] | None:
    """Caption (or read) captions for every record of ``data``, score them, write ``out/eval.json``.

    Under ``accelerate launch`` the processes share the captioning (``captune.shards``); the main
    process scores and returns the report, the others None.
    """
    from captune.evaluate.decodings import decoding_table, parse_decodings
    from captune.generate import decoding_preset, items_from_input
    from captune.shards import processes

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
        if not processes().main:
            return None
        _copy_predictions(predictions, items, preds_path)
        run = {"prompt": None, "captioned": 0, "skipped": len(items)}
    else:
        outs = {PRIMARY: preds_path} | {n: out / "decodings" / f"{n}.jsonl" for n in extra}
        run = _caption_every_image(data, items, outs, {PRIMARY: decoding} | extra, model, adapter, prompt,
                                   batch_size, dtype, progress)
        if not run["main_process"]:
            return None
    captions = _read_captions(preds_path, items)
    refs, images = [it.meta["_references"] for it in items], [it.image for it in items]
    metrics, left_out = (list(metrics), {}) if metrics else default_metrics(clip_model)
    with _metric_resources() as resources:  # the CLIP model and embeddings of scoring serve error analysis
        result = _score(captions, refs, images, metrics, clip_model, {**metric_options, "resources": resources})
        errors = analyze_errors(captions, refs, images, clip_model, resources=resources,
                                **_clip_options(metric_options))
    report = _report(items, captions, result, errors, data, preds_path)
    report["unavailable"] = left_out | report["unavailable"]
    report["model"] = _model_fingerprint(model, adapter, run.get("prompt"), predictions, run.get("source"))
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


def _caption_every_image(data, items, outs, decodings, *args) -> dict[str, Any]:
    """``caption_to_files`` for evaluation: an image that cannot be read stops it (scores over fewer
    images than the data would not be comparable), with a message that says what to do."""
    from captune.data.images import ImageError
    from captune.generate import caption_to_files

    try:
        return caption_to_files(items, outs, decodings, *args)
    except ImageError as e:
        raise CaptuneError(f"{e}; evaluate scores every image of {data}: replace this image or remove its "
                           "record") from None


def evaluation_summary(report: Mapping[str, Any], out: str | os.PathLike) -> dict[str, Any]:
    """The short form of an ``eval.json`` report that ``captune evaluate --json`` prints: the
    folder, image count, metrics, unavailable ones, error counts and, with several decodings,
    each decoding's metrics."""
    summary = {"out": str(out), "images": report["data"]["images"], "metrics": report["metrics"],
               "unavailable": report["unavailable"], "errors": report["errors"]["counts"]}
    if report.get("decodings"):
        summary["decodings"] = {row["name"]: row["metrics"] for row in report["decodings"]}
    return summary


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
    _refuse_repeated_ids(data, records)
    items = items_from_input(data, image_root)
    by_id = {r.image_id: r for r in records}
    for it in items:
        it.image = os.path.abspath(it.image)
        it.meta = dict(it.meta) | {"_references": list(by_id[it.image_id].captions)}
    return items


def _refuse_repeated_ids(data, records) -> None:
    """One record per image: captions and references are joined by image id, so a second record
    of an image would give both the last record's references and caption."""
    first: dict[str, int] = {}
    for k, r in enumerate(records):
        if r.image_id in first:
            from captune.data.text import iter_lines

            lines = [line for line, text in iter_lines(data) if text.strip()]  # record k is on lines[k]
            raise DataError(
                f"{data}: line {lines[k]}: image id {r.image_id!r} again (first on line "
                f"{lines[first[r.image_id]]}); put all of an image's reference captions in one record"
            )
        first[r.image_id] = k


def _copy_predictions(source, items: Sequence[CaptionItem], dest: Path) -> None:
    from captune.io import iter_jsonl, write_jsonl

    rows: dict[str, dict] = {}
    lines: dict[str, int] = {}
    for line, row in iter_jsonl(source):
        if not isinstance(row.get("image_id"), (str, int)) or not isinstance(row.get("caption"), str):
            raise DataError(f'{source}: line {line}: expected {{"image_id": ..., "caption": ...}}')
        image_id = row["image_id"] = str(row["image_id"])  # records read ids as text: 1 is "1"
        if image_id in rows:
            raise DataError(
                f"{source}: line {line}: a second caption for image {image_id!r} (line {lines[image_id]}); "
                "keep one caption per image"
            )
        rows[image_id], lines[image_id] = row, line
    missing = [it.image_id for it in items if it.image_id not in rows]
    if missing:
        raise DataError(f"{source}: no caption for {len(missing)} of {len(items)} images: {_some(missing)}")
    if Path(source).resolve() != dest.resolve():
        write_jsonl(dest, (rows[it.image_id] for it in items))


def _read_captions(path: Path, items: Sequence[CaptionItem]) -> list[str]:
    from captune.io import iter_jsonl

    rows = iter_jsonl(path, skip_partial_last=True)
    found = {str(row["image_id"]): row.get("caption") or "" for _, row in rows}
    missing = [it.image_id for it in items if it.image_id not in found]
    if missing:
        raise DataError(f"{path}: no caption for {len(missing)} images: {_some(missing)}")
    return [found[it.image_id] for it in items]


def _some(ids: Sequence[str], k: int = 10) -> str:
    shown = ", ".join(repr(i) for i in ids[:k])
    return shown + (f" and {len(ids) - k} more" if len(ids) > k else "")


def _clip_options(options: dict[str, Any]) -> dict[str, Any]:
    return {k: options[k] for k in ("device", "batch_size") if k in options}


def _metric_resources():
    from captune.metrics import MetricResources

    return MetricResources()


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


def _model_fingerprint(model, adapter, prompt, predictions, source) -> dict[str, Any]:
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
        "model_weights": source["model_weights"],
        "dtype": source["dtype"],
        "prompt": prompt,
        "source": "fine-tuned checkpoint" if adapter else "base model",
    }
