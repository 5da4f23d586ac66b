"""Split records into train / val / test by image, deterministically and stably.

    captune data split data/checked/records.jsonl --ratios 0.8,0.1,0.1 --seed 0 --out data/splits

Method. Records that share an image (the same ``image_id`` or the same image file under two
ids) form one unit, so an image never lands in two splits. Each unit gets a key
``sha256("{seed}:{image_id}")``; units are ordered by key and the first ``n_train`` go to train,
the next ``n_val`` to val, the rest to test. Because the key depends only on the seed and the
image id, adding records slots them in between the old ones: an old record changes split only
if it sat next to a boundary (at most about one per new record per boundary).

Counts are ``n * ratio`` rounded by largest remainder, then any split with a positive ratio that
came out empty takes one unit from the largest split (with fewer units than splits, train
then val are served first).

With ``stratify``, each stratum (the value of that metadata field) is ordered by key and its
units are spread evenly over [0, 1) (unit k of n at (k + 0.5) / n); all units are then ordered
by that position and cut as above, so each split takes about ``ratio`` of every stratum while the
totals stay exact.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from captune.data.records import CaptionRecord, read_records, with_absolute_images, write_records
from captune.errors import CaptuneError
from captune.io import write_json

SPLIT_NAMES = ("train", "val", "test")
NO_STRATUM = "(none)"


def parse_ratios(ratios: str | Sequence[float]) -> dict[str, float]:
    """``"0.8,0.1,0.1"`` -> ``{"train": 0.8, "val": 0.1, "test": 0.1}`` (two ratios: train/val)."""
    if isinstance(ratios, str):
        try:
            values = [float(x) for x in ratios.split(",") if x.strip()]
        except ValueError:
            raise CaptuneError(f"--ratios {ratios!r}: expected numbers separated by commas, e.g. 0.8,0.1,0.1") from None
    else:
        values = [float(x) for x in ratios]
    if len(values) not in (2, 3):
        raise CaptuneError(f"--ratios: expected 2 (train,val) or 3 (train,val,test) ratios, got {len(values)}")
    if any(v < 0 or math.isnan(v) for v in values):
        raise CaptuneError(f"--ratios: ratios must not be negative, got {values}")
    if abs(sum(values) - 1.0) > 1e-6:
        raise CaptuneError(f"--ratios: ratios must sum to 1, got {values} (sum {sum(values):.6g})")
    return dict(zip(SPLIT_NAMES, values))


def split_counts(n: int, ratios: Sequence[float]) -> list[int]:
    """Integer sizes for ``n`` units: largest remainder, no requested split left empty if n allows."""
    raw = [n * r for r in ratios]
    counts = [math.floor(x + 1e-9) for x in raw]
    order = sorted(range(len(raw)), key=lambda i: (-(raw[i] - counts[i]), i))
    for i in order[: n - sum(counts)]:
        counts[i] += 1
    served = [i for i, r in enumerate(ratios) if r > 0][:n]
    for i in served:
        if counts[i] == 0:
            donor = max(range(len(counts)), key=lambda j: (counts[j] > 1 or j not in served, counts[j]))
            counts[donor] -= 1
            counts[i] += 1
    return counts


def unit_key(seed: int, image_id: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}:{image_id}".encode()).digest()[:8], "big")


def image_units(records: Sequence[CaptionRecord]) -> list[list[int]]:
    """Indices of records grouped by shared image id or image file (union-find), in input order."""
    parent = list(range(len(records)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[tuple[str, str], int] = {}
    for i, r in enumerate(records):
        for key in (("id", r.image_id), ("file", os.path.normpath(r.image))):
            j = owner.setdefault(key, i)
            parent[find(i)] = find(j)
    units: dict[int, list[int]] = defaultdict(list)
    for i in range(len(records)):
        units[find(i)].append(i)
    return list(units.values())


def stratum_of(record: CaptionRecord, field: str | None) -> str:
    if field is None:
        return NO_STRATUM
    value: Any = record.meta
    for part in field.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if value is None or value == "" or value == []:
        return NO_STRATUM
    return ",".join(sorted(map(str, value))) if isinstance(value, list) else str(value)


def split_records(
    records: Sequence[CaptionRecord],
    ratios: str | Sequence[float] = "0.8,0.1,0.1",
    seed: int = 0,
    stratify: str | None = None,
) -> dict[str, list[CaptionRecord]]:
    """Assign every record to a split (see the module docstring); ``meta.split`` names it.

    Within a split, records keep their input order.
    """
    named = parse_ratios(ratios)
    names = list(named)
    units = image_units(records)
    ordered = _ordered_units(records, units, seed, stratify)
    chosen = [0] * len(units)
    start = 0
    for s, count in enumerate(split_counts(len(units), list(named.values()))):
        for u in ordered[start : start + count]:
            chosen[u] = s
        start += count
    unit_of = {i: u for u, unit in enumerate(units) for i in unit}
    out: dict[str, list[CaptionRecord]] = {name: [] for name in names}
    for i, r in enumerate(records):
        name = names[chosen[unit_of[i]]]
        out[name].append(CaptionRecord(r.image_id, r.image, list(r.captions), {**r.meta, "split": name}))
    return out


def _ordered_units(records: Sequence[CaptionRecord], units: list[list[int]], seed: int, stratify: str | None) -> list[int]:
    """Units in split order: by position within their stratum, then by key."""
    ids = [min(records[i].image_id for i in unit) for unit in units]
    keys = [unit_key(seed, image_id) for image_id in ids]
    strata: dict[str, list[int]] = defaultdict(list)
    for u, unit in enumerate(units):
        strata[stratum_of(records[unit[0]], stratify)].append(u)
    position = [0.0] * len(units)
    for members in strata.values():
        members.sort(key=lambda u: (keys[u], ids[u]))
        for k, u in enumerate(members):
            position[u] = (k + 0.5) / len(members)
    return sorted(range(len(units)), key=lambda u: (position[u], keys[u], ids[u]))


@dataclass
class SplitResult:
    splits: dict[str, list[CaptionRecord]]
    seed: int
    ratios: dict[str, float]
    stratify: str | None
    out: Path

    def to_json(self) -> dict[str, Any]:
        strata: dict[str, Counter] = defaultdict(Counter)
        for name, records in self.splits.items():
            for r in records:
                strata[stratum_of(r, self.stratify)][name] += 1
        return {
            "seed": self.seed,
            "ratios": self.ratios,
            "counts": {name: len(rs) for name, rs in self.splits.items()},
            "captions": {name: sum(len(r.captions) for r in rs) for name, rs in self.splits.items()},
            "stratify": self.stratify,
            "strata": {k: dict(v) for k, v in sorted(strata.items())} if self.stratify else {},
            "method": "sha256(seed:image_id) order, largest-remainder counts; see captune.data.split",
        }


def split_file(
    input: str | os.PathLike,
    out: str | os.PathLike,
    ratios: str | Sequence[float] = "0.8,0.1,0.1",
    seed: int = 0,
    stratify: str | None = None,
) -> SplitResult:
    """Split a records file; write ``train.jsonl``, ``val.jsonl`` (``test.jsonl``) and ``split.json``."""
    records = with_absolute_images(read_records(input), Path(input).parent)
    splits = split_records(records, ratios, seed, stratify)
    result = SplitResult(splits, seed, parse_ratios(ratios), stratify, Path(out))
    for name, rs in splits.items():
        write_records(result.out / f"{name}.jsonl", rs)
    write_json(result.out / "split.json", result.to_json())
    return result
