"""The embedded demo, end to end: files, summary and report, and its claim that fine-tuning helped.

The short run keeps the demo's data, split, evaluation and report but trains a cheaper recipe: the
ViT frozen (its features cached) and batches of 8, 800 steps on 400 images, about 55 s of CPU. On
seeds 0, 1 and 2, with the LoRA dropout of 0.05 the demo used then (it now trains without), it
measured BLEU-4 +0.155, +0.139, +0.195 (interval lows +0.107, +0.090, +0.149), CIDEr-D +0.99,
+1.12, +1.56 (lows +0.63, +0.75, +1.17) and attribute accuracy +0.048, -0.019, +0.083 (interval
highs +0.093, +0.030, +0.119); the test passes without dropout, not re-measured on every seed.
"""

import json

import pytest

from captune.data.near_duplicates import DEFAULT_THRESHOLD
from captune.demo.run import run_demo, summary_table

pytestmark = pytest.mark.integration

SHORT = {"n_images": 400, "steps": 800, "seed": 0,
         "overrides": ["finetune.vision=frozen", "train.batch_size=8", "eval.every_steps=200"]}
ATTRIBUTE_MARGIN = 0.05  # the attribute delta may dip this far below 0 (measured lowest: -0.019)


@pytest.fixture(scope="module")
def short_demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "demo"
    messages = []
    return out, run_demo(out, progress=False, echo=messages.append, review=True, **SHORT), messages


def test_short_demo_ends_with_a_ready_review_study(short_demo):
    from captune.review import Study

    out, summary, messages = short_demo
    study = Study(summary["review"]["study"])
    n_test = len((out / "data" / "splits" / "test.jsonl").read_text().splitlines())
    assert study.systems() == ["base", "finetuned"] and study.counts()["items"] == n_test
    assert messages[-1].strip() == f"serve it: captune review serve {out / 'review'}"
    assert "#token=" not in (out / "summary.json").read_text()  # tokens are shown once, never stored


def test_short_demo_writes_summary_report_and_checkpoints(short_demo):
    out, summary, messages = short_demo
    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk["report"] == summary["report"] and (out / "report.html").exists()
    assert (out / "report.md").exists()
    for name in ("base", "finetuned"):
        assert {"bleu_4", "cider", "rouge_l", "clipscore", "attr_accuracy"} <= set(on_disk[name])
        assert (out / "run" / "eval" / name / "eval.json").exists()
    best = out / "run" / "checkpoints" / "best"
    assert (best / "adapter_model.safetensors").exists() and (best / "README.md").exists()
    assert "base_model" in (best / "README.md").read_text()
    cider = summary["compare"]["cider"]
    assert cider["delta"] == pytest.approx(cider["b"] - cider["a"])
    assert cider["ci_low"] <= cider["delta"] <= cider["ci_high"]
    assert any("fine-tuning" in m for m in messages)
    assert "cider" in summary_table(summary)
    html = (out / "report.html").read_text()
    assert "<h2" in html and "data:image/png;base64" in html
    with pytest.raises(Exception, match="already holds a demo run"):
        run_demo(out, n_images=60, steps=10, echo=messages.append)


def test_short_demo_keeps_near_duplicates_in_one_split(short_demo):
    out, _, messages = short_demo
    split_of = {}
    for name in ("train", "val", "test"):
        for line in (out / "data" / "splits" / f"{name}.jsonl").read_text().splitlines():
            record = json.loads(line)
            split_of[record["image_id"]] = (name, record["meta"].get("near_duplicate_of"))
    linked = [(name, split_of[original][0]) for name, original in split_of.values() if original]
    assert len(linked) >= 10 and all(a == b for a, b in linked)
    grouping = json.loads((out / "data" / "splits" / "split.json").read_text())["grouping"]
    assert grouping["near_duplicates"]["threshold"] == DEFAULT_THRESHOLD and grouping["largest_unit"] <= 4
    assert any(f"{grouping['grouped_units']} groups of near-duplicates" in m for m in messages)


def assert_finetuning_helped(compare):
    for name in ("bleu_4", "cider"):
        m = compare[name]
        assert m["delta"] > 0 and m["ci_low"] > 0, (name, m)
    attr = compare["attr_accuracy"]
    assert attr["ci_high"] > 0 and attr["delta"] > -ATTRIBUTE_MARGIN, attr


def test_short_demo_finetuning_beats_the_base(short_demo):
    assert_finetuning_helped(short_demo[1]["compare"])


@pytest.mark.slow
def test_default_demo_finetuning_beats_the_base(tmp_path):
    summary = run_demo(tmp_path / "demo", progress=False, echo=lambda m: None)
    assert_finetuning_helped(summary["compare"])
