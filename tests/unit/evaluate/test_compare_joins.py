"""compare and evaluate join captions, references and scores by image id: evaluations that do not
share references, records that name an image twice, and metrics where lower is better must not
give a number or a verdict that looks right and is not."""

import pytest

from captune.data.records import CaptionRecord, write_records
from captune.errors import DataError
from captune.evaluate import evaluate
from captune.evaluate.comparison import compare_evals
from captune.io import write_jsonl
from captune.metrics import score
from captune.report.text import verdict

REFS = [
    ["a red circle", "a red circle on white", "red circle"],
    ["a blue square", "blue square here", "a small blue square"],
    ["a green star", "green star shape", "a green star"],
    ["a big dog", "the dog runs", "a dog"],
]
CAPTIONS = ["a red circle", "a blue square", "a green star", "a big dog"]


def loaded(name, captions, refs, metrics=("bleu_4", "cider", "rouge_l"), ids=None):
    """An ``eval.json`` as ``load_eval`` returns it, scored by ``captune.metrics``."""
    result = score(list(captions), refs, metrics=list(metrics))
    ids = ids or [f"img{k}" for k in range(len(captions))]
    return {
        "dir": name,
        "name": name,
        "metrics": dict(result.corpus),
        "per_image": [
            {"image_id": i, "caption": c, "references": r, "scores": s}
            for i, c, r, s in zip(ids, captions, refs, result.per_item)
        ],
    }


def test_evaluations_with_other_references_for_the_same_images_are_refused():
    other = [["a cat"], ["a house"], ["a tree"], ["a car"]]
    a, b = loaded("A", CAPTIONS, REFS), loaded("B", CAPTIONS, other)
    # B's BLEU and CIDEr against its own references are about 0; scoring its captions against A's
    # references instead would report B = A and a delta of 0.
    assert b["metrics"]["cider"] < 1e-9 < a["metrics"]["cider"]
    with pytest.raises(DataError, match=r"4 images have other references in B than in A \(img0, img1"):
        compare_evals(a, b, resamples=20)


def test_references_in_another_order_are_the_same_references():
    a = loaded("A", CAPTIONS, REFS)
    b = loaded("B", ["a circle", *CAPTIONS[1:]], [r[::-1] for r in REFS])
    out = compare_evals(a, b, resamples=20)
    assert out["metrics"]["cider"]["b"] == pytest.approx(b["metrics"]["cider"], abs=1e-9)
    assert "per_image_mean" not in out["metrics"]["cider"]["flags"]


def test_an_image_listed_twice_in_an_evaluation_is_refused():
    a = loaded("A", CAPTIONS, REFS, ids=["img0", "img1", "img2", "img0"])
    b = loaded("B", CAPTIONS, REFS, ids=["img0", "img1", "img2", "img0"])
    with pytest.raises(DataError, match="A lists image img0 twice"):
        compare_evals(a, b, resamples=20)


def test_records_that_name_an_image_twice_are_refused_by_evaluate(tmp_path):
    records = tmp_path / "records.jsonl"
    write_records(
        records,
        [
            CaptionRecord("cat", "cat.png", ["a cat on a mat", "a cat"]),
            CaptionRecord("dog", "dog.png", ["a dog in the park"]),
            CaptionRecord("cat", "cat2.png", ["a black cat"]),
        ],
    )
    preds = tmp_path / "preds.jsonl"
    write_jsonl(preds, [{"image_id": "cat", "caption": "a cat"}, {"image_id": "dog", "caption": "a dog"}])
    with pytest.raises(DataError, match=r"records.jsonl: line 3: image id 'cat' again \(first on line 1\)"):
        evaluate(records, tmp_path / "out", predictions=preds, metrics=["bleu_4"])


def test_a_clear_drop_in_perplexity_is_better():
    n = 30
    a = {"dir": "A", "name": "A", "metrics": {"perplexity": 20.0}, "per_image": []}
    b = {"dir": "B", "name": "B", "metrics": {"perplexity": 10.0}, "per_image": []}
    for k in range(n):
        for ev, value in ((a, 20.0 + k % 3), (b, 10.0 + k % 3)):
            ev["per_image"].append(
                {"image_id": f"img{k}", "caption": "x", "references": ["x"], "scores": {"perplexity": value}}
            )
    row = compare_evals(a, b, resamples=200)["metrics"]["perplexity"]
    assert row["delta"] == pytest.approx(-10.0) and row["significant"]
    assert row["better"] == "lower" and verdict(row) == "better"


def test_predictions_with_numeric_image_ids_join_the_records_ids(tmp_path):
    records = tmp_path / "records.jsonl"
    write_records(
        records, [CaptionRecord("1", "1.png", ["a red circle"]), CaptionRecord("2", "2.png", ["a dog"])]
    )
    preds = tmp_path / "preds.jsonl"  # COCO results files number their images
    write_jsonl(preds, [{"image_id": 2, "caption": "a dog"}, {"image_id": 1, "caption": "a red circle"}])
    ev = evaluate(records, tmp_path / "out", predictions=preds, metrics=["bleu_1"])
    assert [(r["image_id"], r["caption"]) for r in ev["per_image"]] == [("1", "a red circle"), ("2", "a dog")]
    in_place = tmp_path / "in-place" / "predictions.jsonl"  # the folder's own file is read, not copied
    write_jsonl(in_place, [{"image_id": 2, "caption": "a dog"}, {"image_id": 1, "caption": "a red circle"}])
    ev = evaluate(records, in_place.parent, predictions=in_place, metrics=["bleu_1"])
    assert [(r["image_id"], r["caption"]) for r in ev["per_image"]] == [("1", "a red circle"), ("2", "a dog")]


def test_a_predictions_file_with_two_captions_for_an_image_is_refused(tmp_path):
    records = tmp_path / "records.jsonl"
    write_records(
        records, [CaptionRecord("cat", "cat.png", ["a cat"]), CaptionRecord("dog", "dog.png", ["a dog"])]
    )
    preds = tmp_path / "preds.jsonl"
    write_jsonl(
        preds,
        [
            {"image_id": "cat", "caption": "a cat"},
            {"image_id": "dog", "caption": "a dog"},
            {"image_id": "cat", "caption": "a bird"},
        ],
    )
    with pytest.raises(DataError, match=r"preds.jsonl: line 3: a second caption for image 'cat' \(line 1\)"):
        evaluate(records, tmp_path / "out", predictions=preds, metrics=["bleu_1"])


def test_the_interval_is_described_at_the_confidence_asked_for():
    a, b = (
        loaded("A", CAPTIONS, REFS, metrics=["rouge_l"]),
        loaded("B", CAPTIONS[::-1], REFS, metrics=["rouge_l"]),
    )
    assert compare_evals(a, b, resamples=20)["interval"].startswith("95% percentile bootstrap interval")
    assert compare_evals(a, b, resamples=20, confidence=0.9)["interval"].startswith("90% percentile")
