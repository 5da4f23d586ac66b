"""Captioning on several processes: each captions its share of the images, the main process
writes the one output.

    accelerate launch --multi_gpu --num_processes 8 -m captune caption --model blip2-opt-2.7b \\
        --input photos/ --out captions.jsonl

Every process reads what is already done (OUT and the part files under ``OUT.parts/``); process
``r`` of ``n`` then captions the images still to do at positions ``r, r + n, r + 2n, ...`` and
appends each caption as a whole, flushed line to ``OUT.parts/rank{r}.jsonl``. When every process
has finished, the main process rewrites OUT atomically: its lines as they were, then the parts'
lines in the input's order, each image once, and removes ``OUT.parts/``. A killed run leaves its
parts; a rerun, with any number of processes, captions only the images found in neither OUT nor
a part. One process with no parts left behind appends to OUT directly.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

BARRIER_TIMEOUT = timedelta(hours=24)
"""How long a process waits for the others at a barrier. The first process to finish waits at
the last barrier for the slowest one; NCCL's default of 10 minutes would end a run of hours for
a gap that small."""


@dataclass(frozen=True)
class Processes:
    """This process's place among those ``accelerate launch`` started (alone: rank 0 of 1)."""

    rank: int
    count: int
    local_rank: int
    """The rank on this machine: the GPU this process uses."""

    @property
    def main(self) -> bool:
        return self.rank == 0

    def wait(self) -> None:
        """Return when every process has called ``wait`` (at once when alone)."""
        if self.count > 1:
            from accelerate import PartialState

            PartialState().wait_for_everyone()

    def gather(self, rows: list) -> list:
        """Every process's ``rows`` joined in rank order, on every process (alone: ``rows``)."""
        if self.count == 1:
            return rows
        from accelerate.utils import gather_object

        return gather_object(rows)


def processes() -> Processes:
    """The processes of this run, as accelerate's ``PartialState`` knows them."""
    import torch
    from accelerate import PartialState

    from captune.errors import CaptuneError

    # Without a GPU, processes started by `accelerate launch` join one gloo group only with cpu=True
    # (accelerate would otherwise run them as independent copies). The timeout counts only where
    # this call creates the group.
    state = PartialState(cpu=not (torch.cuda.is_available() or torch.backends.mps.is_available()),
                         timeout=BARRIER_TIMEOUT)
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if launched != state.num_processes:
        raise CaptuneError(f"launched as {launched} processes but accelerate joined {state.num_processes}; "
                           "check the accelerate config (`accelerate env`)")
    return Processes(state.process_index, state.num_processes, state.local_process_index)


def parts_dir(out: str | os.PathLike) -> Path:
    """The folder of the part files of a run into ``out``: ``OUT.parts/``."""
    out = Path(out)
    return out.with_name(out.name + ".parts")


def part_path(out: str | os.PathLike, rank: int) -> Path:
    """The part file process ``rank`` appends to."""
    return parts_dir(out) / f"rank{rank}.jsonl"


def part_files(out: str | os.PathLike) -> list[Path]:
    """The part files runs into ``out`` left behind, whatever their number of processes."""
    folder = parts_dir(out)
    return sorted(folder.glob("rank*.jsonl")) if folder.is_dir() else []


def merge_parts(out: str | os.PathLike, order: Sequence[str]) -> int:
    """Rewrite ``out`` atomically with its own lines, then the parts' images it lacks, each once, in
    ``order`` (images not in ``order`` last, as found); remove the parts. Returns the lines added.

    A cut-off last line of a part (a killed process) is left out. Killed during the merge, ``out``
    is the old file or the new one and the parts are still there: merging again adds nothing twice.
    """
    from captune.io import atomic_write, iter_jsonl

    out = Path(out)
    found: dict[str, str] = {}
    for part in part_files(out):
        for _, row in iter_jsonl(part, skip_partial_last=True):
            found.setdefault(row["image_id"], _line(row))
    position = {image_id: i for i, image_id in enumerate(order)}
    new = sorted(found, key=lambda image_id: position.get(image_id, len(position)))  # stable: the rest as found
    if found:
        with atomic_write(out) as f:
            kept = set()
            if out.exists():
                for _, row in iter_jsonl(out, skip_partial_last=True):
                    kept.add(row.get("image_id"))
                    f.write(_line(row))
            new = [image_id for image_id in new if image_id not in kept]
            f.writelines(found[image_id] for image_id in new)
    if parts_dir(out).is_dir():
        shutil.rmtree(parts_dir(out))
    return len(new)


def _line(row: dict) -> str:
    """A row as ``JsonlAppender`` writes it."""
    return json.dumps(row, ensure_ascii=False) + "\n"
