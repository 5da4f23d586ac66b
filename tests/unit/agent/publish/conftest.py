"""Fixtures of the publisher tests: a synthetic OUT_DIR and the fake Graph API serving its images."""

import pytest
from fake_graph import FakeGraph
from publish_helpers import TOKEN, make_out_dir


@pytest.fixture
def out_dir(tmp_path):
    """Three posts: a single image, a carousel of 3, a carousel of 2."""
    return make_out_dir(tmp_path / "out", [1, 3, 2])


@pytest.fixture
def fake(out_dir):
    with FakeGraph(TOKEN, out_dir / "posts") as graph:
        yield graph
