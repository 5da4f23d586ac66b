"""Helpers for the metric tests: pycocoevalcap as the oracle. ``java`` tests skip or fail where Java
is missing (tests/conftest.py)."""

from __future__ import annotations


def coco_dicts(predictions, references):
    """``(gts, res)`` in pycocoevalcap's input shape, image ids 0..N-1."""
    gts = {i: list(r) for i, r in enumerate(references)}
    res = {i: [p] for i, p in enumerate(predictions)}
    return gts, res
