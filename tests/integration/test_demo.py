"""A shortened embedded demo, end to end: files, summary and report."""

import json

import pytest

from captune.demo.run import run_demo, summary_table

pytestmark = pytest.mark.integration


def test_short_demo_writes_summary_report_and_checkpoints(tmp_path):
    out = tmp_path / "demo"
    messages = []
    summary = run_demo(out, n_images=60, steps=10, echo=messages.append)
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
