"""Ranking a sweep's runs: a run whose best score is not a number (a diverged run) is left unranked."""

from __future__ import annotations

import math

from captune.train.sweep import rank


def test_a_run_whose_best_score_is_nan_is_unranked_and_the_others_keep_their_order():
    for higher in (False, True):
        for order in (["a", "nan", "c"], ["nan", "a", "c"], ["a", "c", "nan"]):
            scores = {"a": 0.5, "c": 0.3, "nan": math.nan}
            rows = rank([{"name": n, "score": scores[n]} for n in order], higher_is_better=higher)
            ranked = [(r["name"], r.get("rank")) for r in rows]
            best, second = ("a", "c") if higher else ("c", "a")
            assert ranked == [(best, 1), (second, 2), ("nan", None)], (higher, order, ranked)


def test_tied_runs_keep_the_grid_order():
    rows = rank([{"name": n, "score": 1.0} for n in "xyz"], higher_is_better=False)
    assert [(r["name"], r["rank"]) for r in rows] == [("x", 1), ("y", 2), ("z", 3)]
