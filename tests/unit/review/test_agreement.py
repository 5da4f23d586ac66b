"""Agreement and rankings against reference implementations (``krippendorff``, statsmodels) and
published values."""

import math

import numpy as np
import pytest

from captune.review.agreement import (
    bradley_terry,
    fit_bradley_terry,
    fleiss_kappa,
    krippendorff_alpha,
    percent_agreement,
    summarize,
)

nan = np.nan
# Krippendorff (2011), "Computing Krippendorff's alpha-reliability": 4 observers x 12 units
RELIABILITY_2011 = [[1, 2, 3, 3, 2, 1, 4, 1, 2, nan, nan, nan],
                    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, nan, 3],
                    [nan, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, nan],
                    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, nan]]
# Wikipedia's "Krippendorff's alpha" example: 3 raters x 15 units
WIKIPEDIA = [[nan, nan, nan, nan, nan, 3, 4, 1, 2, 1, 1, 3, 3, nan, 3],
             [1, nan, 2, 1, 3, 3, 4, 3, nan, nan, nan, nan, nan, nan, nan],
             [nan, nan, 2, 1, 3, 4, 4, nan, 2, 1, 1, 3, 3, nan, 4]]
# Wikipedia's "Fleiss' kappa" worked example: 10 subjects, 14 raters, 5 categories
FLEISS_WIKIPEDIA = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
                    [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]


def units_of(matrix):
    """raters x units with NaN for missing -> one list of ratings per unit."""
    return [[v for v in col if not np.isnan(v)] for col in np.array(matrix, dtype=float).T]


def test_alpha_matches_published_values():
    assert krippendorff_alpha(units_of(RELIABILITY_2011), "ordinal") == pytest.approx(0.815, abs=5e-4)
    assert krippendorff_alpha(units_of(WIKIPEDIA), "nominal") == pytest.approx(0.691358, abs=1e-6)
    assert krippendorff_alpha(units_of(WIKIPEDIA), "interval") == pytest.approx(0.810845, abs=1e-6)


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval"])
def test_alpha_matches_the_krippendorff_package_on_random_ratings(level):
    krippendorff = pytest.importorskip("krippendorff")
    rng = np.random.default_rng(7)
    for _ in range(25):
        raters, units = rng.integers(2, 6), rng.integers(5, 40)
        data = rng.integers(1, 6, (raters, units)).astype(float)
        data[rng.random((raters, units)) < 0.3] = nan
        if sum(len(u) >= 2 for u in units_of(data)) < 2 or len({v for u in units_of(data) if len(u) >= 2
                                                                 for v in u}) < 2:
            continue
        ours = krippendorff_alpha(units_of(data), level)
        assert ours == pytest.approx(krippendorff.alpha(reliability_data=data, level_of_measurement=level), abs=1e-9)


def test_alpha_is_zero_when_raters_almost_always_agree_and_percent_agreement_says_so():
    units = [[3, 3]] * 9 + [[3, 1]]
    assert krippendorff_alpha(units) == pytest.approx(0.0, abs=1e-12)
    assert percent_agreement(units) == pytest.approx(0.9)
    assert krippendorff_alpha([[3, 3], [3, 3], [4]]) is None  # one value in pairable units: undefined


def test_percent_agreement_counts_agreeing_pairs_per_unit():
    # unit 1: 2 of its 6 ordered rater pairs agree; unit 2: all agree; unit 3 (one rating) is dropped
    assert percent_agreement([[1, 1, 2], [4, 4], [5]]) == pytest.approx((2 / 6 + 1) / 2)


def test_fleiss_kappa_matches_published_value_and_statsmodels():
    from statsmodels.stats.inter_rater import fleiss_kappa as statsmodels_kappa

    assert fleiss_kappa(FLEISS_WIKIPEDIA) == pytest.approx(0.210, abs=5e-4)
    rng = np.random.default_rng(3)
    for _ in range(20):
        table = rng.multinomial(rng.integers(2, 8), rng.dirichlet(np.ones(5)), size=rng.integers(3, 30))
        assert fleiss_kappa(table) == pytest.approx(statsmodels_kappa(table), abs=1e-12)
    assert fleiss_kappa([[2, 0], [1, 2]]) is None  # rows with different numbers of raters


def test_bradley_terry_two_systems_three_wins_of_four_is_ln3():
    theta, regularised = fit_bradley_terry(np.array([[0.0, 3.0], [1.0, 0.0]]))
    assert theta[0] - theta[1] == pytest.approx(math.log(3), abs=1e-9)
    assert not regularised and theta.sum() == pytest.approx(0.0, abs=1e-12)


def test_bradley_terry_a_cycle_gives_equal_strengths():
    theta, _ = fit_bradley_terry(np.array([[0, 1, 0], [0, 0, 1], [1, 0, 0]], dtype=float))
    assert np.allclose(theta, 0.0, atol=1e-9)


def test_bradley_terry_is_the_maximum_likelihood():
    from scipy.optimize import minimize

    rng = np.random.default_rng(0)
    w = rng.integers(1, 9, (4, 4)).astype(float)
    np.fill_diagonal(w, 0)

    def nll(t):
        d = t[:, None] - t[None, :]
        return float((w * np.log1p(np.exp(-d))).sum())

    best = minimize(nll, np.zeros(4), method="BFGS", options={"gtol": 1e-10}).x
    theta, _ = fit_bradley_terry(w)
    assert np.allclose(theta, best - best.mean(), atol=1e-5)
    assert nll(theta) <= nll(best - best.mean()) + 1e-12


def test_bradley_terry_without_a_maximum_is_shrunk_and_says_so():
    theta, regularised = fit_bradley_terry(np.array([[0.0, 4.0], [0.0, 0.0]]))
    assert regularised and 0 < theta[0] - theta[1] < 10


def test_bradley_terry_interval_covers_the_estimate_and_ties_count_half():
    comparisons = [("a", "b", 1.0)] * 30 + [("b", "a", 1.0)] * 10 + [("a", "b", 0.5), ("b", "a", 0.5)] * 4
    result = bradley_terry(comparisons, ["a", "b"], resamples=300, seed=1)
    gap = result["strength"]["a"] - result["strength"]["b"]
    assert gap == pytest.approx(math.log(32 / 12), abs=1e-9)  # 4 ties: half a win each way; 32 to 12
    low, high = result["ci"]["a"]
    assert low < result["strength"]["a"] < high and list(result["strength"]) == ["a", "b"]


def _rows(scores, preferred=None):
    """scores: {(rater, item): {system: score}} -> export rows of one criterion."""
    return [{"rater": r, "item_id": i, "image": "x.png", "system": s, "criterion": "relevance", "score": v,
             "preferred": (preferred or {}).get((r, i)), "comment": "", "rated_at": "2026-01-01T00:00:00+00:00"}
            for (r, i), per in scores.items() for s, v in per.items()]


def test_summarize_keys_units_by_item_and_system():
    scores = {("alice", "i1"): {"x": 5, "y": 2}, ("bob", "i1"): {"x": 5, "y": 2},
              ("alice", "i2"): {"x": 4, "y": 1}, ("bob", "i2"): {"x": 4, "y": 1}}
    s = summarize(_rows(scores, {k: "x" for k in scores}), resamples=200)
    assert s["ratings"] == 4 and s["raters"] == 2 and s["items"] == 2
    assert s["per_system"]["x"]["relevance"]["mean"] == pytest.approx(4.5)
    assert s["per_system"]["y"]["relevance"]["mean"] == pytest.approx(1.5)
    agreement = s["agreement"]["relevance"]
    assert agreement["krippendorff_alpha"] == pytest.approx(1.0) and agreement["percent_agreement"] == 1.0
    assert agreement["fleiss_kappa"] == pytest.approx(1.0) and agreement["units"] == 4
    assert s["bradley_terry"]["judgements"] == 4 and s["bradley_terry"]["regularised"]
    assert list(s["bradley_terry"]["strength"]) == ["x", "y"]


def test_summarize_without_preferences_or_complete_overlap():
    scores = {("alice", "i1"): {"x": 5, "y": 2}, ("bob", "i1"): {"x": 4, "y": 2}, ("alice", "i2"): {"x": 3, "y": 3}}
    s = summarize(_rows(scores), resamples=50)
    assert s["bradley_terry"] is None
    assert s["agreement"]["relevance"]["fleiss_kappa"] is None  # i2 has one rater
    assert s["agreement"]["relevance"]["units"] == 2
