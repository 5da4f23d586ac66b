"""Agreement between raters and rankings of systems, as plain functions over exported ratings.

- ``krippendorff_alpha``: 1 - D_o / D_e over the coincidence matrix (Krippendorff 2011); units
  with fewer than two ratings are dropped; nominal, ordinal or interval distances.
- ``fleiss_kappa``: for a table of items x categories with the same number of raters per item.
- ``percent_agreement``: the share of agreeing rater pairs, averaged over units (shown beside
  alpha: alpha is 0 or undefined when raters almost always give one value, though they agree).
- ``bradley_terry``: P(i beats j) = sigmoid(theta_i - theta_j), maximum likelihood with ties as
  half wins (Newton's method); a small ridge is added only when the wins graph is not strongly
  connected (then no maximum exists), and the result says so.
- ``summarize``: the admin page's and the report's figures from exported rows.

Written here rather than taken from ``krippendorff``, ``statsmodels`` or ``choix`` so the core
needs none of them (each is a few lines); tests/unit/review/test_agreement.py checks every one
against those packages and published values.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

RIDGE = 0.1
"""Ridge on the strengths when some system never wins (or never loses) against the rest."""
MAX_STEP = 2.0


def _coincidences(units: Iterable[Sequence[float]]) -> tuple[np.ndarray, np.ndarray]:
    """The values seen and the coincidence matrix o[c, k] over units with two or more ratings."""
    pairable = [list(u) for u in units if len(u) >= 2]
    values = np.array(sorted({v for u in pairable for v in u}), dtype=float)
    index = {v: k for k, v in enumerate(values)}
    o = np.zeros((len(values), len(values)))
    for u in pairable:
        counts = np.zeros(len(values))
        for v in u:
            counts[index[v]] += 1
        o += (np.outer(counts, counts) - np.diag(counts)) / (len(u) - 1)
    return values, o


def _distances(values: np.ndarray, n_c: np.ndarray, level: str) -> np.ndarray:
    if level == "nominal":
        return 1.0 - np.eye(len(values))
    if level == "interval":
        return (values[:, None] - values[None, :]) ** 2
    if level == "ordinal":
        cum = np.concatenate([[0.0], np.cumsum(n_c)])
        lo, hi = np.minimum.outer(np.arange(len(values)), np.arange(len(values))), np.maximum.outer(
            np.arange(len(values)), np.arange(len(values)))
        between = cum[hi + 1] - cum[lo]  # sum of n_g for g from c to k
        return (between - (n_c[lo] + n_c[hi]) / 2) ** 2
    raise ValueError(f"level {level!r}: nominal, ordinal or interval")


def krippendorff_alpha(units: Iterable[Sequence[float]], level: str = "ordinal") -> float | None:
    """Alpha over ``units`` (each the list of ratings one unit got); None when fewer than two
    values occur in pairable units (alpha is undefined then)."""
    values, o = _coincidences(units)
    if len(values) < 2:
        return None
    n_c = o.sum(axis=1)
    n = n_c.sum()
    delta = _distances(values, n_c, level)
    d_e = (np.outer(n_c, n_c) * delta).sum() / (n - 1)
    return float(1.0 - (o * delta).sum() / d_e)


def fleiss_kappa(table: np.ndarray) -> float | None:
    """Kappa of an items x categories count table (every row sums to the same number of raters >= 2)."""
    table = np.asarray(table, dtype=float)
    m = table.sum(axis=1)
    if len(table) == 0 or m[0] < 2 or not np.all(m == m[0]):
        return None
    n = m[0]
    p_item = ((table**2).sum(axis=1) - n) / (n * (n - 1))
    p_cat = table.sum(axis=0) / table.sum()
    p_e = float((p_cat**2).sum())
    return None if p_e == 1.0 else float((p_item.mean() - p_e) / (1 - p_e))


def percent_agreement(units: Iterable[Sequence[float]]) -> float | None:
    """The share of rater pairs who gave the same value, averaged over units with two or more ratings."""
    shares = []
    for u in units:
        if len(u) >= 2:
            counts = np.unique(np.asarray(u), return_counts=True)[1]
            shares.append(float((counts * (counts - 1)).sum() / (len(u) * (len(u) - 1))))
    return float(np.mean(shares)) if shares else None


def _wins_matrix(comparisons: Iterable[tuple[str, str, float]], systems: Sequence[str]) -> np.ndarray:
    """w[i, j] = how often system i beat system j (a tie counts half to each)."""
    index = {s: k for k, s in enumerate(systems)}
    w = np.zeros((len(systems), len(systems)))
    for winner, loser, weight in comparisons:
        w[index[winner], index[loser]] += weight
    return w


def _strongly_connected(w: np.ndarray) -> bool:
    from scipy.sparse.csgraph import connected_components

    return connected_components(w > 0, directed=True, connection="strong")[0] == 1


def fit_bradley_terry(w: np.ndarray) -> tuple[np.ndarray, bool]:
    """Strengths (mean 0) from a wins matrix, and whether the ridge was needed."""
    k = len(w)
    ridge = 0.0 if _strongly_connected(w) else RIDGE
    theta = np.zeros(k)
    n = w + w.T
    for _ in range(200):
        p = 1.0 / (1.0 + np.exp(-(theta[:, None] - theta[None, :])))  # p[i, j] = P(i beats j)
        grad = (w - n * p).sum(axis=1) - ridge * theta
        hess = n * p * p.T
        hess = hess - np.diag(hess.sum(axis=1)) - ridge * np.eye(k)
        if ridge:
            step = np.linalg.solve(hess, -grad)
        else:  # theta is defined up to a shift: solve with the last one fixed, centre at the end
            step = np.append(np.linalg.solve(hess[:-1, :-1], -grad[:-1]), 0.0)
        step *= min(1.0, MAX_STEP / max(np.abs(step).max(), 1e-300))  # damped: the log-likelihood is flat far out
        theta = theta + step
        if np.abs(step).max() < 1e-12:
            break
    return theta - theta.mean(), ridge > 0


def bradley_terry(comparisons: Sequence[tuple[str, str, float]], systems: Sequence[str],
                  groups: Sequence[int] | None = None, resamples: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Strengths per system with percentile intervals from resampling ``groups`` (one id per
    comparison, e.g. the judgement it came from) with replacement."""
    w = _wins_matrix(comparisons, systems)
    theta, regularised = fit_bradley_terry(w)
    groups = list(range(len(comparisons))) if groups is None else list(groups)
    by_group: dict[int, list[int]] = defaultdict(list)
    for k, g in enumerate(groups):
        by_group[g].append(k)
    keys = list(by_group)
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(resamples):
        picked = [comparisons[k] for g in rng.integers(0, len(keys), len(keys)) for k in by_group[keys[g]]]
        draws.append(fit_bradley_terry(_wins_matrix(picked, systems))[0])
    low, high = np.percentile(np.array(draws), [2.5, 97.5], axis=0) if draws else (theta, theta)
    order = np.argsort(-theta, kind="stable")
    return {"strength": {systems[k]: float(theta[k]) for k in order},
            "ci": {systems[k]: [float(low[k]), float(high[k])] for k in order},
            "comparisons": float(w.sum()), "judgements": len(keys), "regularised": regularised,
            "ridge": RIDGE if regularised else 0.0}


def mean_interval(values: Sequence[float], resamples: int, seed: int) -> tuple[float, float, float]:
    """Mean and 95% percentile-bootstrap interval."""
    v = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, len(v), (resamples, len(v)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(v.mean()), float(low), float(high)


def summarize(rows: Sequence[dict[str, Any]], resamples: int = 1000, seed: int = 0,
              systems: Sequence[str] = (), criteria: Sequence[str] = ()) -> dict[str, Any]:
    """From exported rows: ratings count, per-system means, agreement per criterion, Bradley-Terry.
    ``systems`` and ``criteria`` give the order (others found in ``rows`` follow)."""
    systems = list(dict.fromkeys([*systems, *(r["system"] for r in rows)]))
    criteria = list(dict.fromkeys([*criteria, *(r["criterion"] for r in rows)]))
    judged = {(r["rater"], r["item_id"]): r["preferred"] for r in rows}
    return {"ratings": len(judged), "raters": len({r["rater"] for r in rows}),
            "items": len({r["item_id"] for r in rows}), "systems": systems, "criteria": criteria,
            "per_system": _per_system(rows, systems, criteria, resamples, seed),
            "agreement": {c: _agreement([r for r in rows if r["criterion"] == c]) for c in criteria},
            "bradley_terry": _preferences(rows, judged, systems, resamples, seed)}


def _per_system(rows, systems, criteria, resamples: int, seed: int) -> dict[str, dict[str, Any]]:
    scores: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        scores[r["system"], r["criterion"]][r["item_id"]].append(float(r["score"]))
    out: dict[str, dict[str, Any]] = {}
    for s in systems:
        for c in criteria:
            per_item = [float(np.mean(v)) for v in scores[s, c].values()]
            if per_item:
                mean, low, high = mean_interval(per_item, resamples, seed)
                out.setdefault(s, {})[c] = {"mean": mean, "ci_low": low, "ci_high": high, "items": len(per_item),
                                            "ratings": sum(len(v) for v in scores[s, c].values())}
    return out


def _agreement(rows) -> dict[str, Any]:
    units: dict[tuple[str, str], list[float]] = defaultdict(list)
    for r in rows:
        units[r["item_id"], r["system"]].append(float(r["score"]))
    values = list(units.values())
    table = np.array([[u.count(float(s)) for s in range(1, 6)] for u in values])
    return {"krippendorff_alpha": krippendorff_alpha(values, "ordinal"), "percent_agreement": percent_agreement(values),
            "fleiss_kappa": fleiss_kappa(table) if values else None,
            "units": sum(len(u) >= 2 for u in values)}


def _preferences(rows, judged, systems, resamples: int, seed: int) -> dict[str, Any] | None:
    """Each preference beats every other system on the item; a tie is half a win each way."""
    shown: dict[str, list[str]] = defaultdict(list)
    for r in rows:
        if r["system"] not in shown[r["item_id"]]:
            shown[r["item_id"]].append(r["system"])
    comparisons, groups = [], []
    for g, ((_, item), preferred) in enumerate(judged.items()):
        if preferred is None:
            continue
        on_item = shown[item]
        pairs = ([(preferred, s, 1.0) for s in on_item if s != preferred] if preferred != "tie" else
                 [(a, b, 0.5) for a in on_item for b in on_item if a != b])
        comparisons += pairs
        groups += [g] * len(pairs)
    if not comparisons:
        return None
    return bradley_terry(comparisons, systems, groups, resamples, seed)
