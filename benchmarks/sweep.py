"""Wall time of a grid search of tiny runs: one after another, and as parallel processes.

    python benchmarks/sweep.py [--steps 20] [--images 200] [--parallel 1 2] [--out runs/bench-sweep]

Writes a shapes-world dataset (``--images``, 70/30 train/validation), then runs
``captune sweep train configs/finetune/tiny-lora.yaml`` over train.lr x finetune.method x
finetune.targets (8 runs of ``--steps`` steps, validation loss every 10 steps) once per
``--parallel`` value, each in a fresh folder, and prints the wall time of each sweep, the sum of
its runs' training seconds and the best run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GRID = ["--grid", "train.lr=1e-3,3e-3", "--grid", "finetune.method=lora,rslora",
        "--grid", "finetune.targets=query_value,all_linear"]


def dataset(out: Path, images: int) -> tuple[Path, Path]:
    from captune.data.records import write_records
    from captune.demo.world import generate

    records = generate(out / "world", n_images=images, seed=0, style="plain").plain
    cut = int(0.7 * len(records))
    write_records(out / "world" / "train.jsonl", records[:cut])
    write_records(out / "world" / "val.jsonl", records[cut:])
    return out / "world" / "train.jsonl", out / "world" / "val.jsonl"


def sweep(out: Path, train: Path, val: Path, steps: int, parallel: int) -> dict:
    cmd = [sys.executable, "-m", "captune", "sweep", "train", str(ROOT / "configs/finetune/tiny-lora.yaml"), *GRID,
           "--out", str(out), "--parallel", str(parallel), f"data.train={train}", f"data.val={val}",
           f"train.max_steps={steps}", "eval.every_steps=10", "eval.metrics=[]", "--json"]
    t0 = time.perf_counter()
    summary = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
    return {"parallel": parallel, "wall_s": round(time.perf_counter() - t0, 1),
            "training_s": round(sum(r["seconds"] or 0 for r in summary["runs"]), 1),
            "best": summary["best"], "best_val_loss": summary["runs"][0]["score"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--parallel", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--out", type=Path, default=Path("runs/bench-sweep"))
    args = parser.parse_args()
    train, val = dataset(args.out, args.images)
    for n in args.parallel:
        print(json.dumps(sweep(args.out / f"parallel-{n}", train, val, args.steps, n)))


if __name__ == "__main__":
    main()
