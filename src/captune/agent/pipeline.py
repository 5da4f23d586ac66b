"""The agent's pipeline: stages composed, each one's output written and cached.

    from captune.agent.pipeline import run_agent
    run = run_agent(cfg, "event_dump/", "out/", truth=read_json("truth.json"))
    run.summary["metrics"]["dedupe"]["recall"]

Order: ingest → quality → dedupe → categorize → cluster → select → captioner → publisher (dry
run). Each stage writes ``stages/<name>.jsonl`` (every photo, with what the stage decided), and
its output is cached under ``CACHE/stages/<name>/<key>.json``, the key hashing the stage's input
records, the configuration sections it reads and the embedding model: a rerun, or a run that
changes only later stages' keys, reads earlier stages from the cache. Embeddings are cached per
photo by content hash (``captune.agent.embed``). ``summary.json`` holds the counts, the seconds
and the metrics of every stage; ``report.html`` shows them with the posts.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from captune.agent.config import AgentConfig
from captune.agent.records import Photo, Post
from captune.config import dump_config
from captune.io import read_json, write_json, write_jsonl

STAGE_VERSION = 2
"""Bumped when a stage's output changes for the same input, so old cache entries are not reused."""


@dataclass
class AgentRun:
    out_dir: Path
    photos: list[Photo]
    posts: list[Post]
    summary: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)


class StageCache:
    """Stage outputs as JSON files keyed by a hash of what the stage depends on."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root) / "stages"
        self.hits: list[str] = []

    @staticmethod
    def key(name: str, *parts: Any) -> str:
        blob = json.dumps([name, STAGE_VERSION, *parts], sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:24]

    def get_or_run(self, name: str, key: str, run: Callable[[], dict]) -> dict:
        path = self.root / name / f"{key}.json"
        if path.exists():
            self.hits.append(name)
            return read_json(path)
        value = run()
        write_json(path, value, indent=None)
        return value


class ModelPool:
    """Models loaded once and shared by several runs in one process (``captune agent sweep``):
    CLIPs by backend, name, tag and device; captioners by model, adapter and token limit."""

    def __init__(self):
        self.clips: dict[str, Any] = {}
        self.captioners: dict[tuple, Any] = {}

    def captioner(self, cfg) -> Any:
        """The ``ModelCaptioner`` of a captioner section, loaded on first use."""
        from captune.agent.captioner import ModelCaptioner

        which = (cfg.model, cfg.adapter_path, cfg.max_new_tokens)
        if which not in self.captioners:
            self.captioners[which] = ModelCaptioner.from_config(cfg)
        return self.captioners[which]


def photos_digest(photos: list[Photo]) -> str:
    blob = json.dumps([p.to_json() for p in photos], sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()


def listing(root: Path) -> list[tuple[str, int, int]]:
    """``(relative path, size, mtime_ns)`` of every file: ingest's cache key."""
    from captune.agent.ingest import list_files

    out = []
    for p in list_files(root):
        st = p.stat()
        out.append((p.relative_to(root).as_posix(), st.st_size, st.st_mtime_ns))
    return out


def run_agent(cfg: AgentConfig, photos_dir: str | os.PathLike, out_dir: str | os.PathLike,
              truth: dict | None = None, cache_dir: str | os.PathLike | None = None,
              log: Callable[[str], None] = lambda s: None, pool: ModelPool | None = None) -> AgentRun:
    """Run every stage on ``photos_dir`` and write the results under ``out_dir``.

    ``pool`` keeps the models loaded across runs (a sweep); without it each run loads its own."""
    from captune.agent.categorize import categorize, label_texts
    from captune.agent.cluster import cluster_photos
    from captune.agent.dedupe import dedupe
    from captune.agent.embed import AgentClip
    from captune.agent.ingest import ingest
    from captune.agent.quality import flag_quality
    from captune.agent.select import select_posts
    from captune.errors import CaptuneError

    photos_root, out = Path(photos_dir).resolve(), Path(out_dir)
    if not photos_root.is_dir():
        raise CaptuneError(f"--photos {photos_dir}: not a folder")
    out.mkdir(parents=True, exist_ok=True)
    dump_config(cfg, out / "config.yaml")
    cache = StageCache(cache_dir if cache_dir is not None else out / "cache")
    clip = AgentClip(cfg.embeddings, cache.root.parent, pool.clips if pool is not None else None)
    timings: dict[str, float] = {}
    info: dict[str, Any] = {}

    def timed(name: str, fn: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        value = fn()
        timings[name] = round(time.perf_counter() - start, 3)
        return value

    def photos_of(d: dict) -> list[Photo]:
        return [Photo.from_json(x) for x in d["photos"]]

    def as_json(ps: list[Photo]) -> list[dict]:
        return [p.to_json() for p in ps]

    log(f"ingest: {photos_root}")
    key = cache.key("ingest", str(photos_root), listing(photos_root), cfg.quality.size)
    photos = photos_of(timed("ingest", lambda: cache.get_or_run(
        "ingest", key, lambda: {"photos": as_json(ingest(photos_root, cfg.quality.size))})))
    write_jsonl(out / "stages" / "ingest.jsonl", as_json(photos))
    log(f"ingest: {len(photos)} files, {sum(p.status == 'rejected' for p in photos)} rejected")

    embeddings = timed("embeddings", lambda: clip.embed_photos(photos))
    log(f"embeddings: {clip.embedded} embedded, {clip.cached} from the cache")
    model_key = clip.key

    def dedupe_stage() -> dict:
        return {"photos": as_json(dedupe(flag_quality(photos, cfg.quality), cfg.dedupe, embeddings))}

    key = cache.key("dedupe", photos_digest(photos), cfg.quality.model_dump(), cfg.dedupe.model_dump(), model_key)
    photos = photos_of(timed("dedupe_quality", lambda: cache.get_or_run("dedupe", key, dedupe_stage)))
    write_jsonl(out / "stages" / "dedupe.jsonl", as_json(photos))

    label_vectors = clip.embed_texts(label_texts(cfg.categorize))
    scale = clip.logit_scale
    start = time.perf_counter()
    neutral = clip.embed_texts([cfg.categorize.neutral_prompt])[0]
    photos, label_scores = categorize(photos, cfg.categorize, embeddings, label_vectors, scale, neutral)
    timings["categorize"] = round(time.perf_counter() - start, 3)
    write_jsonl(out / "stages" / "labels.jsonl", as_json(photos))

    def cluster_stage() -> dict:
        clustered, cinfo = cluster_photos(photos, cfg.cluster, embeddings, label_scores)
        return {"photos": as_json(clustered), "info": cinfo}

    # fused clusters read every label's score, which the photos' kept labels do not pin down
    scores_from = cfg.categorize.model_dump() if cfg.cluster.use_label_features else None
    key = cache.key("cluster", photos_digest(photos), cfg.cluster.model_dump(), model_key, scores_from)
    result = timed("cluster", lambda: cache.get_or_run("cluster", key, cluster_stage))
    photos, info["cluster"] = photos_of(result), result["info"]
    write_jsonl(out / "stages" / "clusters.jsonl", as_json(photos))

    start = time.perf_counter()
    photos, posts = select_posts(photos, cfg.selection, embeddings)
    timings["select"] = round(time.perf_counter() - start, 3)

    posts = timed("captioner", lambda: _caption(posts, photos, cfg, out, clip, log, pool))
    write_jsonl(out / "stages" / "posts.jsonl", [p.to_json() for p in posts])
    write_jsonl(out / "posts.jsonl", [p.to_json() for p in posts])
    write_jsonl(out / "stages" / "final.jsonl", as_json(photos))

    from captune.agent.publish import dry_run

    timed("publisher", lambda: dry_run(posts, out, cfg.publisher))
    summary = build_summary(photos, posts, info, timings, truth, clip, cache)
    write_json(out / "summary.json", summary)
    from captune.agent.report import write_report

    write_report(out, photos, posts, summary)
    return AgentRun(out, photos, posts, summary, timings)


def event_names(photos: list[Photo], given: dict[str, str] | None = None) -> dict[str, str]:
    """A readable name per event: ``given`` (captioner.event_names), else the folder all its photos
    share, else its date ("18 May 2024"), with the part of the day when several events share it."""
    from datetime import datetime

    by_event: dict[str, list[Photo]] = {}
    for p in photos:
        if p.event:
            by_event.setdefault(p.event, []).append(p)
    starts = {e: datetime.fromisoformat(min(p.taken_at for p in m if p.taken_at))
              for e, m in by_event.items() if any(p.taken_at for p in m)}
    per_day = Counter(d.date() for d in starts.values())
    names: dict[str, str] = {}
    for event, members in by_event.items():
        folders = {p.id.rsplit("/", 1)[0] if "/" in p.id else "" for p in members}
        folder = next(iter(folders)) if len(folders) == 1 else ""
        if given and event in given:
            names[event] = given[event]
        elif folder:
            names[event] = folder.rsplit("/", 1)[-1].replace("_", " ")
        elif event in starts:
            d = starts[event]
            day = f"{d.day} {d:%B %Y}"
            names[event] = day if per_day[d.date()] == 1 else f"the {_part_of_day(d.hour)} of {day}"
        else:
            names[event] = "our event"
    return names


def _part_of_day(hour: int) -> str:
    return "morning" if hour < 12 else "afternoon" if hour < 17 else "evening" if hour < 21 else "night"


def _caption(posts: list[Post], photos: list[Photo], cfg: AgentConfig, out: Path, clip, log,
             pool: ModelPool | None = None) -> list[Post]:
    import shutil

    from captune.agent.captioner import caption_posts
    from captune.agent.ingest import open_photo

    shutil.rmtree(out / "posts", ignore_errors=True)  # no files left from an earlier run's posts
    by_id = {p.id: p for p in photos}
    side = max(cfg.captioner.max_width, cfg.captioner.montage_tile_px)

    def images_for(post: Post) -> list:
        return [open_photo(by_id[i].path, side) for i in post.images]

    scorer = clip.clipscore if cfg.captioner.calc_clipscore or cfg.captioner.mode == "hybrid" else None
    log(f"captioner: {len(posts)} posts, mode {cfg.captioner.mode}")
    shared = pool is not None and cfg.captioner.mode != "template" and posts
    model = pool.captioner(cfg.captioner) if shared else None
    return caption_posts(posts, images_for, event_names(photos, cfg.captioner.event_names), cfg.captioner,
                         out, scorer, model)


def build_summary(photos: list[Photo], posts: list[Post], info: dict, timings: dict, truth: dict | None,
                  clip, cache: StageCache) -> dict[str, Any]:
    """Counts, seconds and metrics of every stage (``summary.json``)."""
    from captune.agent.metrics import post_completeness, stage_metrics

    status = Counter(p.status for p in photos)
    reasons = Counter(p.reason for p in photos if p.status in ("rejected", "low_quality"))
    by_mode: dict[str, list[float]] = {}
    for post in posts:
        if post.clipscore is not None:
            by_mode.setdefault(post.source or post.mode or "", []).append(post.clipscore)
    summary: dict[str, Any] = {
        "photos": len(photos),
        "status": dict(sorted(status.items())),
        "reasons": dict(sorted(reasons.items())),
        "duplicates_by": dict(Counter(p.duplicate_reason for p in photos if p.status == "duplicate")),
        "posts": len(posts),
        "images_per_post": [len(p.images) for p in posts],
        "seconds": timings,
        "embeddings": {"embedded": clip.embedded, "from_cache": clip.cached},
        "cached_stages": list(cache.hits),
        "cluster": info.get("cluster", {}),
        "clipscore": {mode: _describe(v) for mode, v in sorted(by_mode.items())},
        "fallbacks": sum(p.fallback_reason is not None for p in posts),
        "completeness": post_completeness(posts),
    }
    if truth is not None:
        summary["metrics"] = stage_metrics(photos, posts, truth)
    return summary


def _describe(values: list[float]) -> dict[str, float]:
    import numpy as np

    a = np.asarray(values, dtype=np.float64)
    return {"n": len(a), "mean": round(float(a.mean()), 4), "median": round(float(np.median(a)), 4),
            "min": round(float(a.min()), 4), "max": round(float(a.max()), 4)}
