"""A sweep's comparisons with 95% intervals, and the findings stated from them.

    comparisons = compare_sweep(rows, keys, "out/runs", truth)
    for line in findings(comparisons): print(line)

For every swept key, runs that differ in that key alone are compared, value against value:

- the same posts (same ids, same photos: e.g. ``captioner.mode`` on identical clusters): per-post
  CLIPScore deltas, paired bootstrap interval and permutation p-value from
  ``captune.evaluate.resample`` (``MeanStat``, ``paired_test``), the posts resampled with
  replacement;
- different posts (e.g. ``cluster.max_images_per_post``): the difference of the mean CLIPScores,
  each run's posts resampled on their own (percentile interval, no p-value);
- ``categorize.threshold`` with a truth file: label micro-F1, paired over the photos.

``captioner.mode`` is also compared over all settings at once, each distinct post counted once
(``pooled``). A difference is significant when its interval excludes zero.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from captune.evaluate.resample import AdditiveStat, MeanStat, paired_test, resample_blocks

MODE = "captioner.mode"
LABEL_THRESHOLD = "categorize.threshold"
LABEL_INPUTS = ("embeddings.", "quality.", "dedupe.", "categorize.")
"""Keys that can change the labels: the label comparison holds these fixed and ignores the rest."""
LABELLED = ("ok", "posted", "beyond_selection")


def describe(values: Sequence[float], resamples: int = 1000, seed: int = 0) -> dict[str, Any]:
    """n, mean, median, min, max and the 95% bootstrap interval of the mean (None under 2 values)."""
    a = np.asarray(values, dtype=np.float64)
    if not len(a):
        return dict.fromkeys(("n", "mean", "median", "min", "max", "ci_low", "ci_high")) | {"n": 0}
    low, high = _mean_interval(a, resamples, seed)
    return {"n": len(a), "mean": _r4(a.mean()), "median": _r4(np.median(a)), "min": _r4(a.min()),
            "max": _r4(a.max()), "ci_low": _r4(low), "ci_high": _r4(high)}


def _r4(x: Any) -> float | None:
    return None if x is None else round(float(x), 4)


def _boot_means(a: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    return np.concatenate([counts @ a / len(a) for counts in resample_blocks(len(a), resamples, seed)])


def _mean_interval(a: np.ndarray, resamples: int, seed: int) -> tuple[float | None, float | None]:
    if len(a) < 2:
        return None, None
    low, high = np.percentile(_boot_means(a, resamples, seed), [2.5, 97.5])
    return float(low), float(high)


def compare_sweep(rows: Sequence[dict], keys: Sequence[str], runs_dir: str | Path, truth: dict | None = None,
                  resamples: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Every one-key comparison of the sweep (see the module), the pooled mode comparisons and the labels."""
    from captune.io import read_jsonl

    posts = {r["id"]: read_jsonl(Path(runs_dir) / r["id"] / "posts.jsonl") for r in rows}
    out: dict[str, Any] = {"resamples": resamples, "seed": seed, "clipscore": [], "pooled": [], "labels": []}
    for key in keys:
        for setting, a, b in one_key_pairs(rows, keys, key):
            out["clipscore"].append({"key": key, "a": a[key], "b": b[key], "setting": setting,
                                     **clipscore_delta(posts[a["id"]], posts[b["id"]], resamples, seed)})
    if MODE in keys:
        out["pooled"] = pooled_modes(rows, keys, posts, resamples, seed)
    if truth and "labels" in truth and LABEL_THRESHOLD in keys:
        out["labels"] = label_comparisons(rows, keys, Path(runs_dir), truth["labels"], resamples, seed)
    return out


def one_key_pairs(rows: Sequence[dict], keys: Sequence[str], key: str, fixed: Sequence[str] | None = None):
    """``(setting, row_a, row_b)`` for every two rows whose ``fixed`` keys (default: all others) agree
    and whose ``key`` differs, ``a``'s value first seen before ``b``'s in the sweep (grid order)."""
    others = [k for k in (keys if fixed is None else fixed) if k != key]
    order = {v: i for i, v in enumerate(dict.fromkeys(repr(r[key]) for r in rows))}
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(repr([r[k] for k in others]), []).append(r)
    for members in groups.values():
        first = {}
        for r in members:
            first.setdefault(repr(r[key]), r)
        distinct = sorted(first.values(), key=lambda r: order[repr(r[key])])
        for a, b in itertools.combinations(distinct, 2):
            yield {k: a[k] for k in others}, a, b


def clipscore_delta(posts_a: Sequence[dict], posts_b: Sequence[dict], resamples: int, seed: int) -> dict[str, Any]:
    """B - A in mean CLIPScore: paired over posts when both runs made the same posts, else unpaired."""
    a = {p["post_id"]: p for p in posts_a if p.get("clipscore") is not None}
    b = {p["post_id"]: p for p in posts_b if p.get("clipscore") is not None}
    same = set(a) == set(b) and all(a[i]["images"] == b[i]["images"] for i in a)
    if same and a:
        ids = sorted(a)
        return _paired([a[i]["clipscore"] for i in ids], [b[i]["clipscore"] for i in ids], resamples, seed)
    return _unpaired([p["clipscore"] for p in a.values()], [p["clipscore"] for p in b.values()], resamples, seed)


def _paired(va: Sequence[float], vb: Sequence[float], resamples: int, seed: int) -> dict[str, Any]:
    r = paired_test([MeanStat("clipscore", va, vb)], len(va), resamples, seed)["clipscore"]
    return _result(True, len(va), len(vb), r.a, r.b, r.ci_low, r.ci_high, r.p_value)


def _unpaired(va: Sequence[float], vb: Sequence[float], resamples: int, seed: int) -> dict[str, Any]:
    a, b = np.asarray(va, float), np.asarray(vb, float)
    if len(a) < 2 or len(b) < 2:
        return _result(False, len(a), len(b), _mean(a), _mean(b), None, None, None)
    diff = _boot_means(b, resamples, seed + 1) - _boot_means(a, resamples, seed)
    low, high = np.percentile(diff, [2.5, 97.5])
    return _result(False, len(a), len(b), a.mean(), b.mean(), low, high, None)


def _mean(a: np.ndarray) -> float | None:
    return float(a.mean()) if len(a) else None


def _result(paired, n_a, n_b, mean_a, mean_b, low, high, p) -> dict[str, Any]:
    delta = None if mean_a is None or mean_b is None else mean_b - mean_a
    return {"paired": paired, "n_a": n_a, "n_b": n_b, "mean_a": _r4(mean_a), "mean_b": _r4(mean_b),
            "delta": _r4(delta), "ci_low": _r4(low), "ci_high": _r4(high), "p_value": _r4(p),
            "significant": None if low is None else bool(low > 0 or high < 0)}


def pooled_modes(rows: Sequence[dict], keys: Sequence[str], posts: dict[str, list[dict]], resamples: int,
                 seed: int) -> list[dict[str, Any]]:
    """Mode against mode over every setting at once: each distinct (photos, caption A, caption B) once."""
    pairs: dict[tuple, dict[tuple, tuple[float, float]]] = {}
    for _, a, b in one_key_pairs(rows, keys, MODE):
        pa = {p["post_id"]: p for p in posts[a["id"]] if p.get("clipscore") is not None}
        pb = {p["post_id"]: p for p in posts[b["id"]] if p.get("clipscore") is not None}
        for i in sorted(pa.keys() & pb.keys()):  # a set's order follows the hash seed; the draws must not
            if pa[i]["images"] == pb[i]["images"]:
                unit = (tuple(pa[i]["images"]), pa[i]["caption"], pb[i]["caption"])
                pairs.setdefault((a[MODE], b[MODE]), {})[unit] = (pa[i]["clipscore"], pb[i]["clipscore"])
    out = []
    for (ma, mb), units in pairs.items():
        va, vb = zip(*units.values())
        out.append({"key": MODE, "a": ma, "b": mb, "setting": "all", **_paired(va, vb, resamples, seed)})
    return out


def label_comparisons(rows: Sequence[dict], keys: Sequence[str], runs_dir: Path, truth_labels: dict,
                      resamples: int, seed: int) -> list[dict[str, Any]]:
    """Label micro-F1 between ``categorize.threshold`` values, paired over the photos both runs labelled."""
    from captune.io import read_jsonl

    fixed = [k for k in keys if k.startswith(LABEL_INPUTS)]
    out, seen = [], set()
    for setting, a, b in one_key_pairs(rows, keys, LABEL_THRESHOLD, fixed):
        if (repr(setting), a[LABEL_THRESHOLD], b[LABEL_THRESHOLD]) in seen:
            continue  # the same labels again under another cluster or caption setting
        seen.add((repr(setting), a[LABEL_THRESHOLD], b[LABEL_THRESHOLD]))
        la = _label_rows(read_jsonl(runs_dir / a["id"] / "stages" / "labels.jsonl"), truth_labels)
        lb = _label_rows(read_jsonl(runs_dir / b["id"] / "stages" / "labels.jsonl"), truth_labels)
        ids = sorted(la.keys() & lb.keys())
        stat = AdditiveStat(("label_micro_f1",), [la[i] for i in ids], [lb[i] for i in ids], _f1)
        r = paired_test([stat], len(ids), resamples, seed)["label_micro_f1"]
        out.append({"key": LABEL_THRESHOLD, "a": a[LABEL_THRESHOLD], "b": b[LABEL_THRESHOLD], "setting": setting,
                    "metric": "label micro-F1", **_result(True, len(ids), len(ids), r.a, r.b, r.ci_low, r.ci_high,
                                                         r.p_value)})
    return out


def _label_rows(photos: Sequence[dict], truth_labels: dict) -> dict[str, tuple[int, int, int]]:
    """Per photo: labels right, labels given, labels in the truth (micro-F1's sufficient statistics)."""
    out = {}
    for p in photos:
        if p["status"] in LABELLED and p["id"] in truth_labels:
            given, true = {name for name, _ in p["labels"]}, set(truth_labels[p["id"]])
            out[p["id"]] = (len(given & true), len(given), len(true))
    return out


def _f1(sums: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return (2 * sums[..., 0] / (sums[..., 1] + sums[..., 2]))[..., None]


# ---- findings ----------------------------------------------------------------------------------
def findings(comparisons: dict[str, Any], rows: Sequence[dict]) -> list[tuple[str, list[str]]]:
    """The sweep's findings as (topic, sentences): a difference is stated as real only when its 95%
    interval excludes zero; otherwise the sentence says it is not significant."""
    out = []
    if comparisons["pooled"]:
        out.append(("Captioner mode", _mode_findings(comparisons, rows)))
    for key in dict.fromkeys(c["key"] for c in comparisons["clipscore"] if c["key"] != MODE):
        out.append((key, [_tally(key, a, b, mode, cs) for (a, b, mode), cs in _by_pair(comparisons, key).items()]))
    if comparisons["labels"]:
        out.append(("Labels", [_label_sentence(c) for c in comparisons["labels"]]))
    out.append(("What to use", _advice(comparisons) + [_caveat(comparisons)]))
    return out


def _interval(c: dict) -> str:
    return f"95% interval {c['ci_low']:+.3f} to {c['ci_high']:+.3f}"


def _mode_findings(comparisons: dict, rows: Sequence[dict]) -> list[str]:
    lines = []
    for c in comparisons["pooled"]:
        a, b = c["a"], c["b"]
        if c["significant"]:
            word = "higher" if c["delta"] > 0 else "lower"
            lines.append(f"{b} captions score {word} than {a} captions: mean CLIPScore {c['mean_b']:.3f} against "
                         f"{c['mean_a']:.3f}, difference {c['delta']:+.3f} ({_interval(c)}, {c['n_a']} distinct "
                         f"posts, paired).")
        elif _identical(c):
            lines.append(f"{b} against {a}: the same CLIPScore on every one of {c['n_a']} distinct posts "
                         "(the same captions): no difference.")
        else:
            lines.append(f"{b} against {a}: not significant; the difference {c['delta']:+.3f} has a "
                         f"{_interval(c)}, which includes zero ({c['n_a']} distinct posts, paired).")
        per = [x for x in comparisons["clipscore"] if x["key"] == MODE and (x["a"], x["b"]) == (a, b)]
        up, down, flat = _counts(per)
        lines.append(f"Setting by setting ({b} against {a}): higher in {up} of {len(per)}, lower in {down}, "
                     f"not significant in {flat}.")
    rates = [r["fallback_rate"] for r in rows if r.get("fallback_rate") is not None]
    if rates:
        lines.append(f"hybrid used the template instead of the model for {np.mean(rates):.0%} of its posts "
                     f"(from {min(rates):.0%} to {max(rates):.0%} per run).")
    return lines


def _counts(cs: Sequence[dict]) -> tuple[int, int, int]:
    up = sum(bool(c["significant"]) and c["delta"] > 0 for c in cs)
    down = sum(bool(c["significant"]) and c["delta"] < 0 for c in cs)
    return up, down, len(cs) - up - down


def _by_pair(comparisons: dict, key: str) -> dict[tuple, list[dict]]:
    out: dict[tuple, list[dict]] = {}
    for c in comparisons["clipscore"]:
        if c["key"] == key:
            out.setdefault((c["a"], c["b"], c["setting"].get(MODE)), []).append(c)
    return out


def _identical(c: dict) -> bool:
    return c["paired"] and c["delta"] == c["ci_low"] == c["ci_high"] == 0


def _settings(n: int) -> str:
    return "the one setting" if n == 1 else f"all {n} settings" if n == 2 else f"any of {n} settings"


def _tally(key: str, a: Any, b: Any, mode: str | None, cs: list[dict]) -> str:
    head = f"{key} {a} → {b}" + (f" ({mode} captions)" if mode else "") + ": CLIPScore"
    up, down, flat = _counts(cs)
    if all(_identical(c) for c in cs):
        return f"{head} the same in {_settings(len(cs)).replace('any of', 'all')}: the posts did not change."
    if not up and not down:
        deltas = [c["delta"] for c in cs if c["delta"] is not None]
        if len(cs) == 1 and cs[0]["ci_low"] is not None:
            spread = f" (difference {cs[0]['delta']:+.3f}, {_interval(cs[0])})"
        else:
            spread = f" (differences {min(deltas):+.3f} to {max(deltas):+.3f})" if deltas else ""
        return f"{head} not significantly different in {_settings(len(cs))}{spread}."
    best = max((c for c in cs if c["significant"]), key=lambda c: abs(c["delta"]))
    where = ", ".join(f"{k}={v}" for k, v in best["setting"].items() if k != MODE) or "the one setting"
    return (f"{head} higher in {up} of {len(cs)} settings, lower in {down}, not significant in {flat}; "
            f"the largest: {best['delta']:+.3f} ({_interval(best)}) at {where}.")


def _label_sentence(c: dict) -> str:
    head = f"categorize.threshold {c['a']} → {c['b']}: label micro-F1 {c['mean_a']:.3f} → {c['mean_b']:.3f}"
    if c["significant"]:
        return f"{head}, {'higher' if c['delta'] > 0 else 'lower'} ({_interval(c)}, {c['n_a']} photos, paired)."
    return f"{head}: not significant ({_interval(c)} includes zero, {c['n_a']} photos, paired)."


def _advice(comparisons: dict) -> list[str]:
    lines = []
    if comparisons["pooled"]:
        lines.append(_key_advice(MODE, comparisons["pooled"], "over all posts"))
    for key in dict.fromkeys(c["key"] for c in comparisons["clipscore"] if c["key"] != MODE):
        lines.append(_key_advice(key, [c for c in comparisons["clipscore"] if c["key"] == key], "setting by setting"))
    return lines


def _key_advice(key: str, cs: list[dict], scope: str) -> str:
    """The values never significantly below another and significantly above one at least once."""
    values = {repr(v): v for c in cs for v in (c["a"], c["b"])}
    won = dict.fromkeys(values, 0)
    lost = dict.fromkeys(values, 0)
    for c in cs:
        if c["significant"]:
            winner, loser = (c["b"], c["a"]) if c["delta"] > 0 else (c["a"], c["b"])
            won[repr(winner)] += 1
            lost[repr(loser)] += 1
    top = [v for v in values if won[v] and not lost[v]]
    if not any(won.values()):
        return (f"{key}: no value changes CLIPScore significantly ({scope}, {len(cs)} comparisons); "
                "choose it for other reasons (cost, post size, silhouette, the stage metrics).")
    if not top:
        return (f"{key}: no value gives a significantly higher CLIPScore ({scope}) without also giving a lower "
                "one elsewhere; choose it for other reasons (cost, post size, silhouette).")
    names = " or ".join(f"{key}={values[v]}" for v in top)
    beaten = [values[v] for v in values if lost[v]]
    tail = f"; the data do not separate {' and '.join(str(values[v]) for v in top)}" if len(top) > 1 else ""
    return (f"{names}: significantly higher CLIPScore than {', '.join(map(str, beaten))} "
            f"({scope}: {sum(won[v] for v in top)} of {len(cs)} comparisons), lower in none{tail}.")


def _caveat(comparisons: dict) -> str:
    n = len(comparisons["clipscore"]) + len(comparisons["pooled"]) + len(comparisons["labels"])
    return (f"{n} intervals were computed; at 95% each excludes zero by chance alone 1 time in 20 (about "
            f"{n / 20:.1f} expected here), so one significant setting among many is weak evidence; the pooled "
            "comparisons and differences that repeat across settings are the ones to rely on.")
