"""Split records into train / val / test by image, deterministically and stably.

    captune data split data/checked/records.jsonl --ratios 0.8,0.1,0.1 --seed 0 --out data/splits
    captune data split records.jsonl --group-near-duplicates --out data/splits   # bursts stay together

Units. Records that must not be split apart form one unit (union-find): records that share an
image (the same ``image_id`` or the same image file under two ids), records with the same
``meta.group``, a record and the image its ``meta.near_duplicate_of`` names (the shapes world
marks its re-shoots so), and, with ``hash_threshold``, images whose perceptual hashes differ in
at most that many of 256 bits (``captune.data.near_duplicates``: bursts, re-encodes and
re-framings of one shot, which would otherwise put the same picture in train and test). With
hashing, a group holding more than ``max_group_share`` of the images (and more than 10) is
refused: it means the images look alike to the hash, not that they are one shot.

Method. Each unit gets a key ``sha256("{seed}:{image_id}")`` (its smallest image id); units are
ordered by key and the first ``n_train`` go to train, the next ``n_val`` to val, the rest to
test. Because the key depends only on the seed and the image id, adding records slots them in
between the old ones: an old unit changes split only if it sat next to a boundary (at most about
one per new unit per boundary), or if a new record joins it with a smaller image id.

Counts are ``n * ratio`` units rounded by largest remainder, then any split with a positive ratio
that came out empty takes one unit from the largest split (with fewer units than splits, train
then val are served first).

With ``stratify``, each stratum (the value of that metadata field on a unit's first record) is
ordered by key and its units are spread evenly over [0, 1) (unit k of n at (k + 0.5) / n); all
units are then ordered by that position and cut as above, so each split takes about ``ratio`` of
every stratum's units while the totals stay exact.
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

from captune.data.near_duplicates import DEFAULT_THRESHOLD, NearDuplicateGroups, near_duplicate_groups
from captune.data.records import CaptionRecord, read_records, with_absolute_images, write_records
from captune.errors import CaptuneError
from captune.io import write_json

SPLIT_NAMES = ("train", "val", "test")
NO_STRATUM = "(none)"
GROUPED_BY = ["image_id", "image file", "meta.group", "meta.near_duplicate_of"]
MAX_GROUP_SHARE = 0.1
SMALL_GROUP = 10  # a burst of up to 10 shots is never refused, whatever the share


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


def image_units(records: Sequence[CaptionRecord],
                hash_labels: Sequence[int] | None = None) -> list[list[int]]:
    """Indices of records that must share a split (union-find; see the module docstring), in input order.

    ``hash_labels[k]``: record k's near-duplicate group, records with the same label are joined.
    """
    parent = list(range(len(records)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[tuple[str, str], int] = {}
    for i, r in enumerate(records):
        for key in _unit_keys(r, None if hash_labels is None else hash_labels[i]):
            j = owner.setdefault(key, i)
            parent[find(i)] = find(j)
    units: dict[int, list[int]] = defaultdict(list)
    for i in range(len(records)):
        units[find(i)].append(i)
    return list(units.values())


def _unit_keys(record: CaptionRecord, hash_label: int | None) -> list[tuple[str, str]]:
    """What a record shares with the others of its unit: a ``near_duplicate_of`` is an image id."""
    keys = [("id", record.image_id), ("file", os.path.normpath(record.image))]
    for kind, field in (("id", "near_duplicate_of"), ("group", "group")):
        value = record.meta.get(field)
        if value is not None and value != "":
            keys.append((kind, str(value)))
    if hash_label is not None:
        keys.append(("hash", str(hash_label)))
    return keys


@dataclass
class Grouping:
    """The units a split keeps whole (indices into the records), and how they were found."""

    units: list[list[int]]
    near_duplicates: NearDuplicateGroups | None = None

    def to_json(self) -> dict[str, Any]:
        sizes = [len(u) for u in self.units]
        return {"by": GROUPED_BY + (["perceptual hash"] if self.near_duplicates else []),
                "units": len(self.units), "grouped_units": sum(s > 1 for s in sizes),
                "largest_unit": max(sizes, default=0),
                "near_duplicates": self.near_duplicates.to_json() if self.near_duplicates else None}


def group_records(records: Sequence[CaptionRecord], hash_threshold: int | None = None,
                  max_group_share: float = MAX_GROUP_SHARE, progress: bool | None = None) -> Grouping:
    """The units of ``records``; with ``hash_threshold``, near-duplicate images are grouped too."""
    if hash_threshold is None:
        return Grouping(image_units(records))
    files = list(dict.fromkeys(os.path.normpath(r.image) for r in records))
    found = near_duplicate_groups(files, hash_threshold, progress)
    _check_group_share(found, max_group_share)
    label_of = dict(zip(files, found.labels))
    return Grouping(image_units(records, [label_of[os.path.normpath(r.image)] for r in records]), found)


def _check_group_share(found: NearDuplicateGroups, max_share: float) -> None:
    """Refuse a hash group too large to be one shot: the hash is merging distinct images."""
    n, largest = len(found.labels), max(found.sizes(), default=0)
    if largest > max(SMALL_GROUP, max_share * n):
        raise CaptuneError(
            f"near-duplicate grouping put {largest} of {n} images ({largest / n:.0%}) in one group at "
            f"--hash-threshold {found.threshold}, over --max-group-share {max_share:g}: the images look "
            "alike to the perceptual hash. Lower --hash-threshold (bits of 256; the default, "
            f"{DEFAULT_THRESHOLD}, catches re-encodes, exposure changes and re-framing by 1-2%), or mark the "
            "shots with meta.group or meta.near_duplicate_of and split without --group-near-duplicates; "
            "raise --max-group-share if such a group is real.")


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
    hash_threshold: int | None = None,
    max_group_share: float = MAX_GROUP_SHARE,
) -> dict[str, list[CaptionRecord]]:
    """Assign every record to a split (see the module docstring); ``meta.split`` names it.

    Within a split, records keep their input order.
    """
    names = list(parse_ratios(ratios))  # bad ratios fail before any image is hashed
    units = group_records(records, hash_threshold, max_group_share).units
    return records_by_split(records, units, assign_units(records, units, ratios, seed, stratify), names)


def assign_units(records: Sequence[CaptionRecord], units: list[list[int]], ratios: str | Sequence[float],
                 seed: int, stratify: str | None) -> list[str]:
    """The split of each unit: units ordered by ``_ordered_units``, cut at the ratio counts."""
    named = parse_ratios(ratios)
    names = list(named)
    ordered = _ordered_units(records, units, seed, stratify)
    chosen = [""] * len(units)
    start = 0
    for s, count in enumerate(split_counts(len(units), list(named.values()))):
        for u in ordered[start : start + count]:
            chosen[u] = names[s]
        start += count
    return chosen


def records_by_split(records: Sequence[CaptionRecord], units: list[list[int]], unit_splits: list[str],
                     names: Sequence[str]) -> dict[str, list[CaptionRecord]]:
    """Records grouped by their unit's split (``names`` in order), in input order, with ``meta.split`` set."""
    split_of = {i: unit_splits[u] for u, unit in enumerate(units) for i in unit}
    out: dict[str, list[CaptionRecord]] = {name: [] for name in names}
    for i, r in enumerate(records):
        name = split_of[i]
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
    grouping: Grouping
    unit_splits: list[str]

    def to_json(self) -> dict[str, Any]:
        strata: dict[str, Counter] = defaultdict(Counter)
        for name, records in self.splits.items():
            for r in records:
                strata[stratum_of(r, self.stratify)][name] += 1
        return {
            "seed": self.seed,
            "ratios": self.ratios,
            "counts": {name: len(rs) for name, rs in self.splits.items()},
            "units": {name: self.unit_splits.count(name) for name in self.splits},
            "captions": {name: sum(len(r.captions) for r in rs) for name, rs in self.splits.items()},
            "stratify": self.stratify,
            "strata": {k: dict(v) for k, v in sorted(strata.items())} if self.stratify else {},
            "grouping": self.grouping.to_json(),
            "method": "units in sha256(seed:image_id) order, largest-remainder counts; "
                      "see captune.data.split",
        }


def split_file(
    input: str | os.PathLike,
    out: str | os.PathLike,
    ratios: str | Sequence[float] = "0.8,0.1,0.1",
    seed: int = 0,
    stratify: str | None = None,
    hash_threshold: int | None = None,
    max_group_share: float = MAX_GROUP_SHARE,
    progress: bool | None = None,
) -> SplitResult:
    """Split a records file; write ``train.jsonl``, ``val.jsonl`` (``test.jsonl``) and ``split.json``.

    ``hash_threshold`` (bits of 256; ``near_duplicates.DEFAULT_THRESHOLD`` is 48) also keeps
    near-duplicate images together.
    """
    records = with_absolute_images(read_records(input), Path(input).parent)
    named = parse_ratios(ratios)
    grouping = group_records(records, hash_threshold, max_group_share, progress)
    unit_splits = assign_units(records, grouping.units, ratios, seed, stratify)
    splits = records_by_split(records, grouping.units, unit_splits, list(named))
    result = SplitResult(splits, seed, named, stratify, Path(out), grouping, unit_splits)
    for name, rs in splits.items():
        write_records(result.out / f"{name}.jsonl", rs)
    write_json(result.out / "split.json", result.to_json())
    return result
