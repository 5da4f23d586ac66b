"""Several training runs in one process group, for test_two_processes.py.

    accelerate launch --multi_gpu --num_processes 2 tests/integration/train_worker.py SPEC.json
    python tests/integration/train_worker.py SPEC.json          # the one-process reference

SPEC.json: ``{"runs": [{"config": PATH, "overrides": [...], "resume": bool}, ...]}``. Starting the
processes costs more than the tiny trainings, so one launch runs them all. Each run writes
``batches_rank{N}.json`` to its output_dir: ``batches``, the ``image_id|caption`` of every
training example, one list per batch, in the order this process trained on them, and
``torch_seed``, the seed of this process's torch random stream (dropout).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from captune.config import load_config
from captune.train.config import TrainConfig
from captune.train.data import Collate
from captune.train.loop import finetune


def run_all(spec_path: str) -> None:
    from accelerate import PartialState

    seen: list[list[str]] = []
    collate = Collate.__call__

    def recording(self, items):
        seen.append([f"{it['image_id']}|{it['caption']}" for it in items])
        return collate(self, items)

    Collate.__call__ = recording
    try:
        for run in json.loads(Path(spec_path).read_text())["runs"]:
            seen.clear()
            cfg = load_config(TrainConfig, run["config"], run["overrides"])
            finetune(cfg, resume=run.get("resume", False), progress=False)
            rank = PartialState().process_index
            record = {"batches": seen, "torch_seed": torch.initial_seed()}
            (Path(cfg.output_dir) / f"batches_rank{rank}.json").write_text(json.dumps(record))
    finally:
        Collate.__call__ = collate


if __name__ == "__main__":
    run_all(sys.argv[1])
