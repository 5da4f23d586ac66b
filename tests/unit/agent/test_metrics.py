"""Stage metrics: hand-computed cases and scikit-learn on random labellings."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score, precision_recall_fscore_support
from sklearn.preprocessing import MultiLabelBinarizer

from captune.agent.metrics import (
    cluster_scores,
    dedupe_scores,
    duplicate_groups,
    label_scores,
    partition_scores,
    post_completeness,
    prf,
    quality_scores,
    stage_metrics,
)
from captune.agent.records import Photo, Post


def photo(name: str, status: str = "ok", **extra) -> Photo:
    return Photo(id=name, path=f"/x/{name}", status=status, **extra)


def test_prf_hand_values_and_undefined_cases():
    assert prf(2, 4, 5) == {"precision": 0.5, "recall": 0.4, "f1": pytest.approx(4 / 9)}
    assert prf(0, 0, 3) == {"precision": None, "recall": 0.0, "f1": 0.0}
    assert prf(0, 0, 0) == {"precision": None, "recall": None, "f1": None}


def test_duplicate_groups_follow_links_transitively():
    photos = [photo("a"), photo("b", "duplicate", duplicate_of="a"), photo("c", "duplicate", duplicate_of="b"),
              photo("d"), photo("e", "duplicate", duplicate_of="d"), photo("f")]
    assert sorted(map(sorted, duplicate_groups(photos))) == [["a", "b", "c"], ["d", "e"]]


def test_dedupe_pairs_hand_example():
    # predicted groups {a, b, c} and {d, e}: pairs ab ac bc de (4)
    photos = [photo("a"), photo("b", "duplicate", duplicate_of="a"), photo("c", "duplicate", duplicate_of="a"),
              photo("d"), photo("e", "duplicate", duplicate_of="d"), photo("f")]
    # truth groups {a, b}, {c, f}, {d, e, gone}: pairs ab cf de (the photo not present is left out)
    s = dedupe_scores(photos, [["a", "b"], ["c", "f"], ["d", "e", "gone"]])
    assert s["pairs_found"] == 4 and s["pairs_true"] == 3
    assert s["precision"] == 2 / 4 and s["recall"] == 2 / 3 and s["f1"] == pytest.approx(2 * 2 / 7)


def test_quality_scores_leave_out_duplicates_and_rejected():
    photos = [photo("a", "low_quality"), photo("b", "low_quality"), photo("c"), photo("d", "posted"),
              photo("e", "duplicate", duplicate_of="c"), photo("f", "rejected")]
    s = quality_scores(photos, ["a", "c", "e", "f", "absent"])
    # in scope: a (flagged, true), b (flagged, false), c (missed); e and f are outside
    assert s == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "flagged": 2, "truth": 2, "outside": 2}


def test_label_scores_match_scikit_learn_on_random_labels():
    rng = np.random.default_rng(0)
    names = ["people", "night", "food", "indoors", "stage", "rare"]
    photos, truth = [], {}
    for i in range(60):
        predicted = [n for n in names[:5] if rng.random() < 0.4]  # "rare" is never predicted
        photos.append(photo(f"p{i}", "posted", labels=tuple((n, 0.5) for n in predicted)))
        truth[f"p{i}"] = [n for n in names if rng.random() < 0.35]
    ours = label_scores(photos, truth)
    mlb = MultiLabelBinarizer(classes=sorted(names))
    y_true = mlb.fit_transform([truth[p.id] for p in photos])
    y_pred = mlb.transform([[n for n, _ in p.labels] for p in photos])
    for avg in ("micro", "macro"):
        p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, average=avg, zero_division=np.nan)
        assert ours[avg] == pytest.approx({"precision": p, "recall": r, "f1": f}), avg
    p, r, f, support = precision_recall_fscore_support(y_true, y_pred, average=None, zero_division=np.nan)
    for k, name in enumerate(sorted(names)):
        got = ours["per_label"][name]
        assert got["support"] == support[k] and got["recall"] == pytest.approx(r[k]) and got["f1"] == pytest.approx(f[k])
        assert got["precision"] == pytest.approx(p[k]) if not np.isnan(p[k]) else got["precision"] is None
    assert ours["per_label"]["rare"]["precision"] is None  # never predicted: undefined, out of the macro mean


def test_label_scores_only_over_photos_that_went_through_categorize():
    photos = [photo("a", labels=(("food", 0.9),)), photo("b", "low_quality", labels=(("food", 0.9),)),
              photo("c", "beyond_selection"), photo("d", "duplicate", labels=(("night", 0.9),))]
    s = label_scores(photos, {"a": ["food"], "b": ["night"], "c": ["night"], "d": ["food"]})
    assert s["photos"] == 2  # a and c
    assert s["micro"] == {"precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3)}


def test_partition_scores_match_scikit_learn_on_random_labels():
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 6, size=200).astype(str).tolist()
    predicted = [t if rng.random() < 0.7 else str(rng.integers(0, 9)) for t in truth]
    s = partition_scores(truth, predicted)
    assert s["ari"] == pytest.approx(adjusted_rand_score(truth, predicted))
    assert s["nmi"] == pytest.approx(normalized_mutual_info_score(truth, predicted))
    assert partition_scores(truth, truth)["ari"] == 1.0 and partition_scores(truth, truth)["bcubed_f1"] == 1.0


def test_purity_and_bcubed_hand_example():
    # truth: x x x y y ; predicted: 1 1 2 2 2
    s = partition_scores(["x", "x", "x", "y", "y"], ["1", "1", "2", "2", "2"])
    assert s["purity"] == pytest.approx(4 / 5)  # group 1: 2 x; group 2: 2 y of 3
    # B-cubed precision per photo: 1, 1, 1/3, 2/3, 2/3; recall: 2/3, 2/3, 1/3, 1, 1
    p, r = (1 + 1 + 1 / 3 + 2 / 3 + 2 / 3) / 5, (2 / 3 + 2 / 3 + 1 / 3 + 1 + 1) / 5
    assert s["bcubed_precision"] == pytest.approx(p) and s["bcubed_recall"] == pytest.approx(r)
    assert s["bcubed_f1"] == pytest.approx(2 * p * r / (p + r))


def test_cluster_scores_for_events_and_groups_over_clustered_photos():
    photos = [photo("a", event="e01", cluster="e01-c01"), photo("b", event="e01", cluster="e01-c02"),
              photo("c", "posted", event="e02", cluster="e02-c01"), photo("d", "duplicate")]
    s = cluster_scores(photos, {"a": "party", "b": "party", "c": "hike", "d": "hike"})
    assert s["photos"] == 3
    assert s["events"]["ari"] == 1.0 and s["events"]["purity"] == 1.0
    assert s["clusters"]["purity"] == 1.0 and s["clusters"]["bcubed_recall"] == pytest.approx((0.5 + 0.5 + 1) / 3)
    assert partition_scores([], [])["ari"] is None


def test_post_completeness():
    posts = [Post("e01-p01", "e01", ("a",), "a", caption="Hi", hashtags=("#x",)),
             Post("e01-p02", "e01", ("b",), "b", caption="  ", hashtags=("#x",)),
             Post("e01-p03", "e01", ("c",), "c", caption="Hi", hashtags=()),
             Post("e01-p04", "e01", ("d",), "d", caption="Hi", hashtags=("#x",), problems=("caption too long",))]
    assert post_completeness(posts) == {"posts": 4, "complete": 1, "share": 0.25}
    assert post_completeness([]) == {"posts": 0, "complete": 0, "share": None}


def test_stage_metrics_combines_the_stages_given_and_rejects_unknown_keys():
    photos = [photo("a", "posted", event="e01", cluster="e01-c01", labels=(("food", 0.9),)),
              photo("b", "duplicate", duplicate_of="a"), photo("c", "low_quality"), photo("z", "rejected")]
    truth = {"duplicates": [["a", "b"]], "low_quality": ["c"], "labels": {"a": ["food"]},
             "events": {"a": "ev"}, "unreadable": ["z"]}
    m = stage_metrics(photos, [], truth)
    assert list(m) == ["ingest", "dedupe", "quality", "labels", "events", "clusters", "posts"]
    assert m["dedupe"]["recall"] == 1.0 and m["quality"]["recall"] == 1.0 and m["ingest"]["recall"] == 1.0
    assert m["labels"]["micro_f1"] == 1.0 and m["labels"]["macro_precision"] == 1.0
    assert list(stage_metrics(photos, [], {})) == ["posts"]
    with pytest.raises(ValueError, match="duplicate.*known: duplicates"):
        stage_metrics(photos, [], {"duplicate": []})
