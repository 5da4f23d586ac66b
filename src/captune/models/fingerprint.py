"""What identifies a model's weights, found without loading the model.

    model_weights("blip2-opt-2.7b")    # 'sha256:…' of the weight files in the Hugging Face cache
    model_weights("runs/merged")       # 'sha256:…' of the folder's weight files
    model_weights("tiny-blip2-opt")    # 'builtin:tiny-opt' (built from a fixed seed)

A captions file is reused only by a run whose model has the same identity, so the identity must
change whenever the weights do, and must be cheap. ``weights_sha256`` is one sha256 over a
folder's weight files (``*.safetensors``, else ``*.bin``, as ``from_pretrained`` picks them), each
file entering as its name and its own sha256. In the Hugging Face cache a weight file is a link to
``blobs/<sha256 of the content>``, so there the blob's name is taken instead of reading gigabytes;
a registered model may name its own digest (the shipped demo's come from its checksummed manifest).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable
from pathlib import Path

from captune.errors import CaptuneError
from captune.hub import cached_snapshot
from captune.io import file_sha256

WEIGHT_SUFFIXES = (".safetensors", ".bin")
_SHA256 = re.compile(r"[0-9a-f]{64}")


def combine(digests: Iterable[tuple[str, str]]) -> str:
    """One sha256 over ``(file name, sha256)`` pairs, in name order."""
    h = hashlib.sha256()
    for name, digest in sorted(digests):
        h.update(name.encode() + b"\0" + digest.encode())
    return h.hexdigest()


def weight_files(folder: str | os.PathLike) -> list[Path]:
    """The weight files ``from_pretrained`` reads: the ``*.safetensors`` files, else the ``*.bin`` ones."""
    files = [p for p in Path(folder).iterdir() if p.suffix in WEIGHT_SUFFIXES and p.is_file()]
    safetensors = [p for p in files if p.suffix == ".safetensors"]
    return safetensors or files


def weights_sha256(folder: str | os.PathLike) -> str:
    """One sha256 over the folder's weight files (a cache blob's name stands for its content's)."""
    files = weight_files(folder)
    if not files:
        raise CaptuneError(f"{folder}: no weight files (*.safetensors, *.bin) to fingerprint")
    return combine((p.name, _content_sha256(p)) for p in files)


def _content_sha256(path: Path) -> str:
    target = path.resolve()
    if path.is_symlink() and target.parent.name == "blobs" and _SHA256.fullmatch(target.name):
        return target.name
    return file_sha256(target)


def model_weights(name: str) -> str | None:
    """``'sha256:…'`` (or ``'builtin:…'``) for a model name, id or folder; None when it is not on this machine."""
    from captune.models.registry import lookup

    entry = lookup(name)
    if entry is not None and entry.weights is not None:
        return "sha256:" + entry.weights()
    source = entry.checkpoint if entry else name
    if source.startswith("builtin:"):
        return source
    folder = Path(source).expanduser()
    if not folder.is_dir():
        folder = cached_snapshot(source)
    return None if folder is None else "sha256:" + weights_sha256(folder)
