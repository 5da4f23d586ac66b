"""``captune data enhance``: CLIP picks attributes, captions gain them, the margin holds back doubtful ones."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from captune.cli import cli
from captune.data.enhance import (
    check_prompt,
    check_template,
    choose,
    default_template,
    enhance_caption,
    read_vocab,
)
from captune.errors import ConfigError
from captune.io import read_jsonl

VOCAB = {"colour": ["red", "blue", "green"], "material": ["leather", "canvas"]}


def _benchmark():
    """``benchmarks/enhance.py``: single-object shapes-world records with their truth, and the measurement."""
    path = Path(__file__).parents[3] / "benchmarks" / "enhance.py"
    spec = importlib.util.spec_from_file_location("benchmarks_enhance", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    bench = _benchmark()
    records, truth = bench.single_object_world(tmp_path_factory.mktemp("single"), 200, seed=1)
    return bench.measure(records, truth, "shapes-clip")


def test_the_shipped_clip_picks_the_right_colour_of_single_objects(measured):
    # Measured 0.990 on these 200 images (world seed 1), 0.985-0.995 on seeds 2 and 3, 0.991 on
    # 1,000 images of seed 0 (benchmarks/RESULTS.md); the threshold is the lowest less 0.035.
    assert measured["categories"]["colour"]["accuracy"] >= 0.95


@pytest.mark.xfail(strict=True, reason="the shipped CLIP does not see patterns: its hard negatives change only colour "
                                       "and shape words, and it picks 'checkered' for most objects whatever their "
                                       "pattern (measured 0.255 here, 0.262 on 1,000 images; chance 0.25)")
def test_the_shipped_clip_picks_the_right_material_of_single_objects(measured):
    assert measured["categories"]["material"]["accuracy"] >= 0.9


def test_choose_keeps_the_best_value_only_beyond_the_margin():
    probs = {"colour": np.array([0.2, 0.7, 0.1]), "material": np.array([0.45, 0.55])}
    choice = choose(probs, VOCAB, min_margin=0.3)
    assert choice.attributes == {"colour": "blue"} and choice.scores == {"colour": 0.7}
    assert choice.margins == {"colour": 0.5, "material": 0.1}
    assert choose(probs, VOCAB, min_margin=0.0).attributes == {"colour": "blue", "material": "canvas"}


def test_captions_follow_the_template_and_leave_no_gap_for_a_missing_category():
    template = default_template(VOCAB)
    assert template == "{colour} {material} {caption}"
    assert enhance_caption(template, "shoe", {"colour": "red", "material": "leather"}, list(VOCAB)) == "red leather shoe"
    assert enhance_caption(template, "shoe", {"material": "canvas"}, list(VOCAB)) == "canvas shoe"
    assert enhance_caption("a {caption} in {colour}", "boot", {"colour": "blue"}, list(VOCAB)) == "a boot in blue"


@pytest.mark.parametrize(("template", "named"), [("{color} {caption}", "{color}"), ("{colour} shoe", "{caption}"),
                                                 ("{colour {caption}", "braces")])
def test_a_bad_template_is_named_with_what_to_do(template, named):
    with pytest.raises(ConfigError, match=named.replace("{", r"\{").replace("}", r"\}")):
        check_template(template, VOCAB)


def test_a_prompt_without_its_value_and_a_bad_vocabulary_are_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"\{value\}"):
        check_prompt("a photo of a shoe")
    bad = tmp_path / "vocab.yaml"
    bad.write_text("colour: [red, blue]\nmaterial: leather\n")
    with pytest.raises(ConfigError, match="'material' must map to a list"):
        read_vocab(bad)
    assert read_vocab(_write(tmp_path / "v.json", json.dumps(VOCAB))) == VOCAB


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_cli_writes_enhanced_records_with_attributes_scores_and_originals(tmp_path):
    bench = _benchmark()
    records, truth = bench.single_object_world(tmp_path / "world", 6, seed=4)
    (tmp_path / "world" / "images" / "single_00005.png").write_bytes(b"not a png")
    vocab = _write(tmp_path / "vocab.yaml", "colour: [red, green, blue, yellow, purple, orange, white, black]\n")
    out = tmp_path / "out" / "enhanced.jsonl"
    result = CliRunner().invoke(cli, ["data", "enhance", str(records), "--vocab", str(vocab), "--clip-model",
                                      "shapes-clip", "--out", str(out), "--template", "{caption} in {colour}",
                                      "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["records"] == 6 and summary["scored"] == 5 and summary["unreadable"] == ["single_00005"]
    assert summary["kept"] == {"colour": 5}  # a count of images (it was the kept values strung together)
    rows = {r["image_id"]: r for r in read_jsonl(out)}
    for image_id in list(rows)[:5]:
        meta = rows[image_id]["meta"]
        colour = meta["enhanced_attributes"]["colour"]
        assert rows[image_id]["captions"] == [f"{meta['original_captions'][0]} in {colour}"]
        assert colour == truth[image_id]["colour"]
        assert 0 < meta["enhanced_scores"]["colour"] <= 1 and meta["enhanced_margins"]["colour"] >= 0
        assert Path(rows[image_id]["image"]).is_absolute() and Path(rows[image_id]["image"]).exists()
    broken = rows["single_00005"]
    assert broken["captions"] == broken["meta"]["original_captions"] and broken["meta"]["enhanced_attributes"] == {}


def test_cli_names_a_template_placeholder_that_is_not_a_category(tmp_path):
    bench = _benchmark()
    records, _ = bench.single_object_world(tmp_path / "world", 1, seed=0)
    vocab = _write(tmp_path / "vocab.yaml", "colour: [red, blue]\n")
    result = CliRunner().invoke(cli, ["data", "enhance", str(records), "--vocab", str(vocab), "--clip-model",
                                      "shapes-clip", "--out", str(tmp_path / "e.jsonl"), "--template",
                                      "{material} {caption}"])
    assert result.exit_code == 1
    assert "unknown placeholder {material}" in result.output and "colour, caption" in result.output
