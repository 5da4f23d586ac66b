"""Checkpoints: ``checkpoints/{best,last}/`` with the adapter (and ``full_parts.safetensors`` for
a part trained in full next to LoRA) or the full weights, the processor, the resolved config and
``captune.json``; ``last/`` also holds the training state for ``--resume``.

A checkpoint is written to a temporary folder and renamed into place, so a kill during a save
leaves the previous checkpoint intact. An adapter loads with plain
``PeftModel.from_pretrained(Blip2ForConditionalGeneration.from_pretrained(base), path)``, after
``base.load_state_dict(load_file(path / "full_parts.safetensors"), strict=False)`` when that file is there.
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
from captune.models.peft import full_part_weights, load_full_parts, save_full_parts

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
    processes: int = 1
    """Processes that trained: each saved its own random state, and resuming needs as many."""
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
    rng_states: list[dict[str, Any]] | None = None,
) -> Path:
    """Write a complete checkpoint folder atomically (replacing any previous one).

    With ``state``, also the optimizer, scheduler and ``rng_states`` (one per process, in rank
    order; default: this process's) for ``--resume``."""
    directory = Path(directory)
    tmp = directory.with_name(f".{directory.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.mkdir(parents=True)
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        if is_peft(model):
            save_full_parts(model, tmp)
        processor.save_pretrained(tmp)
        dump_config(config, tmp / "config.yaml")
        write_json(tmp / CHECKPOINT_META, meta | {"kind": "peft" if is_peft(model) else "full"})
        if state is not None:
            _save_state(tmp / STATE_DIR, state, optimizer, scheduler, rng_states or [rng_state()])
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


def _save_state(path: Path, state: TrainerState, optimizer, scheduler, rng_states: list[dict[str, Any]]) -> None:
    path.mkdir()
    torch.save(optimizer.state_dict(), path / "optimizer.pt")
    torch.save(scheduler.state_dict(), path / "scheduler.pt")
    for rank, rng in enumerate(rng_states):
        torch.save(rng, path / f"rng_rank{rank}.pt")
    write_json(path / "state.json", asdict(state))


def rng_state() -> dict[str, Any]:
    """This process's random state (Python, NumPy, torch CPU and CUDA): dropout masks come from it."""
    rng = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    return rng


def load_training_state(directory: Path, model, optimizer, scheduler, rank: int = 0,
                        processes: int = 1) -> TrainerState:
    """Restore trained weights, optimizer, scheduler and process ``rank``'s random state from
    ``directory`` (a ``last/``), written by the same number of ``processes``."""
    directory = Path(directory)
    path = directory / STATE_DIR
    if not (path / "state.json").exists():
        raise CaptuneError(f"{directory}: no training state to resume from (expected {path}/state.json)")
    state = TrainerState(**json.loads((path / "state.json").read_text()))
    if state.processes != processes:
        raise CaptuneError(
            f"{directory} was trained by {state.processes} process(es), this run has {processes}: each process "
            f"continues its own data shard and random state, so resume with `--num_processes {state.processes}`")
    if not (path / f"rng_rank{rank}.pt").exists():
        raise CaptuneError(f"{path}: no random state for process {rank} (rng_rank{rank}.pt); the checkpoint is "
                           "incomplete or from an older captune: start a new run")
    _load_weights(directory, model)
    optimizer.load_state_dict(torch.load(path / "optimizer.pt", weights_only=False))
    scheduler.load_state_dict(torch.load(path / "scheduler.pt", weights_only=False))
    rng = torch.load(path / f"rng_rank{rank}.pt", weights_only=False)
    random.setstate(rng["python"])
    np.random.set_state(rng["numpy"])
    torch.set_rng_state(rng["torch"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    return state


def _load_weights(directory: Path, model) -> None:
    """Load the saved trained weights into ``model``, every key accounted for (or refuse)."""
    if is_peft(model):
        from peft import get_peft_model_state_dict, set_peft_model_state_dict

        adapter = load_file(directory / "adapter_model.safetensors")
        _check_keys(directory / "adapter_model.safetensors", set(adapter), set(get_peft_model_state_dict(model)))
        set_peft_model_state_dict(model, adapter)
        load_full_parts(model, directory, expected=set(full_part_weights(model)))
        return
    load_strict(model, _read_full_weights(directory), directory)


def _read_full_weights(directory: Path) -> dict[str, torch.Tensor]:
    index = directory / "model.safetensors.index.json"
    files = sorted(set(json.loads(index.read_text())["weight_map"].values())) if index.exists() else [
        "model.safetensors"]
    state: dict[str, torch.Tensor] = {}
    for name in files:
        state |= load_file(directory / name)
    return state


def load_strict(module: torch.nn.Module, state: dict[str, torch.Tensor], source: Path) -> None:
    """``module.load_state_dict`` with every key present, where a tied weight (OPT's ``lm_head``
    and ``embed_tokens``, which ``save_pretrained`` writes once) counts as present when the tensor
    it shares is saved."""
    expected = module.state_dict(keep_vars=True)
    aliases = _aliases(expected)
    tied = {k: next(a for a in aliases[k] if a in state) for k in expected
            if k not in state and any(a in state for a in aliases[k])}
    _check_keys(source, set(state), set(expected) - set(tied))
    try:
        module.load_state_dict(state | {k: state[a] for k, a in tied.items()}, strict=True)
    except RuntimeError as e:
        raise CaptuneError(f"{source}: the saved weights do not fit this model ({e}); "
                           "resume with the model and finetune settings the checkpoint was trained with") from None


def _aliases(state: dict[str, torch.Tensor]) -> dict[str, list[str]]:
    """For each key, the other keys naming the same tensor (tied weights)."""
    by_tensor: dict[int, list[str]] = {}
    for k, v in state.items():
        by_tensor.setdefault(id(v), []).append(k)
    return {k: [a for a in by_tensor[id(v)] if a != k] for k, v in state.items()}


def _check_keys(source: Path, saved: set[str], expected: set[str]) -> None:
    missing, unexpected = sorted(expected - saved), sorted(saved - expected)
    if not missing and not unexpected:
        return
    parts = [f"{what} keys ({len(keys)}): {', '.join(keys[:5])}{' ...' if len(keys) > 5 else ''}"
             for what, keys in (("missing", missing), ("unexpected", unexpected)) if keys]
    raise CaptuneError(
        f"{source}: the saved weights do not match the model being trained; {'; '.join(parts)}. The checkpoint "
        "is damaged or was written for another model or finetune setting: resume with the run's own config, "
        "or start a new run in another output_dir")
