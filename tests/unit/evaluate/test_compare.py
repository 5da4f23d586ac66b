"""compare: paired intervals and p-values on evaluations of synthetic captions, checked against
pycocoevalcap, plus the CLI."""

import json
import random

import pytest
from click.testing import CliRunner
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider

from captune.cli import cli
from captune.data.records import CaptionRecord, write_records
from captune.errors import CaptuneError
from captune.evaluate import compare, evaluate
from captune.io import write_jsonl

METRICS = ["bleu_1", "bleu_2", "bleu_3", "bleu_4", "rouge_l", "cider"]
COLOURS = ["red", "blue", "green", "yellow", "purple", "orange"]
SHAPES = ["circle", "square", "star", "triangle", "hexagon", "diamond"]


def scene(rng):
    return rng.choice(COLOURS), rng.choice(SHAPES), rng.choice(COLOURS), rng.choice(SHAPES)


def refs_for(s):
    c1, s1, c2, s2 = s
    return [
        f"a {c1} {s1} next to a {c2} {s2}",
        f"a {c1} {s1} and a {c2} {s2}",
        f"{c1} {s1} beside {c2} {s2}",
        f"a small {c1} {s1} with a {c2} {s2}",
    ]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """60 images; captions "a" are vague, "b" name both objects on 25 images and equal "a" elsewhere."""
    root = tmp_path_factory.mktemp("cmp")
    rng = random.Random(0)
    scenes = [scene(rng) for _ in range(60)]
    records = [CaptionRecord(f"img{i:02d}", f"img{i:02d}.png", refs_for(s)) for i, s in enumerate(scenes)]
    write_records(root / "test.jsonl", records)
    vague = [f"a {s[0]} shape next to a shape" for s in scenes]
    better = [
        f"a {s[0]} {s[1]} next to a {s[2]} {s[3]}" if i < 25 else v
        for i, (s, v) in enumerate(zip(scenes, vague))
    ]
    files = {}
    for name, caps in {"a": vague, "b": better}.items():
        files[name] = root / f"{name}.jsonl"
        write_jsonl(files[name], [{"image_id": r.image_id, "caption": c} for r, c in zip(records, caps)])
    return root, records, vague, better, files


def evaluated(dataset, name, tmp_path, source=None):
    root, _, _, _, files = dataset
    out = tmp_path / name
    evaluate(root / "test.jsonl", out, predictions=source or files[name], metrics=METRICS)
    return out


def pycoco(records, captions):
    gts = {r.image_id: r.captions for r in records}
    res = {r.image_id: [c] for r, c in zip(records, captions)}
    return Bleu(4).compute_score(gts, res, verbose=0)[0], Cider().compute_score(gts, res)[0]


def test_b_better_on_some_images_gives_an_interval_above_zero(dataset, tmp_path):
    _root, records, vague, better, _files = dataset
    result = compare([evaluated(dataset, "a", tmp_path), evaluated(dataset, "b", tmp_path)], resamples=1000)
    for name in ("bleu_4", "cider", "rouge_l"):
        row = result["metrics"][name]
        assert row["ci_low"] > 0 and row["p_value"] < 0.01 and row["significant"] is True
        assert row["ci_low"] < row["delta"] < row["ci_high"]
    bleu_a, cider_a = pycoco(records, vague)
    bleu_b, cider_b = pycoco(records, better)
    m = result["metrics"]
    assert m["bleu_4"]["a"] == pytest.approx(bleu_a[3], rel=1e-9) and m["bleu_4"]["b"] == pytest.approx(
        bleu_b[3], rel=1e-9
    )
    assert m["cider"]["a"] == pytest.approx(cider_a, rel=1e-9) and m["cider"]["b"] == pytest.approx(
        cider_b, rel=1e-9
    )
    assert m["cider"]["rel_delta"] == pytest.approx(100 * (cider_b - cider_a) / cider_a)
    assert result["images"] == 60 and result["a"]["name"] == "a" and result["b"]["name"] == "b"


def test_identical_predictions_give_zero_delta_and_a_degenerate_interval(dataset, tmp_path):
    _root, *_, files = dataset
    a = evaluated(dataset, "a", tmp_path)
    again = evaluated(dataset, "a_again", tmp_path, source=files["a"])
    result = compare([a, again], resamples=200)
    for name in METRICS:
        row = result["metrics"][name]
        assert row["delta"] == 0 and row["ci_low"] == 0 and row["ci_high"] == 0 and row["p_value"] == 1.0
        assert row["significant"] is False


def test_near_zero_baseline_has_no_relative_delta(dataset, tmp_path):
    root, records, *_ = dataset
    nonsense = tmp_path / "nonsense.jsonl"
    write_jsonl(nonsense, [{"image_id": r.image_id, "caption": "zebra"} for r in records])
    a = tmp_path / "nonsense"
    evaluate(root / "test.jsonl", a, predictions=nonsense, metrics=METRICS)
    result = compare([a, evaluated(dataset, "b", tmp_path)], resamples=100)
    row = result["metrics"]["bleu_4"]
    assert abs(row["a"]) < 0.01 and row["rel_delta"] is None and "near_zero_baseline" in row["flags"]
    assert row["delta"] > 0


def test_evaluations_of_different_images_are_refused_with_the_ids(dataset, tmp_path):
    _root, records, _vague, _, _ = dataset
    fewer = tmp_path / "fewer.jsonl"
    write_records(fewer, records[:-2])
    short = tmp_path / "short"
    evaluate(fewer, short, predictions=dataset[4]["a"], metrics=METRICS)
    with pytest.raises(CaptuneError, match="2 images only in .*img58, img59"):
        compare([evaluated(dataset, "a", tmp_path), short], resamples=10)


def test_three_folders_compare_each_with_the_first(dataset, tmp_path):
    a, b = evaluated(dataset, "a", tmp_path), evaluated(dataset, "b", tmp_path)
    result = compare([a, b, a], resamples=50)
    assert result["baseline"] == str(a) and len(result["comparisons"]) == 2
    assert result["comparisons"][1]["metrics"]["cider"]["delta"] == 0


def test_cli_compare_json_and_table(dataset, tmp_path):
    a, b = evaluated(dataset, "a", tmp_path), evaluated(dataset, "b", tmp_path)
    runner = CliRunner()
    res = runner.invoke(cli, ["compare", str(a), str(b), "--json", "--resamples", "300", "--seed", "3"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["resamples"] == 300 and out["seed"] == 3
    row = out["metrics"]["cider"]
    assert set(row) >= {"a", "b", "delta", "rel_delta", "ci_low", "ci_high", "p_value"}
    assert row["ci_low"] > 0
    again = json.loads(
        runner.invoke(cli, ["compare", str(a), str(b), "--json", "--resamples", "300", "--seed", "3"]).output
    )
    assert again["metrics"]["cider"] == row  # same seed, same intervals
    text = runner.invoke(cli, ["compare", str(a), str(b), "--resamples", "100"])
    assert text.exit_code == 0 and "CIDEr" in text.output and "better" in text.output
    missing = runner.invoke(cli, ["compare", str(a), str(tmp_path)])
    assert missing.exit_code == 1 and "no eval.json" in missing.output


def test_a_corpus_value_that_is_not_the_per_image_mean_is_flagged(dataset, tmp_path):
    a, b = evaluated(dataset, "a", tmp_path), evaluated(dataset, "b", tmp_path)
    saved = json.loads((b / "eval.json").read_text())
    saved["metrics"]["rouge_l"] += 0.05  # as the METEOR jar's corpus value differs from its per-image mean
    (b / "eval.json").write_text(json.dumps(saved))
    result = compare([a, b], resamples=50)
    row = result["metrics"]["rouge_l"]
    assert result["per_image_mean"] == ["rouge_l"] and "per_image_mean" in row["flags"]
    assert row["corpus"]["b"] == saved["metrics"]["rouge_l"]
    assert row["b"] == pytest.approx(row["corpus"]["b"] - 0.05)
    assert "per_image_mean" not in result["metrics"]["cider"]["flags"]
