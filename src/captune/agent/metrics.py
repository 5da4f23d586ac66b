"""Stage metrics against a truth file: ingest, dedupe, quality, labels, events and groups, and post completeness.

    metrics = stage_metrics(photos, posts, truth)

``truth`` is the ``--truth`` file: ``{"duplicates": [[img, ...], ...], "low_quality": [img, ...],
"labels": {img: [label, ...]}, "events": {img: event}, "unreadable": [img, ...]}``, every key
optional, ``img`` a photo's ``id`` (its path relative to the photo folder). Truth photos that are
not among ``photos`` are left out. Precision, recall and F1 are None where undefined (nothing
found, nothing to find); F1 is ``2 tp / (found + true)``.

- ``dedupe``: pairs. The predicted duplicate pairs are all pairs within each predicted group (a
  kept photo and the photos whose ``duplicate_of`` leads to it), the true pairs all pairs within
  each truth group.
- ``quality``: a photo is flagged when its status is ``low_quality``. Scored over the photos that
  reached a verdict of their own: not ``rejected`` and not ``duplicate`` (a blurred re-shot
  dropped as a duplicate of its sharp original is out of the posts either way, and its status
  no longer says what the quality check found); ``outside`` counts the truth photos left out so.
- ``labels``: multi-label, over the photos that went through categorize (status ``ok``,
  ``posted`` or ``beyond_selection``); micro and macro precision, recall and F1 as
  scikit-learn's ``precision_recall_fscore_support(..., zero_division=np.nan)``: a label's
  undefined value is None and left out of the macro mean.
- ``events`` and ``clusters``: the predicted event (``photo.event``) and group (``photo.cluster``)
  against the truth event, over the photos clustered: ARI, NMI (arithmetic mean), purity and
  B-cubed precision, recall and F1.
- ``ingest``: a photo is rejected when its status is ``rejected``, against ``unreadable``.
- ``posts``: posts with a caption, hashtags and no broken limit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from itertools import combinations
from typing import Any

import numpy as np
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from sklearn.metrics.cluster import contingency_matrix

from captune.agent.records import Photo, Post

LABELLED = ("ok", "posted", "beyond_selection")
"""Statuses of the photos that went through categorize."""
TRUTH_KEYS = ("duplicates", "low_quality", "labels", "events", "unreadable")


def prf(tp: int, found: int, true: int) -> dict[str, float | None]:
    """Precision, recall and F1 from counts; None where the denominator is 0."""
    return {"precision": tp / found if found else None, "recall": tp / true if true else None,
            "f1": 2 * tp / (found + true) if found + true else None}


def dedupe_scores(photos: Sequence[Photo], truth_groups: Iterable[Sequence[str]]) -> dict[str, Any]:
    """Pair precision, recall and F1 of the duplicate groups; ``pairs_true``, ``pairs_found``."""
    present = {p.id for p in photos}
    found = _pairs(duplicate_groups(photos))
    true = _pairs([[i for i in group if i in present] for group in truth_groups])
    return {**prf(len(found & true), len(found), len(true)), "pairs_true": len(true), "pairs_found": len(found)}


def duplicate_groups(photos: Sequence[Photo]) -> list[list[str]]:
    """Groups of photo ids linked by ``duplicate_of`` (transitively), each of two or more."""
    parent = {p.id: p.id for p in photos}

    def root(i: str) -> str:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for p in photos:
        if p.duplicate_of is not None and p.duplicate_of in parent:
            parent[root(p.id)] = root(p.duplicate_of)
    groups: dict[str, list[str]] = {}
    for i in parent:
        groups.setdefault(root(i), []).append(i)
    return [g for g in groups.values() if len(g) > 1]


def quality_scores(photos: Sequence[Photo], truth_low_quality: Iterable[str]) -> dict[str, Any]:
    """Precision, recall and F1 of the low_quality flag; ``flagged``, ``truth``, ``outside`` (see the module)."""
    scope = {p.id for p in photos if p.status not in ("rejected", "duplicate")}
    present = {p.id for p in photos}
    truth = set(truth_low_quality) & present
    flagged = {p.id for p in photos if p.status == "low_quality"}
    inside = truth & scope
    return {**prf(len(flagged & inside), len(flagged), len(inside)), "flagged": len(flagged),
            "truth": len(inside), "outside": len(truth - scope)}


def ingest_scores(photos: Sequence[Photo], truth_unreadable: Iterable[str]) -> dict[str, Any]:
    """Precision, recall and F1 of the ``rejected`` status against the unreadable files."""
    truth = set(truth_unreadable) & {p.id for p in photos}
    rejected = {p.id for p in photos if p.status == "rejected"}
    return {**prf(len(rejected & truth), len(rejected), len(truth)), "rejected": len(rejected), "truth": len(truth)}


def label_scores(photos: Sequence[Photo], truth_labels: Mapping[str, Iterable[str]]) -> dict[str, Any]:
    """Micro, macro and per-label precision, recall and F1 of the predicted labels (see the module)."""
    scope = [p for p in photos if p.status in LABELLED and p.id in truth_labels]
    predicted = [{name for name, _ in p.labels} for p in scope]
    true = [set(truth_labels[p.id]) for p in scope]
    names = sorted(set().union(*predicted, *true))
    per_label = {}
    for name in names:
        tp = sum(name in a and name in b for a, b in zip(predicted, true))
        found, support = sum(name in a for a in predicted), sum(name in b for b in true)
        per_label[name] = {**prf(tp, found, support), "support": support}
    tp = sum(len(a & b) for a, b in zip(predicted, true))
    macro = {m: _mean([v[m] for v in per_label.values()]) for m in ("precision", "recall", "f1")}
    return {"micro": prf(tp, sum(map(len, predicted)), sum(map(len, true))), "macro": macro,
            "per_label": per_label, "photos": len(scope)}


def cluster_scores(photos: Sequence[Photo], truth_events: Mapping[str, str]) -> dict[str, Any]:
    """Partition scores of the predicted events and of the predicted groups against the truth events."""
    scope = [p for p in photos if p.event is not None and p.id in truth_events]
    truth = [str(truth_events[p.id]) for p in scope]
    return {"events": partition_scores(truth, [p.event for p in scope]),
            "clusters": partition_scores(truth, [str(p.cluster) for p in scope]), "photos": len(scope)}


def partition_scores(truth: Sequence[str], predicted: Sequence[str]) -> dict[str, float | None]:
    """ARI, NMI, purity and B-cubed precision, recall and F1 of one labelling against another."""
    if not truth:
        return dict.fromkeys(("ari", "nmi", "purity", "bcubed_precision", "bcubed_recall", "bcubed_f1"))
    counts = contingency_matrix(truth, predicted)  # (truth classes, predicted groups)
    n = counts.sum()
    squared = counts.astype(np.float64) ** 2
    precision = float((squared / counts.sum(0, keepdims=True)).sum() / n)  # each photo: share of its group
    recall = float((squared / counts.sum(1, keepdims=True)).sum() / n)  # ... and of its truth class
    return {"ari": float(adjusted_rand_score(truth, predicted)),
            "nmi": float(normalized_mutual_info_score(truth, predicted)),
            "purity": float(counts.max(0).sum() / n),
            "bcubed_precision": precision, "bcubed_recall": recall,
            "bcubed_f1": 2 * precision * recall / (precision + recall)}


def post_completeness(posts: Sequence[Post]) -> dict[str, Any]:
    """Posts ready to publish: a caption, hashtags and no broken Instagram limit."""
    complete = sum(bool(p.caption.strip()) and bool(p.hashtags) and not p.problems for p in posts)
    return {"posts": len(posts), "complete": complete, "share": complete / len(posts) if posts else None}


def stage_metrics(photos: Sequence[Photo], posts: Sequence[Post], truth: Mapping[str, Any]) -> dict[str, Any]:
    """Every stage's metrics for the truth keys given, plus post completeness; flat numbers first per stage."""
    unknown = sorted(set(truth) - set(TRUTH_KEYS))
    if unknown:
        raise ValueError(f"truth file: unknown key(s) {', '.join(unknown)}; known: {', '.join(TRUTH_KEYS)}")
    out: dict[str, Any] = {}
    if "unreadable" in truth:
        out["ingest"] = ingest_scores(photos, truth["unreadable"])
    if "duplicates" in truth:
        out["dedupe"] = dedupe_scores(photos, truth["duplicates"])
    if "low_quality" in truth:
        out["quality"] = quality_scores(photos, truth["low_quality"])
    if "labels" in truth:
        labels = label_scores(photos, truth["labels"])
        out["labels"] = {**{f"{avg}_{m}": v for avg in ("micro", "macro") for m, v in labels[avg].items()},
                         "photos": labels["photos"], "per_label": labels["per_label"]}
    if "events" in truth:
        clusters = cluster_scores(photos, truth["events"])
        out["events"] = {**clusters["events"], "photos": clusters["photos"]}
        out["clusters"] = {**clusters["clusters"], "photos": clusters["photos"]}
    out["posts"] = post_completeness(posts)
    return out


def _pairs(groups: Iterable[Sequence[str]]) -> set[tuple[str, str]]:
    return {pair for g in groups for pair in combinations(sorted(set(g)), 2)}


def _mean(values: list[float | None]) -> float | None:
    defined = [v for v in values if v is not None]
    return sum(defined) / len(defined) if defined else None
