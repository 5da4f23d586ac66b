"""The agent's embedding stage and the whole agent demo, as a user runs them.

    python benchmarks/agent_embed.py [--images 120] [--threads 1] [--repeats 3]

1. Embedding throughput of the shipped tiny CLIP (``shapes-clip``) on the demo photo dump:
   photos per second through ``AgentClip.embed_photos`` (decode + preprocess + forward), with an
   empty cache and with a full one (the rerun case), model loading excluded and timed apart.
2. ``captune demo agent`` end to end in a fresh process (start-up, dump, every stage, report),
   template and hybrid captions; median of ``--repeats``.

Threads: ``--threads`` sets torch's and BLAS's pools (1 by default, so that two such processes do
not oversubscribe a 2-core machine).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=120)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    import torch

    torch.set_num_threads(args.threads)
    from captune.agent.embed import AgentClip
    from captune.agent.ingest import ingest
    from captune.demo.agent import demo_agent_config
    from captune.demo.photos import generate_photos

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}; "
          f"torch {torch.__version__}, {args.threads} thread(s)")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        generate_photos(tmp / "dump", n_images=args.images)
        photos = [p for p in ingest(tmp / "dump" / "photos") if p.status == "ok"]
        cfg = demo_agent_config().embeddings
        start = time.perf_counter()
        model = AgentClip(cfg).model
        load = time.perf_counter() - start
        cold, warm = [], []
        for r in range(args.repeats):
            clip = AgentClip(cfg, tmp / f"cache{r}")  # an empty cache each time, the model loaded once
            clip._model = model
            start = time.perf_counter()
            clip.embed_photos(photos)
            cold.append(time.perf_counter() - start)
            start = time.perf_counter()
            clip.embed_photos(photos)
            warm.append(time.perf_counter() - start)
        n = len(photos)
        print(f"shapes-clip load: {load:.2f} s; embed {n} photos: cold {min(cold):.2f} s "
              f"({n / min(cold):.0f} photos/s), from the cache {min(warm):.3f} s ({n / min(warm):.0f} photos/s)")
        for mode in ("template", "hybrid"):
            times = []
            for r in range(args.repeats):
                start = time.perf_counter()
                subprocess.run([sys.executable, "-m", "captune", "demo", "agent", "--out", str(tmp / f"{mode}{r}"),
                                "--images", str(args.images), "--mode", mode, "--json"],
                               check=True, capture_output=True, env=os.environ)
                times.append(time.perf_counter() - start)
            print(f"captune demo agent --mode {mode}: median {statistics.median(times):.1f} s "
                  f"(runs {', '.join(f'{t:.1f}' for t in times)})")
    print(f"load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
