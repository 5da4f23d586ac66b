"""evaluate: captions from the tiny model or a file, eval.json contents, resuming, decodings, CLI."""

import hashlib
import importlib.util
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from captune.cli import cli
from captune.data.records import CaptionRecord, read_records, write_records
from captune.errors import CaptuneError, DataError
from captune.evaluate import evaluate
from captune.io import read_jsonl, write_jsonl

METRICS = ["bleu_4", "cider", "rouge_l"]


def _tiny_encoders():
    path = Path(__file__).parents[1] / "metrics" / "tiny_encoders.py"
    spec = importlib.util.spec_from_file_location("tiny_encoders_for_evaluate", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_base_model_eval_json_and_a_rerun_reuses_the_captions(colour_data, tmp_path):
    out = tmp_path / "base"
    ev = evaluate(colour_data, out, model="tiny-blip2-opt", metrics=METRICS, batch_size=4)
    preds = read_jsonl(out / "predictions.jsonl")
    assert len(preds) == 12 and {"image_id", "caption", "model", "adapter", "decoding"} <= set(preds[0])
    saved = json.loads((out / "eval.json").read_text())
    assert saved["metrics"].keys() == set(METRICS) and saved == json.loads(json.dumps(ev))
    assert saved["data"] == {
        "path": str(Path(colour_data).resolve()),
        "images": 12,
        "references": 24,
        "sha256": hashlib.sha256(Path(colour_data).read_bytes()).hexdigest(),
    }
    assert saved["model"]["source"] == "base model" and saved["model"]["base_model"] == "tiny-blip2-opt"
    assert saved["model"]["model_weights"] == "builtin:tiny-opt" and saved["model"]["dtype"] == "float32"
    assert saved["config"]["decoding_label"] == "beam(n=5)" and saved["predictions"]["captioned"] == 12
    row = saved["per_image"][0]
    assert row["caption"] == preds[0]["caption"] and set(row["scores"]) >= {"cider", "rouge_l"}
    assert len(row["references"]) == 2 and Path(row["image"]).is_absolute()
    assert set(saved["errors"]["counts"]) >= {"omission", "repetition", "url"}

    again = evaluate(colour_data, out, model="tiny-blip2-opt", metrics=METRICS)
    assert again["predictions"]["captioned"] == 0 and again["predictions"]["reused"] == 12
    assert read_jsonl(out / "predictions.jsonl") == preds and again["metrics"] == saved["metrics"]
    with pytest.raises(CaptuneError, match=r"predictions.jsonl: line 1 .*decoding strategy: 'beam' here 'greedy'"):
        evaluate(colour_data, out, model="tiny-blip2-opt", decoding="greedy", metrics=METRICS)


def test_another_model_into_the_same_out_is_refused(colour_data, tmp_path):
    out = tmp_path / "x"
    evaluate(colour_data, out, model="tiny-blip2-opt", decoding="greedy", metrics=METRICS)
    before = (out / "predictions.jsonl").read_text()
    with pytest.raises(CaptuneError) as e:
        evaluate(colour_data, out, model="shapes-blip2-opt", decoding="greedy", metrics=METRICS)
    message = str(e.value)
    assert str(out / "predictions.jsonl") in message and "model" in message
    assert "tiny-blip2-opt" in message and "shapes-blip2-opt" in message and "another --out" in message
    assert (out / "predictions.jsonl").read_text() == before
    assert json.loads((out / "eval.json").read_text())["model"]["base_model"] == "tiny-blip2-opt"


def test_decodings_files_are_checked_too(colour_data, tmp_path):
    out = tmp_path / "x"
    evaluate(colour_data, out, model="tiny-blip2-opt", decoding="greedy", decodings="top_k", metrics=METRICS)
    (out / "predictions.jsonl").unlink()
    with pytest.raises(CaptuneError, match=r"decodings/top_k.jsonl: line 1 .*shapes-blip2-opt"):
        evaluate(colour_data, out, model="shapes-blip2-opt", decoding="greedy", decodings="top_k",
                 metrics=METRICS)


def test_a_rerun_with_every_caption_present_does_not_load_the_model(colour_data, tmp_path, monkeypatch):
    from captune.models import loading

    out = tmp_path / "x"
    first = evaluate(colour_data, out, model="tiny-blip2-opt", decoding="greedy", metrics=["bleu_4"])

    def no_loading(*args, **kwargs):
        raise AssertionError("the model was loaded although every caption was there")

    monkeypatch.setattr(loading, "load_captioner", no_loading)
    monkeypatch.setattr(loading, "load_checkpoint", no_loading)
    again = evaluate(colour_data, out, model="tiny-blip2-opt", decoding="greedy", metrics=["bleu_4", "cider"])
    assert again["predictions"]["reused"] == 12 and again["metrics"]["bleu_4"] == first["metrics"]["bleu_4"]
    assert again["metrics"]["cider"] is not None


def test_decodings_share_one_pass_and_resume_per_file(colour_data, tmp_path):
    out = tmp_path / "dec"
    ev = evaluate(colour_data, out, model="tiny-blip2-opt", decodings="beam,top_k", metrics=METRICS)
    beam, top_k = read_jsonl(out / "decodings" / "beam.jsonl"), read_jsonl(out / "decodings" / "top_k.jsonl")
    assert len(beam) == len(top_k) == 12
    # The primary decoding is beam too: the same captions, from the same image features.
    assert [r["caption"] for r in beam] == [r["caption"] for r in read_jsonl(out / "predictions.jsonl")]
    rows = {r["name"]: r for r in ev["decodings"]}
    assert rows["top_k"]["label"] == "top_k(k=50,t=0.8)" and rows["beam"]["decoding"]["num_beams"] == 5
    assert {"bleu_4", "cider", "rouge_l"} <= set(rows["beam"]["metrics"])
    assert rows["beam"]["metrics"]["cider"] == pytest.approx(ev["metrics"]["cider"])
    write_jsonl(out / "decodings" / "top_k.jsonl", top_k[:9])  # as if killed after 9 images
    again = evaluate(colour_data, out, model="tiny-blip2-opt", decodings="beam,top_k", metrics=METRICS)
    assert again["predictions"]["captioned"] == 3
    assert (
        len(read_jsonl(out / "decodings" / "top_k.jsonl")) == 12
        and len(read_jsonl(out / "decodings" / "beam.jsonl")) == 12
    )


def test_predictions_file_must_cover_every_image(colour_data, tmp_path):
    records = read_records(colour_data)
    preds = tmp_path / "p.jsonl"
    write_jsonl(preds, [{"image_id": r.image_id, "caption": "a red square"} for r in records[2:]])
    with pytest.raises(DataError, match="no caption for 2 of 12 images: 'red_0.png', 'red_1.png'"):
        evaluate(colour_data, tmp_path / "out", predictions=preds, metrics=METRICS)
    write_jsonl(preds, [{"image_id": r.image_id, "caption": "a red square"} for r in records])
    ev = evaluate(colour_data, tmp_path / "out", predictions=preds, metrics=METRICS)
    assert ev["model"]["source"] == "predictions file" and ev["predictions"]["captioned"] == 0
    assert [r["caption"] for r in ev["per_image"]] == ["a red square"] * 12
    with pytest.raises(CaptuneError, match="leave out --model"):
        evaluate(colour_data, tmp_path / "x", predictions=preds, model="tiny-blip2-opt")
    with pytest.raises(CaptuneError, match="line 1 .*does not say which model weights.*another --out"):
        evaluate(colour_data, tmp_path / "out", model="tiny-blip2-opt", metrics=METRICS)


def test_records_without_references_are_refused(tmp_path):
    path = tmp_path / "r.jsonl"
    write_records(path, [CaptionRecord("a", "a.png", ["a cat"]), CaptionRecord("b", "b.png", [])])
    with pytest.raises(DataError, match="1 records have no reference captions"):
        evaluate(path, tmp_path / "out", predictions=path)


def test_clip_model_adds_clipscore_and_the_hallucination_check(colour_data, tmp_path):
    clip = _tiny_encoders().build_tiny_clip(tmp_path / "clip")
    records = read_records(colour_data)
    preds = tmp_path / "p.jsonl"
    write_jsonl(
        preds, [{"image_id": r.image_id, "caption": "a red square with a purple star"} for r in records]
    )
    ev = evaluate(
        colour_data, tmp_path / "out", predictions=preds, metrics=["clipscore", "cider"], clip_model=str(clip)
    )
    assert ev["metrics"]["clipscore"] is not None and "clipscore" in ev["per_image"][0]["scores"]
    assert "hallucination" in ev["errors"]["checked"]
    for row in ev["per_image"]:
        assert set(row["flags"].get("hallucination", [])) <= set(row["flags"]["unsupported"])
        assert {"purple", "star"} <= set(row["flags"]["unsupported"])


def test_cli_evaluate_json(colour_data, tmp_path):
    records = read_records(colour_data)
    preds = tmp_path / "p.jsonl"
    write_jsonl(preds, [{"image_id": r.image_id, "caption": r.captions[0]} for r in records])
    res = CliRunner().invoke(
        cli,
        [
            "evaluate",
            "--data",
            str(colour_data),
            "--predictions",
            str(preds),
            "--out",
            str(tmp_path / "out"),
            "--metrics",
            "bleu_1,cider",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["images"] == 12 and out["metrics"]["bleu_1"] > 0.99 and out["errors"]["omission"] == 0
    assert (tmp_path / "out" / "eval.json").exists()
    text = CliRunner().invoke(
        cli,
        [
            "evaluate",
            "--data",
            str(colour_data),
            "--predictions",
            str(preds),
            "--out",
            str(tmp_path / "out"),
            "--metrics",
            "bleu_4,cider",
        ],
    )
    assert "12 images" in text.output and "cider" in text.output


def test_default_metrics_are_those_that_can_run_here(monkeypatch):
    from captune.metrics import default_metrics, ptb, spice

    monkeypatch.setattr(ptb.shutil, "which", lambda name: "/usr/bin/java")
    monkeypatch.setattr(spice, "missing_files", list)
    names, left_out = default_metrics()
    assert {"bleu_4", "meteor", "rouge_l", "cider", "spice", "distinct_2"} <= set(names) and left_out == {}
    monkeypatch.setattr(spice, "missing_files", lambda: [Path("lib/stanford-corenlp-3.6.0.jar")])
    names, left_out = default_metrics()
    assert "spice" not in names and "meteor" in names and "stanford-corenlp-3.6.0.jar" in left_out["spice"]
    monkeypatch.setattr(ptb.shutil, "which", lambda name: None)
    names, left_out = default_metrics()
    assert {"meteor", "spice"} == set(left_out) and "Java" in left_out["meteor"] and "bleu_4" in names


def test_metrics_that_cannot_run_are_named_once(colour_data, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", "")  # no Java: neither METEOR nor SPICE can run
    records = read_records(colour_data)
    preds = tmp_path / "p.jsonl"
    write_jsonl(preds, [{"image_id": r.image_id, "caption": r.captions[0]} for r in records])
    args = ["evaluate", "--data", str(colour_data), "--predictions", str(preds), "--out", str(tmp_path / "out")]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    lines = [line for line in res.output.splitlines() if "unavailable" in line]
    assert len(lines) == 1 and "meteor" in lines[0] and "spice" in lines[0] and "Java" in lines[0]
    saved = json.loads((tmp_path / "out" / "eval.json").read_text())
    assert {"bleu_4", "rouge_l", "cider", "distinct_1"} <= set(saved["metrics"])
    assert None not in saved["metrics"].values() and {"meteor", "spice"} <= set(saved["unavailable"])
    asked = CliRunner().invoke(cli, args + ["--metrics", "bleu_4,meteor,spice"])
    lines = [line for line in asked.output.splitlines() if "unavailable" in line]
    assert len(lines) == 1 and "meteor" in lines[0] and "spice" in lines[0]
    saved = json.loads((tmp_path / "out" / "eval.json").read_text())
    assert saved["metrics"]["meteor"] is None and saved["metrics"]["spice"] is None


def test_evaluation_summary_keeps_each_decodings_metrics():
    from captune.evaluate.evaluation import evaluation_summary

    report = {"data": {"images": 3}, "metrics": {"cider": 1.5}, "unavailable": {"spice": "no Java"},
              "errors": {"counts": {"omission": 1}},
              "decodings": [{"name": "beam", "label": "beam (5)", "metrics": {"cider": 1.5}},
                            {"name": "top_k", "label": "top_k", "metrics": {"cider": 0.9}}]}
    assert evaluation_summary(report, "runs/x") == {
        "out": "runs/x", "images": 3, "metrics": {"cider": 1.5}, "unavailable": {"spice": "no Java"},
        "errors": {"omission": 1}, "decodings": {"beam": {"cider": 1.5}, "top_k": {"cider": 0.9}}}
    assert "decodings" not in evaluation_summary(report | {"decodings": None}, "runs/x")
