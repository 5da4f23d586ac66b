import pytest
from study_helpers import make_study


@pytest.fixture
def study(tmp_path):
    """A pairwise study of 6 items, raters alice and bob, every item shared."""
    made = make_study(tmp_path, pairwise=True)
    return made
