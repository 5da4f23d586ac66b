"""A tiny LLaVA-1.5 LoRA run from the command line: train with the shipped preset, caption, evaluate the
base and the fine-tuned model, compare them; the model card's snippet (transformers + peft alone)
captions as captune does. The validation loss measured 5.888, 5.737, 5.724 at steps
20, 40, 60 of the preset (lr 3e-3) on the colour squares: the run here (20 steps, evaluated every 10)
must lower it between its two evaluations."""

import contextlib
import io
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from captune.cli import cli
from captune.io import read_jsonl

pytestmark = pytest.mark.integration
PRESET = Path(__file__).resolve().parents[2] / "configs" / "finetune" / "tiny-llava-lora.yaml"
PROMPT = "Write a short caption for this photo."  # the preset's


def run(*args: str) -> dict:
    result = CliRunner().invoke(cli, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_tiny_llava_train_caption_evaluate_compare(colour_data, tmp_path):
    data, out = str(colour_data), tmp_path / "run"
    summary = run("train", str(PRESET), f"data.train={data}", f"data.val={data}", f"output_dir={out}",
                  "train.max_steps=20", "eval.every_steps=10", "eval.metrics=[]", "--no-progress")
    evals = [e for e in read_jsonl(out / "metrics.jsonl") if e["event"] == "eval"]
    assert summary["steps"] == 20 and [e["step"] for e in evals] == [10, 20]
    assert evals[1]["val_loss"] < evals[0]["val_loss"]
    best = out / "checkpoints" / "best"
    meta = json.loads((best / "captune.json").read_text())
    assert meta["base_model"] == "tiny-llava" and meta["prompt"] == PROMPT and meta["family"] == "llama"
    assert (best / "full_parts.safetensors").exists()  # the projector, trained in full beside LoRA

    captions = run("caption", "--adapter", str(best), "--input", data, "--out", str(tmp_path / "c.jsonl"),
                   "--decoding", "greedy")
    assert captions["captioned"] == 12 and len(read_jsonl(tmp_path / "c.jsonl")) == 12

    common = ["--data", data, "--decoding", "greedy", "--metrics", "bleu_4,cider"]
    base = run("evaluate", "--model", "tiny-llava", "--prompt", PROMPT, "--out", str(tmp_path / "base"), *common)
    tuned = run("evaluate", "--adapter", str(best), "--out", str(tmp_path / "tuned"), *common)
    assert {"bleu_4", "cider"} <= set(base["metrics"]) and {"bleu_4", "cider"} <= set(tuned["metrics"])
    compared = run("compare", str(tmp_path / "base"), str(tmp_path / "tuned"))
    assert compared["images"] == 12 and compared["b"]["model"]["source"] == "fine-tuned checkpoint"
    cider = compared["metrics"]["cider"]
    assert cider["delta"] == pytest.approx(tuned["metrics"]["cider"] - base["metrics"]["cider"])
    assert cider["ci_low"] <= cider["delta"] <= cider["ci_high"]


def test_the_model_card_snippet_of_a_llava_run_captions_as_captune_does(colour_data, tmp_path):
    from captune.models.tiny import build_tiny_llava

    out = tmp_path / "run"
    run("train", str(PRESET), f"data.train={colour_data}", f"data.val={colour_data}", f"output_dir={out}",
        "train.max_steps=4", "eval.every_steps=4", "eval.metrics=[]", "--no-progress")
    base = tmp_path / "base"  # the same tiny weights, saved where from_pretrained can read them
    model, processor = build_tiny_llava()
    model.save_pretrained(base)
    processor.save_pretrained(base)
    best = out / "checkpoints" / "best"
    meta = json.loads((best / "captune.json").read_text())
    (best / "captune.json").write_text(json.dumps(meta | {"base_model": str(base)}))
    assert CliRunner().invoke(cli, ["report", str(out), "--model-card"]).exit_code == 0
    card = (best / "README.md").read_text()
    assert "LlavaForConditionalGeneration" in card and "- llava" in card and "Llama language model" in card
    assert "| what trains | vision encoder: frozen, projector: " in card and "Q-Former" not in card
    image = colour_data.parent / "red_0.png"
    code = re.search(r"```python\n(.*?)```", card, re.DOTALL).group(1).replace("photo.jpg", str(image))
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(code, {})  # noqa: S102 - the model card snippet is the code under test
    run("caption", "--adapter", str(best), "--input", str(colour_data), "--out", str(tmp_path / "c.jsonl"), "--raw")
    ours = next(r["caption"] for r in read_jsonl(tmp_path / "c.jsonl") if r["image_id"] == "red_0.png")
    assert " ".join(printed.getvalue().split()) == ours
