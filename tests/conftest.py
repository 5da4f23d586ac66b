"""Shared fixtures. Tests never download: models are built from configs, data is written here."""

from __future__ import annotations

import os
import shutil

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def missing_java() -> str | None:
    """Why ``java``-marked tests cannot run here (pycocoevalcap's jars need Java), or None."""
    if shutil.which("java") is None:
        return "no Java runtime on PATH: install one (apt-get install -y default-jre-headless)"
    return None


def missing_browser() -> str | None:
    """Why ``browser``-marked tests cannot run here (Debian's Chromium driven by playwright), or None."""
    if shutil.which("chromium") is None:
        return "no chromium on PATH: install Debian's Chromium (apt-get install -y chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed: pip install -e '.[test]'"
    return None


NEEDS = {"java": missing_java, "browser": missing_browser}


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """A ``java`` or ``browser`` test whose tool is missing is skipped, saying how to install it;
    under CI (``CAPTUNE_CI=1``, set by .ci/run) it fails instead, so a parity or browser check
    can never pass CI by not running. Runs before the test's fixtures are built."""
    for marker, missing in NEEDS.items():
        reason = missing() if marker in item.keywords else None
        if reason and os.environ.get("CAPTUNE_CI") == "1":
            pytest.fail(f"{reason} (CAPTUNE_CI=1: {marker} tests must run)", pytrace=False)
        if reason:
            pytest.skip(reason)


@pytest.fixture
def chromium() -> str:
    """The Chromium executable the browser tests launch (``chromium`` on PATH)."""
    return shutil.which("chromium")


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Point caches at a temporary folder so a test never reads or writes the user's."""
    home = tmp_path_factory.getbasetemp() / "captune-home"
    monkeypatch.setenv("CAPTUNE_HOME", str(home))
    monkeypatch.setenv("HF_HOME", str(home / "hf"))


COLOURS = {"red": (220, 30, 30), "green": (30, 180, 60), "blue": (40, 60, 220), "yellow": (235, 215, 40)}


def write_colour_records(root, n_per_colour: int = 3, size: int = 32):
    """Solid-colour squares on grey, captioned with their colour; returns the records file."""
    import numpy as np
    from PIL import Image

    from captune.data.records import CaptionRecord, write_records

    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    records = []
    for colour, rgb in COLOURS.items():
        for k in range(n_per_colour):
            arr = np.full((size, size, 3), 128, dtype=np.uint8)
            lo = int(rng.integers(2, size // 4))
            arr[lo:lo + size // 2, lo:lo + size // 2] = rgb
            name = f"{colour}_{k}.png"
            Image.fromarray(arr).save(root / name)
            records.append(CaptionRecord(name, name, [f"a {colour} square", f"a {colour} box on grey"],
                                         {"event": "colours", "labels": [colour]}))
    path = root / "records.jsonl"
    write_records(path, records)
    return path


@pytest.fixture
def colour_data(tmp_path):
    return write_colour_records(tmp_path / "colours")


@pytest.fixture(scope="session")
def colour_data_shared(tmp_path_factory):
    """The colour squares, written once per session (for module-scoped trained models)."""
    return write_colour_records(tmp_path_factory.mktemp("colours-shared"))


def pytest_collection_modifyitems(config, items):
    """``gpu`` tests run where CUDA is; elsewhere they are reported as skipped with the reason."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
