"""``captune demo agent``: the photo-to-post agent on a shapes-world photo dump, measured.

    from captune.demo.agent import run_demo_agent
    result = run_demo_agent("runs/agent-demo")          # or: captune demo agent --out runs/agent-demo

Writes the dump (``OUT/dump/photos``, ``OUT/dump/truth.json``, from ``captune.demo.photos``) and
runs the agent on it with the shipped tiny CLIP (``shapes-clip``) and, for ``model`` and
``hybrid`` captions, the shipped captioner with the demo's fine-tuned adapter when one is given
(``--adapter runs/demo/run/checkpoints/best``). The agent's files go straight into ``OUT``.

``run_demo_sweep`` runs the seed's study on the same dump (``captune demo agent --sweep``):
``SWEEP_GRID``'s k x images per post x captioner mode (27 runs) and the two thresholds one value at
a time (4 runs), or with ``full`` the whole grid (243 runs).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from captune.config import load_config

CONFIG = Path(__file__).with_name("agent.yaml")


def demo_agent_config(overrides: Sequence[str] = ()):
    from captune.agent.config import AgentConfig

    return load_config(AgentConfig, CONFIG, list(overrides))


def run_demo_agent(out_dir: str | os.PathLike, adapter: str | None = None, mode: str | None = None,
                   n_events: int = 6, n_images: int = 120, seed: int = 0, overrides: Sequence[str] = (),
                   log: Callable[[str], None] = lambda s: None):
    """Write the dump (the same seed gives the same files and times) and run the agent; returns the ``AgentRun``."""
    from captune.agent.pipeline import run_agent
    from captune.demo.photos import generate_photos
    from captune.io import read_json

    out = Path(out_dir)
    dump = out / "dump"
    log(f"photos: a dump of {n_images} photos from {n_events} events in {dump}")
    generate_photos(dump, n_events=n_events, n_images=n_images, seed=seed)
    extra = list(overrides)
    if adapter:
        extra.append(f"captioner.adapter_path={adapter}")
    if mode:
        extra.append(f"captioner.mode={mode}")
    cfg = demo_agent_config(extra)
    return run_agent(cfg, dump / "photos", out, truth=read_json(dump / "truth.json"), log=log)


SWEEP_GRID = {
    "cluster.k": ["auto", "5", "10"],
    "cluster.max_images_per_post": ["2", "4", "6"],
    "captioner.mode": ["template", "model", "hybrid"],
    "dedupe.clip_threshold": ["0.7", "0.8", "0.9"],
    "categorize.threshold": ["0.32", "0.36", "0.40"],
}
"""The seed's study: k, images per post and captioner mode, dedupe and label thresholds."""


def demo_sweep_combos(full: bool = False) -> list[dict[str, str]]:
    """The whole grid, or k x images per post x mode with each threshold varied alone at the defaults."""
    from captune.agent.sweep import expand

    if full:
        return expand(SWEEP_GRID)
    core = expand({k: SWEEP_GRID[k] for k in ("cluster.k", "cluster.max_images_per_post", "captioner.mode")})
    alone = [{"dedupe.clip_threshold": v} for v in ("0.7", "0.9")]
    return core + alone + [{"categorize.threshold": v} for v in ("0.32", "0.36")]


def run_demo_sweep(out_dir: str | os.PathLike, full: bool = False, adapter: str | None = None, n_events: int = 6,
                   n_images: int = 120, seed: int = 0, resamples: int = 1000, overrides: Sequence[str] = (),
                   log: Callable[[str], None] = lambda s: None):
    """Write the dump (``OUT/dump``) and sweep the agent over it (``OUT/runs``, ``OUT/report.html``); the ``Sweep``."""
    from captune.agent.sweep import run_sweep
    from captune.demo.photos import generate_photos
    from captune.io import read_json

    dump = Path(out_dir) / "dump"
    log(f"photos: a dump of {n_images} photos from {n_events} events in {dump}")
    generate_photos(dump, n_events=n_events, n_images=n_images, seed=seed)
    overrides = [*overrides, f"captioner.adapter_path={adapter}"] if adapter else list(overrides)
    return run_sweep(demo_sweep_combos(full), dump / "photos", out_dir, config=CONFIG, overrides=overrides,
                     truth=read_json(dump / "truth.json"), resamples=resamples, log=log)
