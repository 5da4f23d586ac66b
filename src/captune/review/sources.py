"""Read the captions a study compares: one ``NAME=PATH`` per system.

``PATH`` is one of

- an evaluation folder (``eval.json`` from ``captune evaluate``): its ``per_image`` captions and
  image paths;
- a predictions JSONL (``{"image_id", "caption"}`` per line, ``"image"`` optional): an image
  without a path takes the one another system gives for the same id;
- an agent run's ``posts.jsonl`` (``{"post_id", "caption", "files": {"montage": ...}}`` per
  line): the item is the post and its picture the montage (else the cover), relative to the
  file's folder.

An item is an image (or post) that every system captioned.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from captune.errors import CaptuneError, DataError


@dataclass
class Item:
    """One image or post with each system's caption."""

    item_id: str
    image: str | None
    kind: str
    captions: dict[str, str] = field(default_factory=dict)


def parse_system(spec: str) -> tuple[str, Path]:
    """``"base=runs/x/eval/base"`` -> ``("base", Path(...))``."""
    name, sep, path = spec.partition("=")
    if not sep or not name.strip() or not path.strip():
        raise CaptuneError(f"--system {spec!r}: write NAME=PATH (an evaluation folder, predictions or posts JSONL)")
    return name.strip(), Path(path.strip())


def read_system(path: Path) -> tuple[str, dict[str, tuple[str | None, str]]]:
    """The kind (``image`` or ``post``) and ``{item_id: (image path or None, caption)}`` of one system."""
    if path.is_dir():
        if not (path / "eval.json").exists():
            raise CaptuneError(f"{path}: a folder must be an evaluation (eval.json from `captune evaluate`)")
        return "image", _from_eval(path / "eval.json")
    if not path.exists():
        raise CaptuneError(f"{path}: no such file or folder")
    from captune.io import iter_jsonl

    rows = list(iter_jsonl(path))
    if rows and "post_id" in rows[0][1]:
        return "post", _from_posts(path, rows)
    return "image", _from_predictions(path, rows)


def _from_eval(path: Path) -> dict[str, tuple[str | None, str]]:
    from captune.io import read_json

    per_image = read_json(path).get("per_image") or []
    return {str(r["image_id"]): (r.get("image"), r.get("caption") or "") for r in per_image}


def _from_predictions(path: Path, rows) -> dict[str, tuple[str | None, str]]:
    out = {}
    for line, row in rows:
        if "image_id" not in row or "caption" not in row:
            raise DataError(f'{path}: line {line}: a prediction is {{"image_id", "caption"}}')
        image = row.get("image")
        if image and not Path(image).is_absolute():
            image = str(path.parent / image)
        out[str(row["image_id"])] = (image, str(row["caption"]))
    return out


def _from_posts(path: Path, rows) -> dict[str, tuple[str | None, str]]:
    out = {}
    for line, row in rows:
        if "caption" not in row:
            raise DataError(f'{path}: line {line}: a post has no "caption"')
        files = row.get("files") or {}
        picture = files.get("montage") or row.get("cover")
        if not picture:
            raise DataError(f'{path}: line {line}: post {row["post_id"]} has neither files.montage nor cover')
        out[str(row["post_id"])] = (str(path.parent / picture), str(row["caption"]))
    return out


def shared_items(systems: dict[str, Path]) -> list[Item]:
    """The items every system captioned, in id order, each with an existing image file."""
    read = {name: read_system(path) for name, path in systems.items()}
    kinds = {kind for kind, _ in read.values()}
    if len(kinds) > 1:
        raise CaptuneError("the systems mix posts.jsonl with image captions; compare posts with posts")
    ids = set.intersection(*(set(rows) for _, rows in read.values()))
    if not ids:
        raise CaptuneError("no image or post was captioned by every system: " + ", ".join(systems))
    kind, items = kinds.pop(), []
    for item_id in sorted(ids):
        image = next((rows[item_id][0] for _, rows in read.values() if rows[item_id][0]), None)
        if image is None or not Path(image).is_file():
            raise CaptuneError(f"{item_id}: image {image or '(none given)'} not found; "
                               "give an evaluation folder or predictions with an \"image\" path")
        items.append(Item(item_id, str(Path(image).resolve()), kind,
                          {name: rows[item_id][1] for name, (_, rows) in read.items()}))
    return items
