"""COCO captions JSON (``images`` + ``annotations``) and Karpathy split files (``dataset_coco.json``).

COCO: the record id is the COCO image id as a string, the image is ``file_name`` under the image
root, each annotation is one row (``meta.source.items`` names ``annotations[i]``). Images with no
annotations at all (e.g. ``image_info_test2014.json``) become records without captions. An image
id listed again with another file is rejected (``conflicting_image``); the first listing stands.

Karpathy: the image is ``filepath/filename``, the id the ``cocoid`` when there is one and the
file name otherwise, each ``sentences[].raw`` is one row and ``meta.split`` is the ``split``
field, with ``restval`` counted as ``train`` unless ``restval_as`` says otherwise.
"""

from __future__ import annotations

import json
import os
import posixpath
from collections.abc import Iterator
from typing import Any

from captune.data.readers.base import ReaderOptions, Reject, Row, as_captions, image_ref, locator
from captune.data.text import open_text, undecodable
from captune.errors import DataError


def load_json_document(path: str | os.PathLike) -> Any:
    with open_text(path) as f:
        text = f.read()
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: line {e.lineno}, column {e.colno}: not valid JSON ({e.msg})") from None


def is_karpathy(doc: Any) -> bool:
    images = doc.get("images") if isinstance(doc, dict) else None
    return isinstance(images, list) and any(isinstance(im, dict) and "sentences" in im for im in images[:50])


def is_coco(doc: Any) -> bool:
    return isinstance(doc, dict) and isinstance(doc.get("images"), list) and not is_karpathy(doc)


def read_coco_rows(path: str | os.PathLike, root: str, opts: ReaderOptions) -> Iterator[Row | Reject]:
    source = str(path)
    doc = load_json_document(path)
    if not is_coco(doc):
        raise DataError(f"{path}: not a COCO captions file (expected an object with 'images' and 'annotations')")
    images: dict[Any, tuple[str, str, str]] = {}
    for i, im in enumerate(doc["images"]):
        got = _coco_image(im, f"images[{i}]", root, source)
        if isinstance(got, Reject):
            yield got
        elif im["id"] not in images:
            images[im["id"]] = got
        elif images[im["id"]][1] != got[1]:
            _, first_file, first_item = images[im["id"]]
            detail = f"images[{i}]: image id {im['id']!r} already names {first_file} ({first_item})"
            yield Reject(source, None, "conflicting_image", detail, got[1])
    referenced = set()
    for j, ann in enumerate(doc.get("annotations") or []):
        if isinstance(ann, dict) and isinstance(ann.get("image_id"), (int, str)) and ann["image_id"] in images:
            referenced.add(ann["image_id"])
        yield _coco_annotation(ann, f"annotations[{j}]", images, source)
    for coco_id, (image_id, resolved, item) in images.items():
        if coco_id not in referenced:
            yield Row(image_id, resolved, [], {"source": locator(source, None, item)}, source, None, item)


def _coco_image(im: Any, item: str, root: str, source: str) -> tuple[str, str, str] | Reject:
    if not isinstance(im, dict) or not isinstance(im.get("id"), (int, str)) or not isinstance(im.get("file_name"), str):
        return Reject(source, None, "missing_field", f"{item}: an image needs 'id' and 'file_name'")
    if undecodable(im["file_name"]):
        return Reject(source, None, "undecodable_bytes", f"{item}: file_name is not valid UTF-8")
    _, resolved = image_ref(im["file_name"], root)
    return str(im["id"]), resolved, item


def _coco_annotation(ann: Any, item: str, images: dict, source: str) -> Row | Reject:
    if not isinstance(ann, dict) or not isinstance(ann.get("image_id"), (int, str)):
        return Reject(source, None, "missing_field", f"{item}: an annotation needs 'image_id' and 'caption'")
    if ann["image_id"] not in images:
        return Reject(source, None, "unknown_image_id", f"{item}: image id {ann['image_id']!r} is not in 'images'")
    image_id, resolved, _ = images[ann["image_id"]]
    captions = as_captions(ann.get("caption"))
    if captions is None or not captions:
        reason = "missing_caption" if captions == [] or ann.get("caption") is None else "malformed_row"
        return Reject(source, None, reason, f"{item}: no usable 'caption'", resolved)
    if any(undecodable(c) for c in captions):
        return Reject(source, None, "undecodable_bytes", f"{item}: caption is not valid UTF-8", resolved)
    return Row(image_id, resolved, captions, {"source": locator(source, None, item)}, source, None, item)


def read_karpathy_rows(path: str | os.PathLike, root: str, opts: ReaderOptions) -> Iterator[Row | Reject]:
    source = str(path)
    doc = load_json_document(path)
    if not is_karpathy(doc):
        raise DataError(f"{path}: not a Karpathy split file (expected 'images' with 'sentences')")
    for i, im in enumerate(doc["images"]):
        yield from _karpathy_image(im, f"images[{i}]", root, source, opts)


def _karpathy_image(im: Any, item: str, root: str, source: str, opts: ReaderOptions) -> Iterator[Row | Reject]:
    if not isinstance(im, dict) or not isinstance(im.get("filename"), str):
        yield Reject(source, None, "missing_field", f"{item}: an image needs 'filename'")
        return
    split = im.get("split")
    split = opts.restval_as if split == "restval" else split
    if opts.split is not None and split != opts.split:
        return
    image_id, resolved = image_ref(posixpath.join(im.get("filepath") or "", im["filename"]), root)
    if im.get("cocoid") is not None:
        image_id = str(im["cocoid"])
    meta = {"split": split} if split else {}
    sentences = im.get("sentences") or []
    for k, sent in enumerate(sentences):
        where = f"{item}.sentences[{k}]"
        raw = sent.get("raw") if isinstance(sent, dict) else sent
        captions = as_captions(raw)
        if not captions:
            yield Reject(source, None, "missing_caption", f"{where}: no usable 'raw' caption", resolved)
        elif undecodable(captions[0]):
            yield Reject(source, None, "undecodable_bytes", f"{where}: caption is not valid UTF-8", resolved)
        else:
            yield Row(image_id, resolved, captions, {**meta, "source": locator(source, None, where)}, source, None, where)
    if not sentences:
        yield Row(image_id, resolved, [], {**meta, "source": locator(source, None, item)}, source, None, item)
