"""A small shapes world, generated once per test session."""

from __future__ import annotations

import pytest

from captune.demo.world import generate


@pytest.fixture(scope="session")
def world(tmp_path_factory):
    """240 images in six events: enough for every theme's near-duplicates to show up."""
    return generate(tmp_path_factory.mktemp("world"), n_images=240, seed=3, style="both")
