"""Export a study's ratings: one JSON line per score of one caption.

    captune review export studies/tone --out ratings.jsonl
    captune report runs/demo/run --ratings ratings.jsonl      # the report's "Human ratings"

Each line: ``rater``, ``item_id``, ``image``, ``system``, ``criterion``, ``score`` (1-5),
``preferred`` (the preferred system's name, ``"tie"``, or null without a preference),
``comment``, ``rated_at`` (UTC, ISO 8601).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

EXPORT_KEYS = ("rater", "item_id", "image", "system", "criterion", "score", "preferred", "comment", "rated_at")


def jsonl_text(rows: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def export_ratings(folder: str | Path, out: str | Path) -> dict[str, Any]:
    """Write the study's ratings to ``out`` (atomically); returns counts and the path."""
    from captune.io import write_text
    from captune.review.store import Study

    rows = Study(folder).export_rows()
    write_text(out, jsonl_text(rows))
    return {"out": str(out), "lines": len(rows), "ratings": len({(r["rater"], r["item_id"]) for r in rows}),
            "raters": len({r["rater"] for r in rows})}


def is_export_row(row: dict[str, Any]) -> bool:
    """True for a line of a study export (as opposed to the simple ``{"image_id", "model", "rating"}``)."""
    return {"system", "criterion", "score"} <= set(row)
