"""Wall-clock time of the default demo (``captune demo``), step by step.

    python benchmarks/demo.py [--out /tmp/demo-bench]

Runs the demo exactly as the README's first command does (in this process), timing each
message-to-message step, and prints the total and the headline metrics.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="/tmp/captune-demo-bench")
    ap.add_argument("--steps", type=int, default=None, help="fine-tuning steps (default: the demo's)")
    ap.add_argument("--images", type=int, default=None, help="shapes-world images (default: the demo's)")
    args = ap.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    import torch

    from captune.demo.run import run_demo, summary_table

    marks: list[tuple[float, str]] = []

    def echo(msg: str) -> None:
        marks.append((time.time(), msg))
        print(f"[{time.time() - t0:6.1f} s] {msg}", flush=True)

    t0 = time.time()
    sizes = {k: v for k, v in (("steps", args.steps), ("n_images", args.images)) if v is not None}
    summary = run_demo(args.out, echo=echo, progress=False, **sizes)
    total = time.time() - t0
    steps = [(m, round(b[0] - a, 1)) for (a, m), b in zip(marks, marks[1:] + [(time.time(), "")])]
    print(summary_table(summary))
    print(json.dumps({
        "total_seconds": round(total, 1), "steps": steps,
        "machine": f"{os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), "
                   f"torch {torch.__version__}, {torch.get_num_threads()} threads, cuda={torch.cuda.is_available()}",
    }, indent=2))


if __name__ == "__main__":
    main()
