"""Attribute extraction and precision / recall / accuracy on hand-built cases with known answers."""

from __future__ import annotations

import json

import pytest

from captune.errors import ConfigError
from captune.metrics.attributes import attributes, extract_attributes, item_scores, load_vocab
from captune.metrics.base import MetricUnavailable

VOCAB = {
    "colour": ["red", "blue", "navy blue", "white", "grey"],
    "material": ["leather", "rubber", "canvas"],
    "item": ["shoe", "t-shirt", "glasses", "dress"],
}


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Navy-blue leather SHOES", {"colour": {"navy blue"}, "material": {"leather"}, "item": {"shoe"}}),
        ("a red t shirt with blue glasses", {"colour": {"red", "blue"}, "item": {"t-shirt", "glasses"}}),
        ("two dresses in grey canvas", {"colour": {"grey"}, "material": {"canvas"}, "item": {"dress"}}),
        ("redness is not a colour; bluetooth neither", {}),
        ("", {}),
    ],
)
def test_extract_attributes(text, expected):
    assert extract_attributes(text, VOCAB) == expected


def test_phrase_listed_in_two_categories_counts_for_both():
    vocab = {"colour": ["orange"], "fruit": ["orange", "apple"]}
    assert extract_attributes("an orange on a table", vocab) == {"colour": {"orange"}, "fruit": {"orange"}}


def test_item_scores_known_values():
    stated = {"colour": {"red", "blue"}, "material": {"leather"}}
    expected = {"colour": {"red"}, "material": {"leather"}, "item": {"shoe"}}
    # pred pairs: red, blue, leather; ref pairs: red, leather, shoe; overlap 2.
    # accuracy: colour wrong (blue not in refs), material right, item missing -> 1/3.
    assert item_scores(stated, expected) == pytest.approx(
        {"attr_precision": 2 / 3, "attr_recall": 2 / 3, "attr_accuracy": 1 / 3}
    )
    assert item_scores({}, expected) == {"attr_recall": 0.0, "attr_accuracy": 0.0}
    assert item_scores(stated, {}) == {"attr_precision": 0.0}
    assert item_scores({}, {}) == {}


def test_metric_means_over_defined_items():
    predictions = ["red leather shoes", "a shoe", "a photo of something", "blue t-shirt"]
    references = [
        ["a red rubber shoe", "red shoes"],  # ref: red, rubber, shoe
        ["nothing to see"],  # ref: none
        ["a white dress"],  # ref: white, dress
        ["a navy blue t-shirt", "a blue shirt"],  # ref: navy blue, blue, t-shirt
    ]
    result = attributes(predictions, references, attribute_vocab=VOCAB)
    assert result.per_item[0] == pytest.approx({"attr_precision": 2 / 3, "attr_recall": 2 / 3, "attr_accuracy": 2 / 3})
    assert result.per_item[1] == {"attr_precision": 0.0}
    assert result.per_item[2] == {"attr_recall": 0.0, "attr_accuracy": 0.0}
    assert result.per_item[3] == pytest.approx({"attr_precision": 1.0, "attr_recall": 2 / 3, "attr_accuracy": 1.0})
    assert result.corpus == pytest.approx(
        {
            "attr_precision": (2 / 3 + 0 + 1) / 3,
            "attr_recall": (2 / 3 + 0 + 2 / 3) / 3,
            "attr_accuracy": (2 / 3 + 0 + 1) / 3,
        }
    )
    assert "1 of 4 captions state no attribute" in result.info["attributes"]


def test_vocab_from_json_and_yaml_files(tmp_path):
    (tmp_path / "v.json").write_text(json.dumps(VOCAB))
    (tmp_path / "v.yaml").write_text("colour: [red, blue]\nmaterial:\n  - leather\n")
    assert load_vocab(tmp_path / "v.json") == VOCAB
    result = attributes(["a red shoe"], [["red leather"]], attribute_vocab=str(tmp_path / "v.yaml"))
    assert result.per_item[0] == {"attr_precision": 1.0, "attr_recall": 0.5, "attr_accuracy": 0.5}


def test_bad_or_missing_vocabulary(tmp_path):
    with pytest.raises(MetricUnavailable, match="--attribute-vocab"):
        attributes(["a red shoe"], [["a red shoe"]])
    with pytest.raises(ConfigError, match="'colour' must map to a list"):
        load_vocab({"colour": "red"})
    with pytest.raises(ConfigError, match="nope.yaml"):
        load_vocab(tmp_path / "nope.yaml")
    with pytest.raises(MetricUnavailable, match="no reference caption states"):
        attributes(["a red shoe"], [["a cat"]], attribute_vocab=VOCAB)


def test_former_names_are_aliases_of_precision_and_recall():
    from captune.metrics import score
    from captune.metrics.base import spec_for

    assert spec_for("attr_map") is spec_for("attr_precision") is spec_for("attributes")
    preds, refs = ["red leather shoes", "blue t-shirt"], [["a red rubber shoe"], ["a navy blue t-shirt"]]
    by_alias = score(preds, refs, metrics=["attr_map", "attr_mar"], attribute_vocab=VOCAB)
    by_name = score(preds, refs, metrics=["attr_precision", "attr_recall"], attribute_vocab=VOCAB)
    assert by_alias.corpus == by_name.corpus
    assert set(by_alias.corpus) == {"attr_precision", "attr_recall"}
    assert by_alias.corpus["attr_precision"] == pytest.approx((2 / 3 + 1 / 2) / 2)  # "navy blue" is not "blue"
