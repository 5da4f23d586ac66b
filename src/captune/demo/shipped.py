"""The demo models that ship inside captune, checksummed.

``weights/captioner/`` is a BLIP-2-architecture captioner (ViT, Q-Former, OPT) pretrained on
plain shapes-world captions; ``weights/clip/`` is a tiny CLIP trained on shapes-world images
and captions (for CLIPScore and photo grouping). Both are ``save_pretrained`` folders, built by
``captune demo build-base``; ``weights/MANIFEST.json`` holds the sha256 of every file, the
training figures and the command that built them. Every load checks the files against it.

    model, processor = load_shipped("shapes-captioner")   # or: load_captioner("shapes-blip2-opt")
    clip = CLIPModel.from_pretrained(shipped_path("clip"))

``register_models`` (the ``captune.models`` entry point in pyproject.toml) names them
``shapes-blip2-opt`` and ``shapes-clip`` in ``captune.models.registry``.
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path

from captune.errors import CaptuneError
from captune.io import file_sha256

WEIGHTS_DIR = Path(__file__).parent / "weights"
MANIFEST = "MANIFEST.json"
# kind (as in ``builtin:<kind>`` and short) -> folder under weights/
KINDS = {"shapes-captioner": "captioner", "captioner": "captioner", "shapes-clip": "clip", "clip": "clip"}


def read_manifest(root: str | os.PathLike = WEIGHTS_DIR) -> dict:
    path = Path(root) / MANIFEST
    if not path.exists():
        raise CaptuneError(f"{path} is missing: the shipped demo models are incomplete; reinstall captune "
                           "or rebuild them with `captune demo build-base --out DIR`")
    return json.loads(path.read_text())


def verify(folder: str | os.PathLike, root: str | os.PathLike | None = None) -> Path:
    """Check every file of ``folder`` (a model folder under ``root``) against the manifest's sha256."""
    folder = Path(folder)
    root = Path(root) if root is not None else folder.parent
    files = read_manifest(root)["files"]
    prefix = folder.relative_to(root).as_posix() + "/"
    expected = {name: digest for name, digest in files.items() if name.startswith(prefix)}
    if not expected:
        raise CaptuneError(f"{root / MANIFEST} lists no files under {prefix}")
    for name, digest in sorted(expected.items()):
        path = root / name
        if not path.exists():
            raise CaptuneError(f"{path} is missing (listed in {root / MANIFEST}); reinstall captune")
        if file_sha256(path) != digest:
            raise CaptuneError(f"{path} does not match its checksum in {root / MANIFEST} (the file is corrupted "
                               "or was changed); reinstall captune or rebuild with `captune demo build-base`")
    return folder


def shipped_path(kind: str = "captioner", root: str | os.PathLike = WEIGHTS_DIR, check: bool = True) -> Path:
    """The folder of a shipped model (``captioner`` or ``clip``), checked against the manifest."""
    if kind not in KINDS:
        raise CaptuneError(f"unknown shipped model {kind!r}; choose from {', '.join(sorted(set(KINDS.values())))}")
    folder = Path(root) / KINDS[kind]
    return verify(folder, root) if check else folder


def load_shipped(kind: str, root: str | os.PathLike = WEIGHTS_DIR):
    """``(model, processor)`` of a shipped model, in float32, after the checksums are verified."""
    import torch
    from transformers import Blip2ForConditionalGeneration, Blip2Processor, CLIPModel, CLIPProcessor

    folder = shipped_path(kind, root)
    model_cls, processor_cls = ((CLIPModel, CLIPProcessor) if KINDS[kind] == "clip"
                                else (Blip2ForConditionalGeneration, Blip2Processor))
    with quiet_transformers():
        model = model_cls.from_pretrained(folder, dtype=torch.float32).eval()
        return model, processor_cls.from_pretrained(folder)


def weights_digest(kind: str, root: str | os.PathLike = WEIGHTS_DIR) -> str:
    """The ``weights_sha256`` of a shipped model, from the manifest's digests (no file is read)."""
    from captune.models.fingerprint import WEIGHT_SUFFIXES, combine

    prefix = KINDS[kind] + "/"
    files = {n.removeprefix(prefix): d for n, d in read_manifest(root)["files"].items() if n.startswith(prefix)}
    weights = {n: d for n, d in files.items() if "/" not in n and n.endswith(WEIGHT_SUFFIXES)}
    return combine(weights.items())


def register_models() -> None:
    """Name the shipped models in the model registry (called through the ``captune.models`` entry point)."""
    from captune.models.registry import CLIP, ModelEntry, register

    register(ModelEntry("shapes-blip2-opt", "builtin:shapes-captioner", "opt", "1.2M",
                        "BLIP-2 architecture pretrained on plain shapes-world captions; ships with captune",
                        loader=lambda: load_shipped("shapes-captioner"),
                        weights=lambda: weights_digest("shapes-captioner")))
    register(ModelEntry("shapes-clip", "builtin:shapes-clip", "clip", "953K",
                        "tiny CLIP trained on shapes-world images and captions (CLIPScore); ships with captune",
                        task=CLIP, loader=lambda: load_shipped("shapes-clip"),
                        weights=lambda: weights_digest("shapes-clip")))


@contextmanager
def quiet_transformers():
    """No "Loading weights" progress bars for models of a few MB, and no deprecation notice that
    peft triggers in transformers >= 5.24 (both restored afterwards)."""
    import warnings

    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
            yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()
