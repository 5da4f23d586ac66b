"""Checkpoints: ``checkpoints/{best,last}/`` with the adapter (or full weights), processor,
resolved config and ``captune.json``; ``last/`` also holds the training state for ``--resume``.

A checkpoint is written to a temporary folder and renamed into place, so a kill during a save
leaves the previous checkpoint intact. The adapter loads with plain
``PeftModel.from_pretrained(Blip2ForConditionalGeneration.from_pretrained(base), path)``.
"""

from __future__ import annotations

import json
import random
import shutil
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file

from captune.config import dump_config
from captune.errors import CaptuneError
from captune.io import write_json
from captune.models.loading import CHECKPOINT_META

STATE_DIR = "trainer_state"


@dataclass
class TrainerState:
    step: int = 0
    """Optimizer steps done."""
    epoch: int = 0
    batches_in_epoch: int = 0
    """Forward batches of ``epoch`` already consumed."""
    best_score: float | None = None
    best_step: int | None = None
    evals_without_improvement: int = 0
    stopped_early: bool = False
    history: list[dict[str, Any]] = field(default_factory=list)
    """One entry per evaluation: step, epoch and the evaluated values."""


def is_peft(model) -> bool:
    return hasattr(model, "peft_config")


def save_checkpoint(
    directory: Path,
    model,
    processor,
    config,
    meta: dict[str, Any],
    state: TrainerState | None = None,
    optimizer=None,
    scheduler=None,
) -> Path:
    """Write a complete checkpoint folder atomically (replacing any previous one)."""
    directory = Path(directory)
    tmp = directory.with_name(f".{directory.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.mkdir(parents=True)
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        processor.save_pretrained(tmp)
        dump_config(config, tmp / "config.yaml")
        write_json(tmp / CHECKPOINT_META, meta | {"kind": "peft" if is_peft(model) else "full"})
        if state is not None:
            _save_state(tmp / STATE_DIR, state, optimizer, scheduler)
        _swap_into_place(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory


def _swap_into_place(tmp: Path, directory: Path) -> None:
    old = directory.with_name(f".{directory.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if directory.exists():
        directory.rename(old)
    tmp.rename(directory)
    shutil.rmtree(old, ignore_errors=True)


def _save_state(path: Path, state: TrainerState, optimizer, scheduler) -> None:
    path.mkdir()
    torch.save(optimizer.state_dict(), path / "optimizer.pt")
    torch.save(scheduler.state_dict(), path / "scheduler.pt")
    rng = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    torch.save(rng, path / "rng.pt")
    write_json(path / "state.json", asdict(state))


def load_training_state(directory: Path, model, optimizer, scheduler) -> TrainerState:
    """Restore trained weights, optimizer, scheduler and RNG from ``directory`` (a ``last/``)."""
    directory = Path(directory)
    path = directory / STATE_DIR
    if not (path / "state.json").exists():
        raise CaptuneError(f"{directory}: no training state to resume from (expected {path}/state.json)")
    _load_weights(directory, model)
    optimizer.load_state_dict(torch.load(path / "optimizer.pt", weights_only=False))
    scheduler.load_state_dict(torch.load(path / "scheduler.pt", weights_only=False))
    rng = torch.load(path / "rng.pt", weights_only=False)
    random.setstate(rng["python"])
    np.random.set_state(rng["numpy"])
    torch.set_rng_state(rng["torch"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    return TrainerState(**json.loads((path / "state.json").read_text()))


def _load_weights(directory: Path, model) -> None:
    if is_peft(model):
        from peft import set_peft_model_state_dict

        set_peft_model_state_dict(model, load_file(directory / "adapter_model.safetensors"))
        return
    index = directory / "model.safetensors.index.json"
    files = sorted(set(json.loads(index.read_text())["weight_map"].values())) if index.exists() else [
        "model.safetensors"]
    for name in files:
        model.load_state_dict(load_file(directory / name), strict=False)
