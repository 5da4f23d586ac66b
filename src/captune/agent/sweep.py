"""Agent sweeps: the agent run over a grid of configuration values, every stage measured.

    captune agent sweep [CONFIG.yaml] --photos DIR --out DIR --grid cluster.k=auto,5,10 \\
        --grid captioner.mode=template,model,hybrid [--truth truth.json] [--sample N] [--resamples 1000]

    from captune.agent.sweep import expand, parse_grid, run_sweep
    combos = expand(parse_grid(["cluster.k=auto,5,10", "captioner.mode=template,model,hybrid"]))
    sweep = run_sweep(combos, "event_dump/", "out/", truth=read_json("truth.json"))

Every combination runs in ``OUT/runs/<id>/`` (the agent's files and its resolved ``config.yaml``);
``<id>`` is made of the combination's values and a hash of them, so it names the same run in a
later sweep. All runs share ``OUT/cache``: changing ``captioner.mode`` reads the embeddings,
dedupe and clusters from it (categorize is recomputed, a few milliseconds), changing
``cluster.k`` reads the embeddings and dedupe. The models are loaded once per sweep. A finished
run writes ``row.json`` last; a sweep started again skips every run whose ``row.json`` is there
for the same resolved configuration, photos (their paths, sizes and times), truth, resamples
and seed, so a killed sweep resumes where it stopped and a sweep on other photos runs again.

``OUT/sweep.jsonl`` and ``OUT/sweep.csv`` hold one row per combination (``sweep_row``): its
parameters and every stage's figures. ``OUT/report.html`` and ``OUT/report.md`` add the paired
comparisons and the findings (``captune.agent.sweep_compare``, ``captune.agent.sweep_report``).
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import os
import random
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from captune.config import parse_grid as config_parse_grid
from captune.errors import ConfigError

Combo = dict[str, str]
"""One combination: dotted key -> value as written on the command line (parsed as YAML)."""


@dataclass
class Sweep:
    out_dir: Path
    rows: list[dict[str, Any]]
    keys: list[str]
    """The swept keys, in grid order."""
    ran: list[str]
    """Ids of the runs made by this call (the others were finished before)."""
    comparisons: dict[str, Any]
    seconds: float


def parse_grid(specs: Sequence[str]) -> dict[str, list[str]]:
    """``["cluster.k=auto,5,10", ...]`` -> ``{"cluster.k": ["auto", "5", "10"]}`` (``captune.config.parse_grid``)."""
    return config_parse_grid(specs, "cluster.k=auto,5,10")


def expand(grid: Mapping[str, Sequence[str]]) -> list[Combo]:
    """Every combination, the last key varying fastest."""
    return [dict(zip(grid, values)) for values in itertools.product(*grid.values())]


def sample(combos: Sequence[Combo], n: int, seed: int = 0) -> list[Combo]:
    """``n`` combinations drawn without replacement (the same seed draws the same), in grid order."""
    if n < 1:
        raise ConfigError(f"--sample {n}: must be at least 1")
    if n >= len(combos):
        return list(combos)
    picked = sorted(random.Random(seed).sample(range(len(combos)), n))
    return [combos[i] for i in picked]


def combo_id(combo: Combo) -> str:
    """A folder name: the values, shortened, and a hash of the combination (``auto-4-model-3f9c1a``)."""
    slug = "-".join(re.sub(r"[^A-Za-z0-9.]+", "", v) or "x" for v in combo.values())[:60]
    digest = hashlib.sha256(json.dumps(sorted(combo.items())).encode()).hexdigest()[:6]
    return f"{slug}-{digest}" if slug else digest


def resolve(combos: Sequence[Combo], config: str | os.PathLike | None, overrides: Sequence[str] = ()) -> list:
    """The ``AgentConfig`` of every combination; a bad key or value names its ``--grid`` entry."""
    from captune.agent.config import AgentConfig
    from captune.config import load_config

    configs = []
    for combo in combos:
        try:
            configs.append(load_config(AgentConfig, config, [*overrides, *(f"{k}={v}" for k, v in combo.items())]))
        except ConfigError as e:
            raise ConfigError(f"--grid {', '.join(f'{k}={v}' for k, v in combo.items())}: {e}") from None
    return configs


def check_grid(grid: Mapping[str, Sequence[str]], config: str | os.PathLike | None,
               overrides: Sequence[str] = ()) -> None:
    """Validate every value of every key alone, so an error names the one ``--grid KEY=VALUE`` at fault."""
    for key, values in grid.items():
        for value in values:
            resolve([{key: value}], config, overrides)


def value_at(cfg: Any, key: str) -> Any:
    """The resolved value of a dotted key (``cluster.k`` -> ``"auto"``)."""
    node: Any = cfg.model_dump(mode="json")
    for part in key.split("."):
        node = node[part]
    return node


def run_sweep(combos: Sequence[Combo], photos_dir: str | os.PathLike, out_dir: str | os.PathLike,
              config: str | os.PathLike | None = None, overrides: Sequence[str] = (), truth: dict | None = None,
              resamples: int = 1000, seed: int = 0, log: Callable[[str], None] = lambda s: None,
              pool=None) -> Sweep:
    """Run every combination not finished before, then write the rows, the comparisons and the report."""
    from captune.agent.pipeline import ModelPool
    from captune.agent.sweep_compare import compare_sweep
    from captune.agent.sweep_report import write_sweep_report
    from captune.io import read_json, write_json

    start = time.perf_counter()
    out = Path(out_dir)
    keys = list(dict.fromkeys(k for c in combos for k in c))
    configs = resolve(combos, config, overrides)
    pool = pool if pool is not None else ModelPool()
    rows, ran = [], []
    inputs = inputs_of(photos_dir, truth, resamples, seed)
    for i, (combo, cfg) in enumerate(zip(combos, configs), 1):
        run_id = combo_id(combo)
        folder = out / "runs" / run_id
        digest = config_digest(cfg, inputs)
        done = folder / "row.json"
        if done.exists() and read_json(done).get("config_sha") == digest:
            rows.append(read_json(done))
            log(f"[{i}/{len(combos)}] {run_id}: finished before")
            continue
        log(f"[{i}/{len(combos)}] {run_id}: {', '.join(f'{k}={v}' for k, v in combo.items())}")
        row = _run_one(cfg, photos_dir, folder, out / "cache", truth, pool, resamples, seed)
        row = {"id": run_id, "config_sha": digest, **{k: value_at(cfg, k) for k in keys}, **row}
        write_json(done, row)
        rows.append(row)
        ran.append(run_id)
    write_rows(out, rows)
    comparisons = compare_sweep(rows, keys, out / "runs", truth, resamples, seed)
    write_json(out / "comparisons.json", comparisons)
    sweep = Sweep(out, rows, keys, ran, comparisons, round(time.perf_counter() - start, 2))
    write_sweep_report(sweep)
    return sweep


ROW_VERSION = 1
"""Bumped when ``sweep_row`` changes, so a resumed sweep reruns the runs finished with the old rows."""


def config_digest(cfg: Any, inputs: Any = None) -> str:
    """What a finished run's ``row.json`` must match to be reused: the resolved configuration, the row
    version and the run's ``inputs`` (``inputs_of``: the row's figures are of those photos and that truth)."""
    blob = json.dumps([ROW_VERSION, cfg.model_dump(mode="json"), inputs], sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def inputs_of(photos_dir: str | os.PathLike, truth: dict | None, resamples: int, seed: int) -> list:
    """The photo folder's listing (paths, sizes, times), the truth file's content, the resamples and the seed."""
    from captune.agent.pipeline import listing

    root = Path(photos_dir).resolve()
    return [str(root), listing(root) if root.is_dir() else None, truth, resamples, seed]


def _run_one(cfg, photos_dir, folder: Path, cache: Path, truth, pool, resamples: int, seed: int) -> dict[str, Any]:
    from captune.agent.pipeline import run_agent

    run = run_agent(cfg, photos_dir, folder, truth=truth, cache_dir=cache, pool=pool)
    return sweep_row(run.summary, [p.to_json() for p in run.posts], resamples, seed)


def sweep_row(summary: dict, posts: Sequence[dict], resamples: int = 1000, seed: int = 0) -> dict[str, Any]:
    """The figures of one run, flat: posts, images per post, silhouette, CLIPScore (with the 95%
    bootstrap interval of its mean over posts), fallbacks, stage metrics, seconds per stage."""
    from captune.agent.sweep_compare import describe

    sizes = summary["images_per_post"]
    posts_n = len(posts)
    row: dict[str, Any] = {
        "photos": summary["photos"], "posts": posts_n, "photos_in_posts": sum(sizes),
        "images_per_post_mean": round(sum(sizes) / posts_n, 3) if posts_n else None,
        "images_per_post_max": max(sizes, default=None),
        "clusters": summary["cluster"].get("n_clusters"), "silhouette": summary["cluster"].get("mean_silhouette"),
    }
    scores = [p["clipscore"] for p in posts if p.get("clipscore") is not None]
    row.update({f"clipscore_{k}": v for k, v in describe(scores, resamples, seed).items()})
    fallbacks = sum(p.get("fallback_reason") is not None for p in posts)
    row["model_captions"] = sum(p.get("source") == "model" for p in posts)
    row["fallback_rate"] = round(fallbacks / posts_n, 4) if posts_n and posts[0].get("mode") == "hybrid" else None
    row["complete_share"] = summary["completeness"]["share"]
    row.update(_metrics(summary.get("metrics") or {}))
    row.update({f"seconds_{k}": v for k, v in summary["seconds"].items()})
    row["seconds_total"] = round(sum(summary["seconds"].values()), 3)
    row["embedded"] = summary["embeddings"]["embedded"]
    row["cached_stages"] = ",".join(summary["cached_stages"])
    return row


METRIC_COLUMNS = {
    "dedupe": ("precision", "recall", "f1"),
    "quality": ("precision", "recall", "f1"),
    "labels": ("micro_precision", "micro_recall", "micro_f1", "macro_f1"),
    "events": ("ari", "nmi", "purity", "bcubed_f1"),
    "clusters": ("ari", "nmi", "purity", "bcubed_precision", "bcubed_recall", "bcubed_f1"),
}
"""Stage metrics copied into a sweep row as ``<stage>_<measure>`` (when the truth file has the stage)."""


def _metrics(metrics: dict) -> dict[str, Any]:
    out = {}
    for stage, names in METRIC_COLUMNS.items():
        if stage in metrics:
            for name in names:
                value = metrics[stage].get(name)
                out[f"{stage}_{name}"] = None if value is None else round(value, 4)
    return out


def write_rows(out: Path, rows: Sequence[dict]) -> None:
    """``sweep.jsonl`` and ``sweep.csv`` (columns: every key any row has, in first-seen order), atomically."""
    from captune.io import write_jsonl, write_text

    write_jsonl(out / "sweep.jsonl", rows)
    columns = list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: "" if r.get(k) is None else r.get(k) for k in columns} for r in rows)
    write_text(out / "sweep.csv", buf.getvalue())
