"""Shared fixtures. Tests never download: models are built from configs, data is written here."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Point caches at a temporary folder so a test never reads or writes the user's."""
    home = tmp_path_factory.getbasetemp() / "captune-home"
    monkeypatch.setenv("CAPTUNE_HOME", str(home))
    monkeypatch.setenv("HF_HOME", str(home / "hf"))
