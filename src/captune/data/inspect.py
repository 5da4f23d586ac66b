"""Describe a caption dataset: sizes, caption lengths, vocabulary, duplicates, events and labels.

    captune data inspect data/checked/records.jsonl
    captune data inspect posts.jsonl --drop-stopwords --json

Works on records files and on any raw format ``read_dataset`` reads. Caption length is counted
in whitespace-separated words (as the cleaning rules count them); vocabulary and common words
use lower-cased word tokens. A duplicate caption is one that, lower-cased and without final
punctuation, appears on more than one image.
"""

from __future__ import annotations

import os
import re
import statistics
from collections import Counter
from typing import Any

import numpy as np

from captune.data.readers import read_dataset
from captune.data.records import CaptionRecord

_WORD = re.compile(r"\w+(?:['’]\w+)*")


def inspect_dataset(
    path: str | os.PathLike,
    format: str | None = None,
    image_root: str | os.PathLike | None = None,
    top: int = 15,
    drop_stopwords: bool = False,
    examples: int = 5,
    **reader_options: Any,
) -> dict[str, Any]:
    """Read a dataset (records file or raw) and return its statistics (see ``dataset_stats``)."""
    result = read_dataset(path, format, image_root, **reader_options)
    stats = {
        "input": str(path),
        "format": result.format,
        "rows": result.rows,
        "rejected": len(result.rejects),
        "reasons": dict(Counter(r.reason for r in result.rejects).most_common()),
    }
    return {**stats, **dataset_stats(result.records, top, drop_stopwords, examples)}


def dataset_stats(
    records: list[CaptionRecord], top: int = 15, drop_stopwords: bool = False, examples: int = 5
) -> dict[str, Any]:
    """Counts and distributions over ``records``; every value is JSON-serialisable."""
    per_image = [len(r.captions) for r in records]
    captions = [c for r in records for c in r.captions]
    words = Counter(w for c in captions for w in _WORD.findall(c.lower()))
    common = words
    if drop_stopwords:
        from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

        common = Counter({w: n for w, n in words.items() if w not in ENGLISH_STOP_WORDS})
    return {
        "images": len(records),
        "images_without_captions": sum(1 for n in per_image if n == 0),
        "captions": len(captions),
        "captions_per_image": {**summary(per_image), "histogram": dict(sorted(Counter(per_image).items()))},
        "caption_words": summary([len(c.split()) for c in captions], p95=True),
        "vocabulary": len(words),
        "top_words": common.most_common(top),
        "stopwords_dropped": drop_stopwords,
        "duplicate_captions": duplicates(records, top),
        "events": dict(Counter(str(r.event) for r in records if r.event).most_common()),
        "labels": dict(Counter(label for r in records for label in r.labels).most_common()),
        "examples": [
            {"image_id": r.image_id, "captions": len(r.captions), "caption": r.captions[0] if r.captions else ""}
            for r in records[:examples]
        ],
    }


def summary(values: list[int], p95: bool = False) -> dict[str, float | int | None]:
    if not values:
        keys = ("min", "mean", "median", "p95", "max") if p95 else ("min", "mean", "median", "max")
        return dict.fromkeys(keys)
    out: dict[str, float | int | None] = {
        "min": min(values),
        "mean": round(statistics.fmean(values), 3),
        "median": statistics.median(values),
    }
    if p95:
        out["p95"] = float(np.percentile(values, 95))
    out["max"] = max(values)
    return out


def _normalise(caption: str) -> str:
    return " ".join(caption.lower().split()).rstrip(" .!?…")


def duplicates(records: list[CaptionRecord], top: int = 15) -> dict[str, Any]:
    """Captions shared by several images: how many, how many images they touch, the commonest."""
    images: dict[str, set[str]] = {}
    shown: dict[str, str] = {}
    for r in records:
        for c in r.captions:
            key = _normalise(c)
            images.setdefault(key, set()).add(r.image_id)
            shown.setdefault(key, c)
    shared = {k: len(v) for k, v in images.items() if len(v) > 1}
    return {
        "captions": len(shared),
        "images": len(set().union(*(images[k] for k in shared))) if shared else 0,
        "top": [[shown[k], n] for k, n in Counter(shared).most_common(top)],
    }


def format_stats(stats: dict[str, Any]) -> str:
    """The statistics as a short plain-text report."""
    def counts(d: dict, n: int = 10, sep: str = " ") -> str:
        return ", ".join(f"{k}{sep}{v}" for k, v in list(d.items())[:n]) + (" ..." if len(d) > n else "")

    cpi, words = stats["captions_per_image"], stats["caption_words"]
    dup = stats["duplicate_captions"]
    lines = [
        f"{stats['input']} ({stats['format']}): {stats['rows']} rows, {stats['rejected']} rejected"
        + (f" ({counts(stats['reasons'])})" if stats["reasons"] else ""),
        f"images {stats['images']} ({stats['images_without_captions']} without captions), captions {stats['captions']}",
        (f"captions per image: min {cpi['min']}, mean {cpi['mean']}, median {cpi['median']}, max {cpi['max']}"
        f"  [captions: images {counts(cpi['histogram'], sep=': ')}]"),
        (f"caption words: min {words['min']}, mean {words['mean']}, median {words['median']}, "
        f"p95 {words['p95']}, max {words['max']}"),
        f"vocabulary: {stats['vocabulary']} words; most common"
        + (" (stopwords dropped)" if stats["stopwords_dropped"] else "")
        + ": " + ", ".join(f"{w} {n}" for w, n in stats["top_words"]),
        f"duplicate captions across images: {dup['captions']} on {dup['images']} images"
        + ("".join(f"\n  {n} images: {c!r}" for c, n in dup["top"][:5])),
    ]
    if stats["events"]:
        lines.append(f"events: {counts(stats['events'])}")
    if stats["labels"]:
        lines.append(f"labels: {counts(stats['labels'])}")
    lines.append(_table(stats["examples"]))
    return "\n".join(lines)


def _table(examples: list[dict[str, Any]]) -> str:
    if not examples:
        return "examples: none"
    width = min(40, max(len("image_id"), *(len(e["image_id"]) for e in examples)))
    rows = [f"{'image_id':<{width}}  captions  first caption"]
    for e in examples:
        caption = e["caption"] if len(e["caption"]) <= 60 else e["caption"][:57] + "..."
        rows.append(f"{e['image_id'][:width]:<{width}}  {e['captions']:>8}  {caption}")
    return "examples:\n  " + "\n  ".join(rows)
