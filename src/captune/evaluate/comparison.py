"""Compare evaluations of the same images: deltas, 95% intervals and paired p-values.

    captune compare runs/x/eval/base runs/x/eval/finetuned [--resamples 1000] [--seed 0] [--json]

Each folder is one written by ``captune evaluate`` (``eval.json``). Every folder after the first
is compared with the first (A = first, B = the other). One row per metric: A, B, B - A, the
relative change in percent, the 95% bootstrap interval of B - A and a paired p-value
(``captune.evaluate.resample``: images resampled with replacement, the same resample for A and
B; BLEU and CIDEr-D recomputed from sufficient statistics on each resample; the p-value from a
paired permutation test of the same statistic). Metrics with per-image values (ROUGE-L,
METEOR, CLIPScore, BERTScore, ...) are compared as means over images; corpus-only metrics
(diversity) get A, B and the deltas without an interval. Where the evaluation's corpus value is
not the mean of its per-image values (METEOR: the jar aggregates its statistics over the whole
set), the row shows the per-image means, carries the flag ``per_image_mean`` and keeps the
corpus values under ``corpus``.

The relative change is left out (``rel_delta: null``, flag ``near_zero_baseline``) when |A| is
below ``near_zero`` (default 0.01): a change from 0.002 to 0.09 is not "+4400%" in any useful
sense.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from captune.errors import CaptuneError, DataError
from captune.evaluate.resample import BleuStat, CiderStat, MeanStat, paired_test
from captune.metrics.bleu import OUTPUTS as BLEU_OUTPUTS
from captune.metrics.ptb import tokenize
from captune.metrics.resources import MetricResources

BLEU = BLEU_OUTPUTS
LOWER_IS_BETTER = {"self_bleu", "perplexity"}
# Properties of the whole set of captions: their per-caption parts (self-BLEU of one caption
# against the others) do not resample as means.
CORPUS_ONLY = {"distinct_1", "distinct_2", "self_bleu", "vocab_size"}
NO_DIRECTION = {"mean_length"}
INTERVAL = "{:.0%} percentile bootstrap interval of B - A, images resampled with replacement (paired)"
TEST = "paired permutation test (captions of A and B swapped per image at random), two-sided"


def load_eval(directory: str | os.PathLike) -> dict[str, Any]:
    from captune.evaluate.evaluation import EVAL_FILE
    from captune.io import read_json

    path = Path(directory) / EVAL_FILE
    if not path.exists():
        raise CaptuneError(
            f"{directory}: no {EVAL_FILE}; write one with `captune evaluate ... --out {directory}`"
        )
    ev = read_json(path)
    ev["dir"], ev["name"] = str(directory), Path(directory).resolve().name
    return ev


def compare(
    dirs: Sequence[str | os.PathLike],
    resamples: int = 1000,
    seed: int = 0,
    metrics: Sequence[str] | None = None,
    near_zero: float = 0.01,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """Compare every evaluation folder with the first; one comparison for two folders, else a list."""
    if len(dirs) < 2:
        raise CaptuneError("compare needs at least two evaluation folders (A, then B ...)")
    evals = [load_eval(d) for d in dirs]
    pairs = [compare_evals(evals[0], ev, resamples, seed, metrics, near_zero, confidence) for ev in evals[1:]]
    return pairs[0] if len(pairs) == 1 else {"baseline": str(dirs[0]), "comparisons": pairs}


def compare_evals(
    a: dict,
    b: dict,
    resamples: int = 1000,
    seed: int = 0,
    metrics: Sequence[str] | None = None,
    near_zero: float = 0.01,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """The comparison of two loaded ``eval.json`` objects (B against A)."""
    rows_a, rows_b = _aligned(a, b)
    names = _shared_metrics(a, b, metrics)
    stats, corpus_only = _statistics(names, rows_a, rows_b)
    tested = paired_test(stats, len(rows_a), resamples, seed, confidence) if stats else {}
    table = {}
    for name in names:
        if name in tested:
            r = tested[name]
            table[name] = _row(name, r.a, r.b, near_zero, r.ci_low, r.ci_high, r.p_value, confidence)
            if _differs(r.a, a["metrics"][name]) or _differs(r.b, b["metrics"][name]):
                # e.g. METEOR: the jar aggregates its corpus value; the test is on the per-image mean
                table[name]["flags"].append("per_image_mean")
                table[name]["corpus"] = {"a": a["metrics"][name], "b": b["metrics"][name]}
        elif name in corpus_only:
            table[name] = _row(name, a["metrics"][name], b["metrics"][name], near_zero)
    return {
        "a": _side(a),
        "b": _side(b),
        "images": len(rows_a),
        "resamples": resamples,
        "seed": seed,
        "confidence": confidence,
        "interval": INTERVAL.format(confidence),
        "test": TEST,
        "metrics": table,
        "per_image_mean": [m for m, r in table.items() if "per_image_mean" in r["flags"]],
    }


def _differs(x: float, y: float) -> bool:
    return abs(x - y) > 1e-9 * max(1.0, abs(y))


def _side(ev: dict) -> dict[str, Any]:
    return {"dir": ev["dir"], "name": ev["name"], "model": ev.get("model", {})}


def _aligned(a: dict, b: dict) -> tuple[list[dict], list[dict]]:
    """A's rows and B's rows of the same images in A's order; the images and each image's
    references must be the same (BLEU and CIDEr-D of both sides are computed with A's)."""
    ia, ib = _by_id(a), _by_id(b)
    only_a, only_b = [i for i in ia if i not in ib], [i for i in ib if i not in ia]
    if only_a or only_b:
        parts = [
            f"{len(only_a)} images only in {a['dir']} ({_some(only_a)})" if only_a else "",
            f"{len(only_b)} images only in {b['dir']} ({_some(only_b)})" if only_b else "",
        ]
        raise DataError(
            "the evaluations cover different images: "
            + "; ".join(p for p in parts if p)
            + "; evaluate both on the same records file"
        )
    other = [i for i in ia if sorted(ia[i]["references"]) != sorted(ib[i]["references"])]
    if other:
        raise DataError(
            f"{len(other)} images have other references in {b['name']} than in {a['name']} "
            f"({_some(other)}; {b['dir']}, {a['dir']}); evaluate both on the same records file"
        )
    return list(ia.values()), [ib[i] for i in ia]


def _by_id(ev: dict) -> dict[str, dict]:
    rows: dict[str, dict] = {}
    for r in ev["per_image"]:
        if r["image_id"] in rows:
            raise DataError(
                f"{ev['name']} lists image {r['image_id']} twice ({ev['dir']}/eval.json, per_image); "
                "evaluate it again on a records file with one record per image"
            )
        rows[r["image_id"]] = r
    return rows


def _some(ids: list[str], k: int = 5) -> str:
    return ", ".join(ids[:k]) + (f" and {len(ids) - k} more" if len(ids) > k else "")


def _shared_metrics(a: dict, b: dict, wanted: Sequence[str] | None) -> list[str]:
    both = [m for m, v in a["metrics"].items() if v is not None and b["metrics"].get(m) is not None]
    if wanted is None:
        return both
    unknown = [m for m in wanted if m not in both]
    if unknown:
        raise CaptuneError(
            f"metrics {', '.join(unknown)} are not in both evaluations (shared: {', '.join(both)})"
        )
    return list(wanted)


def _statistics(names: list[str], rows_a: list[dict], rows_b: list[dict]) -> tuple[list, set[str]]:
    stats: list = []
    bleu = [m for m in BLEU if m in names]
    if bleu or "cider" in names:
        with MetricResources() as res:  # one tokenizer and one n-gram count per side for both metrics
            stats += _corpus_statistics(bleu, "cider" in names, rows_a, rows_b, res)
    corpus_only = set()
    for m in names:
        if m in BLEU or m == "cider":
            continue
        per_image = any(m in r["scores"] for r in rows_a) and any(m in r["scores"] for r in rows_b)
        if per_image and m not in CORPUS_ONLY:
            stats.append(
                MeanStat(m, [r["scores"].get(m) for r in rows_a], [r["scores"].get(m) for r in rows_b])
            )
        else:
            corpus_only.add(m)
    return stats, corpus_only


def _corpus_statistics(bleu: list[str], cider: bool, rows_a: list[dict], rows_b: list[dict], res) -> list:
    """BLEU and CIDEr-D statistics from PTB-tokenized captions: one list per side, in evaluation
    order, as COCO evaluation tokenizes (the lexer can look across caption boundaries)."""
    flat = tokenize([c for r in rows_a for c in r["references"]], resources=res)
    ends = list(itertools.accumulate(len(r["references"]) for r in rows_a))
    refs = [flat[end - len(r["references"]) : end] for r, end in zip(rows_a, ends)]
    preds_a = tokenize([r["caption"] for r in rows_a], resources=res)
    preds_b = tokenize([r["caption"] for r in rows_b], resources=res)
    stats: list = [_Subset(BleuStat(preds_a, preds_b, refs, resources=res), bleu)] if bleu else []
    return stats + ([CiderStat(preds_a, preds_b, refs, resources=res)] if cider else [])


class _Subset:
    """Only some outputs of a statistic (e.g. BLEU-4 without BLEU-1..3)."""

    def __init__(self, stat, names: list[str]):
        self.stat, self.names = stat, tuple(names)
        self.cols = [stat.names.index(n) for n in names]

    def bootstrap(self, counts):
        a, b = self.stat.bootstrap(counts)
        return a[:, self.cols], b[:, self.cols]

    def permute(self, swap):
        a, b = self.stat.permute(swap)
        return a[:, self.cols], b[:, self.cols]


def _row(
    name: str,
    a: float,
    b: float,
    near_zero: float,
    low: float | None = None,
    high: float | None = None,
    p: float | None = None,
    confidence: float = 0.95,
) -> dict[str, Any]:
    delta = b - a
    flags = []
    if abs(a) < near_zero:
        rel = None
        flags.append("near_zero_baseline")
    else:
        rel = delta / abs(a) * 100
    if low is None:
        flags.append("no_interval")
    significant = None if p is None else bool(p < 1 - confidence and (low > 0 or high < 0))
    direction = "lower" if name in LOWER_IS_BETTER else None if name in NO_DIRECTION else "higher"
    return {
        "a": a,
        "b": b,
        "delta": delta,
        "rel_delta": rel,
        "ci_low": low,
        "ci_high": high,
        "p_value": p,
        "significant": significant,
        "better": direction,
        "flags": flags,
    }
