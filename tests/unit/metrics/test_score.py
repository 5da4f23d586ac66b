"""``score``, the files it reads, and ``captune metrics``."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from conftest import coco_dicts
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.rouge.rouge import Rouge

from captune.cli import cli
from captune.errors import ConfigError, DataError
from captune.metrics import (
    DEFAULT_METRICS,
    align,
    known_metrics,
    load_predictions,
    load_references,
    score,
    score_files,
    tokenize,
)
from captune.metrics import ptb as ptb_module

PREDS = ["A man riding a wave on top of a surfboard.", "Two dogs playing with a frisbee in the park",
         "A plate of food with broccoli."]
REFS = [["A surfer riding a large wave.", "A man on a surfboard rides a wave."],
        ["Dogs play with a frisbee on the grass.", "Two dogs chase a frisbee."],
        ["A plate with rice and broccoli.", "Some food on a white plate.", "Broccoli and chicken."]]


def coco_eval(preds, refs, tokenize_all):
    """pycocoevalcap's COCOEvalCap steps: tokenize references, then predictions; BLEU, ROUGE-L, CIDEr."""
    gts, res = tokenize_all(preds, refs)
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    return {**{f"bleu_{k + 1}": v for k, v in enumerate(bleu)}, "rouge_l": Rouge().compute_score(gts, res)[0],
            "cider": Cider().compute_score(gts, res)[0]}


def python_tokenized(preds, refs):
    flat = iter(tokenize([c for r in refs for c in r]))
    return coco_dicts(tokenize(preds), [[next(flat) for _ in r] for r in refs])


def java_tokenized(preds, refs):
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    tok = PTBTokenizer()
    gts = tok.tokenize({i: [{"caption": c} for c in r] for i, r in enumerate(refs)})
    return gts, tok.tokenize({i: [{"caption": p}] for i, p in enumerate(preds)})


def test_equals_pycocoevalcap_on_raw_captions():
    corpus, per_item = score(PREDS, REFS, metrics=["bleu", "rouge_l", "cider"])
    assert corpus == pytest.approx(coco_eval(PREDS, REFS, python_tokenized), abs=1e-9)
    assert set(per_item[0]) == {"bleu_1", "bleu_2", "bleu_3", "bleu_4", "rouge_l", "cider"}


@pytest.mark.java
def test_equals_the_whole_pycocoevalcap_pipeline_with_its_java_tokenizer():
    from ptb_corpus import captions

    caps = [ptb_module.clean(c) for c in captions(600, seed=9)]  # line breaks: see captune.metrics.ptb
    preds, refs = caps[:100], [caps[100 + 5 * i : 105 + 5 * i] for i in range(100)]
    corpus, _ = score(preds, refs, metrics=["bleu", "rouge_l", "cider"])
    assert corpus == pytest.approx(coco_eval(preds, refs, java_tokenized), abs=1e-9)


def test_default_set_and_unavailable_metrics_without_java(monkeypatch):
    monkeypatch.setenv("PATH", "")
    scores = score(PREDS, REFS)
    assert set(scores.corpus) | set(scores.unavailable) == set(DEFAULT_METRICS)
    assert {"meteor", "spice"} <= set(scores.unavailable)
    assert all(isinstance(v, float) for v in scores.corpus.values())
    _corpus, per_item = scores  # unpacks as a pair
    assert len(per_item) == 3 and "self_bleu" in per_item[0] and "meteor" not in per_item[0]


def test_tokenizes_once(monkeypatch):
    calls = []
    real = ptb_module.tokenize

    def counting(captions, backend="python", resources=None):
        calls.append(len(captions))
        return real(captions, backend, resources)

    monkeypatch.setattr("captune.metrics.tokenize", counting)
    score(PREDS, REFS, metrics=["bleu_4", "cider", "rouge_l", "distinct_1"])
    assert calls == [7, 3]  # references as one batch, predictions as another


def test_only_requested_outputs():
    corpus, per_item = score(PREDS, REFS, metrics="bleu_4,cider")
    assert list(corpus) == ["bleu_4", "cider"] and set(per_item[1]) == {"bleu_4", "cider"}


def test_unknown_metric_lists_known_ones():
    with pytest.raises(ConfigError) as e:
        score(PREDS, REFS, metrics=["bleu_5"])
    assert "bleu_5" in str(e.value) and "cider" in str(e.value) and "rouge_l" in str(e.value)
    assert "novel_fraction" in known_metrics()


def test_novel_fraction_joins_the_default_set_with_train_captions(monkeypatch):
    monkeypatch.setenv("PATH", "")
    scores = score(PREDS, REFS, train_captions=["two dogs playing with a frisbee in the park"])
    assert scores.corpus["novel_fraction"] == pytest.approx(2 / 3)


def test_mismatched_lengths():
    with pytest.raises(DataError, match="parallel"):
        score(PREDS, REFS[:2])


def write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_files_align_by_image_id(tmp_path):
    p = write(tmp_path / "p.jsonl", [{"image_id": 2, "caption": PREDS[1]}, {"image_id": 1, "caption": PREDS[0]}])
    r = write(tmp_path / "r.jsonl", [{"image_id": "1", "image": "a.jpg", "captions": REFS[0], "meta": {}},
                                     {"image_id": "2", "image": "b.jpg", "captions": REFS[1], "meta": {}}])
    data = align(load_predictions(p), load_references(r))
    assert data.image_ids == ["2", "1"] and data.references[0] == REFS[1] and data.images == ["b.jpg", "a.jpg"]


def test_file_errors_name_file_and_ids(tmp_path):
    p = write(tmp_path / "p.jsonl", [{"image_id": i, "caption": "x"} for i in ("1", "2", "3")])
    r = write(tmp_path / "r.jsonl", [{"image_id": "1", "captions": ["x"]}, {"image_id": "9", "captions": ["y"]}])
    with pytest.raises(DataError) as e:
        align(load_predictions(p), load_references(r))
    assert str(p) in str(e.value) and str(r) in str(e.value) and "'2'" in str(e.value) and "'3'" in str(e.value)
    r2 = write(tmp_path / "r2.jsonl", [{"image_id": i, "captions": ["x"]} for i in ("1", "2", "3", "4")])
    with pytest.raises(DataError, match="'4'"):
        align(load_predictions(p), load_references(r2))
    bad = write(tmp_path / "bad.jsonl", [{"image_id": "1", "caption": "x"}, {"image_id": "1"}])
    with pytest.raises(DataError, match=f"{bad}:2"):
        load_predictions(bad)
    dup = write(tmp_path / "dup.jsonl", [{"image_id": "1", "caption": "x"}, {"image_id": "1", "caption": "y"}])
    with pytest.raises(DataError, match="already has a prediction"):
        load_predictions(dup)


def test_cli_json_table_and_per_item(tmp_path):
    p = write(tmp_path / "p.jsonl", [{"image_id": str(i), "caption": c} for i, c in enumerate(PREDS)])
    r = write(tmp_path / "r.jsonl", [{"image_id": str(i), "captions": c} for i, c in enumerate(REFS)])
    items = tmp_path / "items.jsonl"
    runner = CliRunner()
    out = runner.invoke(cli, ["metrics", "-p", str(p), "-r", str(r), "-m", "bleu_4,cider,spice", "--json",
                              "--per-item", str(items)])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    expected = score_files(p, r, "bleu_4,cider,spice")
    assert data["cider"] == pytest.approx(expected.corpus["cider"]) and data["spice"] is None
    assert "CoreNLP" in data["unavailable"]["spice"]
    rows = [json.loads(line) for line in items.read_text().splitlines()]
    assert [row["image_id"] for row in rows] == ["0", "1", "2"] and set(rows[0]) == {"image_id", "bleu_4", "cider"}
    table = runner.invoke(cli, ["metrics", "-p", str(p), "-r", str(r), "-m", "cider,spice"])
    assert table.exit_code == 0 and "cider" in table.output and "spice" in table.output
    assert "unavailable here: spice (SPICE needs the Stanford CoreNLP" in table.output
    bad = runner.invoke(cli, ["metrics", "-p", str(p), "-r", str(r), "-m", "nope"])
    assert bad.exit_code == 1 and "unknown metric 'nope'" in bad.output


def test_cli_train_captions(tmp_path):
    p = write(tmp_path / "p.jsonl", [{"image_id": str(i), "caption": c} for i, c in enumerate(PREDS)])
    r = write(tmp_path / "r.jsonl", [{"image_id": str(i), "captions": c} for i, c in enumerate(REFS)])
    train = tmp_path / "train.txt"
    train.write_text("A man riding a wave on top of a surfboard\nsomething else\n")
    out = CliRunner().invoke(cli, ["metrics", "-p", str(p), "-r", str(r), "-m", "novel_fraction", "--json",
                                   "--train-captions", str(train)])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["novel_fraction"] == pytest.approx(2 / 3)
