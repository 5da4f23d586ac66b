"""Fixtures for the metric tests: pycocoevalcap as the oracle, Java detection."""

from __future__ import annotations

import shutil

import pytest


def pytest_collection_modifyitems(items):
    """Tests marked ``java`` are skipped where no Java runtime is installed (CI machines have one)."""
    if shutil.which("java") is None:
        skip = pytest.mark.skip(reason="no Java runtime on PATH")
        for item in items:
            if "java" in item.keywords:
                item.add_marker(skip)


def coco_dicts(predictions, references):
    """``(gts, res)`` in pycocoevalcap's input shape, image ids 0..N-1."""
    gts = {i: list(r) for i, r in enumerate(references)}
    res = {i: [p] for i, p in enumerate(predictions)}
    return gts, res
