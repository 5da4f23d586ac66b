"""The agent's ``report.html``: what happened to every photo, each stage's figures, and the posts."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from captune.agent.records import Photo, Post
from captune.io import write_text

STAGES = ("ingest", "embeddings", "dedupe_quality", "categorize", "cluster", "select", "captioner", "publisher")


def write_report(out_dir: str | os.PathLike, photos: list[Photo], posts: list[Post], summary: dict) -> Path:
    """Render ``OUT/report.html`` (self-contained but for the post images, linked relative to it)."""
    import jinja2

    from captune.report.text import num

    env = jinja2.Environment(loader=jinja2.PackageLoader("captune.agent", "templates"), autoescape=True,
                             trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    env.filters.update(num=num, pct=pct)
    html = env.get_template("agent_report.html.j2").render(**context(photos, posts, summary))
    return write_text(Path(out_dir) / "report.html", html)


def pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.0f}%"


def context(photos: list[Photo], posts: list[Post], summary: dict) -> dict[str, Any]:
    def of(status: str) -> list[Photo]:
        return [p for p in photos if p.status == status]

    return {
        "summary": summary,
        "stages": [(s, summary["seconds"].get(s)) for s in STAGES if s in summary["seconds"]],
        "metrics": summary.get("metrics"),
        "posts": posts,
        "rejected": of("rejected"),
        "duplicates": of("duplicate"),
        "low_quality": of("low_quality"),
        "beyond": of("beyond_selection"),
        "file_times": [p for p in photos if p.time_source == "file"],
        "events": summary.get("cluster", {}).get("events", {}),
    }
