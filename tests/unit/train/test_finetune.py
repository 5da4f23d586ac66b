"""Training on the tiny model: loss goes down, best/ follows monitor, early stopping, resume."""

import json
import math

import pytest
import torch
from safetensors.torch import load_file

from captune.config import load_config
from captune.errors import CaptuneError
from captune.io import read_jsonl
from captune.train.config import TrainConfig
from captune.train.loop import Finetune, finetune


def make_cfg(data, out, *overrides):
    base = [f"data.train={data}", f"data.val={data}", f"output_dir={out}", "train.batch_size=4",
            "train.lr=3e-3", "finetune.targets=all_linear", "finetune.qformer=lora", "eval.metrics=[]",
            "train.log_every_steps=1", "train.feature_cache=false"]
    return load_config(TrainConfig, None, base + list(overrides))


def events(out, kind):
    return [e for e in read_jsonl(out / "metrics.jsonl") if e["event"] == kind]


def test_twenty_steps_lower_the_training_loss(colour_data, tmp_path):
    out = tmp_path / "run"
    summary = finetune(make_cfg(colour_data, out, "train.max_steps=20", "eval.every_steps=10"))
    losses = [e["loss"] for e in events(out, "train")]
    assert len(losses) == 20 and summary["steps"] == 20
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3 - 0.1
    assert (out / "config.yaml").exists() and (out / "checkpoints" / "last" / "adapter_model.safetensors").exists()
    saved = load_config(TrainConfig, out / "config.yaml")
    assert saved.train.max_steps == 20


def test_best_follows_monitor_and_early_stopping(colour_data, tmp_path):
    out = tmp_path / "run"
    # A learning rate this small changes nothing measurable: no evaluation improves on the first.
    summary = finetune(make_cfg(colour_data, out, "train.max_steps=40", "eval.every_steps=4", "eval.patience=2",
                                "train.lr=1e-12", "train.scheduler=constant"))
    evals = events(out, "eval")
    assert summary["stopped_early"] and len(evals) == 3 and summary["steps"] == 12
    assert events(out, "early_stop")[0]["step"] == 12
    best = json.loads((out / "checkpoints" / "best" / "captune.json").read_text())
    assert best["step"] == min(evals, key=lambda e: (e["val_loss"], e["step"]))["step"] == 4


def test_best_is_the_lowest_val_loss(colour_data, tmp_path):
    out = tmp_path / "run"
    finetune(make_cfg(colour_data, out, "train.max_steps=24", "eval.every_steps=6"))
    evals = events(out, "eval")
    best = json.loads((out / "checkpoints" / "best" / "captune.json").read_text())
    assert best["step"] == min(evals, key=lambda e: e["val_loss"])["step"]
    assert best["metrics"]["val_loss"] == pytest.approx(min(e["val_loss"] for e in evals))


# Per family: the model and the parts it trains beside LoRA on the language model.
FAMILY_RUNS = {"blip2": ("model.name=tiny-blip2-opt",),
               "llava": ("model.name=tiny-llava", "finetune.qformer=frozen", "finetune.projector=full"),
               "blip": ("model.name=tiny-blip", "finetune.qformer=frozen")}


@pytest.mark.parametrize("family", list(FAMILY_RUNS))
def test_resume_matches_an_uninterrupted_run(colour_data, tmp_path, monkeypatch, family):
    args = ("train.max_steps=14", "train.save_every_steps=5", "eval.every_steps=7", "finetune.dropout=0.1",
            *FAMILY_RUNS[family])
    straight = tmp_path / "straight"
    finetune(make_cfg(colour_data, straight, *args))

    crashed = tmp_path / "crashed"
    original = Finetune._after_step

    def crash_at_8(self):
        original(self)
        if self.state.step == 8:
            raise KeyboardInterrupt

    monkeypatch.setattr(Finetune, "_after_step", crash_at_8)
    with pytest.raises(KeyboardInterrupt):
        finetune(make_cfg(colour_data, crashed, *args))
    monkeypatch.setattr(Finetune, "_after_step", original)
    state = json.loads((crashed / "checkpoints/last/trainer_state/state.json").read_text())
    assert state["step"] == 7  # the evaluation at step 7 saved last/; step 8 was lost
    with pytest.raises(CaptuneError, match="--resume"):
        finetune(make_cfg(colour_data, crashed, *args))
    finetune(make_cfg(colour_data, crashed, *args), resume=True)

    # the LLaVA run also trains a part (its projector) in full, saved beside the adapter
    for weights in ["adapter_model.safetensors"] + (["full_parts.safetensors"] if family == "llava" else []):
        a = load_file(straight / "checkpoints/last" / weights)
        b = load_file(crashed / "checkpoints/last" / weights)
        assert a.keys() == b.keys()
        for k in a:
            assert torch.allclose(a[k], b[k], atol=1e-6), k
    assert [e["resumed_at"] for e in events(crashed, "resume")] == [7]


def test_dry_run_shows_supervised_tokens_and_checks_the_image(colour_data):
    from captune.train.dryrun import dry_run

    report = dry_run(make_cfg(colour_data, "unused"))
    text = report.text()
    assert report.image_matters and "the model sees the image" in text
    assert "<image>×4 </s>⟦a red square⏎⟧" in text or "⟦a red" in text
    assert "trainable params:" in text


def test_feature_cache_gives_the_same_training(colour_data, tmp_path):
    plain = finetune(make_cfg(colour_data, tmp_path / "a", "train.max_steps=6", "eval.every_steps=6"))
    cached = finetune(make_cfg(colour_data, tmp_path / "b", "train.max_steps=6", "eval.every_steps=6",
                               "train.feature_cache=true"))
    first = events(tmp_path / "b", "start")[0]
    assert first["feature_cache"] is True
    assert plain["best_score"] == pytest.approx(cached["best_score"], abs=1e-5)


def test_feature_cache_reads_val_images_from_the_val_files_folder(colour_data, tmp_path):
    """Train and val files in different folders, with the same relative image names: each
    record's features come from its own file's folder."""
    import shutil

    from PIL import Image, ImageOps

    val_dir = tmp_path / "val"
    shutil.copytree(colour_data.parent, val_dir)
    for image in val_dir.glob("*.png"):  # same names, other pictures
        ImageOps.flip(Image.open(image)).rotate(90).save(image)
    val = val_dir / "records.jsonl"
    runs = [finetune(make_cfg(colour_data, tmp_path / name, "train.max_steps=2", "eval.every_steps=2",
                              f"data.val={val}", f"train.feature_cache={flag}"))
            for name, flag in (("plain", "false"), ("cached", "true"))]
    assert runs[0]["best_score"] == pytest.approx(runs[1]["best_score"], abs=1e-5)


def test_full_finetuning_at_another_resolution(colour_data, tmp_path):
    out = tmp_path / "run"
    summary = finetune(make_cfg(colour_data, out, "train.max_steps=3", "eval.every_steps=3", "model.image_size=48",
                                "finetune.vision=full", "finetune.qformer=full", "finetune.lm=full"))
    assert summary["steps"] == 3
    best = out / "checkpoints" / "best"
    assert json.loads((best / "captune.json").read_text())["kind"] == "full"
    assert (best / "model.safetensors").exists()
    from transformers import AutoProcessor

    assert AutoProcessor.from_pretrained(best).image_processor.size["height"] == 48
    assert "trainable%: 100.0000" in summary["trainable"]


def test_generation_metrics_during_training_pick_best(colour_data, tmp_path):
    out = tmp_path / "run"
    finetune(make_cfg(colour_data, out, "train.max_steps=12", "eval.every_steps=4",
                      "eval.metrics=[bleu_4,cider]", "eval.monitor=cider+bleu_4",
                      "eval.decoding.strategy=greedy", "eval.decoding.max_new_tokens=8"))
    evals = events(out, "eval")
    assert len(evals) == 3 and all({"cider", "bleu_4", "val_loss"} <= set(e) for e in evals)
    best = json.loads((out / "checkpoints" / "best" / "captune.json").read_text())
    top = max(evals, key=lambda e: (e["cider"] + e["bleu_4"], -e["step"]))
    assert best["step"] == top["step"]
    preds = read_jsonl(out / "predictions" / "val_step000012.jsonl")
    assert len(preds) == 12 and {"image_id", "caption", "references"} <= set(preds[0])


def test_generation_metrics_use_images_from_the_whole_validation_file(colour_data, tmp_path):
    out = tmp_path / "run"
    finetune(make_cfg(colour_data, out, "train.max_steps=2", "eval.every_steps=2", "eval.subset=4",
                      "eval.metrics=[bleu_4]", "eval.decoding.strategy=greedy", "eval.decoding.max_new_tokens=4"))
    ids = [r["image_id"] for r in read_jsonl(colour_data)]
    captioned = [p["image_id"] for p in read_jsonl(out / "predictions" / "val_step000002.jsonl")]
    # an ordered file (by event, by date) must not be judged on its first few images only
    assert captioned == [ids[i * len(ids) // 4] for i in range(4)]
    assert captioned[-1] in ids[len(ids) // 2:]


def test_validation_keeps_one_metric_resources_for_the_run_and_closes_it(colour_data, tmp_path, monkeypatch):
    from captune.metrics import MetricResources

    made, closed = [], []
    real_init, real_close = MetricResources.__init__, MetricResources.close
    monkeypatch.setattr(MetricResources, "__init__", lambda self, **kw: made.append(self) or real_init(self, **kw))
    monkeypatch.setattr(MetricResources, "close", lambda self: closed.append(self) or real_close(self))
    finetune(make_cfg(colour_data, tmp_path / "run", "train.max_steps=4", "eval.every_steps=2", "eval.subset=4",
                      "eval.metrics=[bleu_4]", "eval.decoding.strategy=greedy", "eval.decoding.max_new_tokens=4"))
    assert len(events(tmp_path / "run", "eval")) == 2  # two validations, one MetricResources
    assert len(made) == 1 and closed == made


def test_spread_takes_evenly_spaced_indices():
    from captune.train.validation import spread

    assert spread(10, 5) == [0, 2, 4, 6, 8]
    assert spread(3, 5) == [0, 1, 2]
    assert len(set(spread(1001, 30))) == 30 and max(spread(1001, 30)) > 900


def test_activation_checkpointing_trains_alike_without_the_deprecated_call(colour_data, tmp_path):
    import warnings

    args = ("train.max_steps=3", "eval.every_steps=3", "finetune.dropout=0")
    finetune(make_cfg(colour_data, tmp_path / "plain", *args))
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*gradient_checkpointing_enable.*deprecated", category=FutureWarning)
        finetune(make_cfg(colour_data, tmp_path / "checkpointed", *args, "train.gradient_checkpointing=true"))
    plain = [e["loss"] for e in events(tmp_path / "plain", "train")]
    checkpointed = [e["loss"] for e in events(tmp_path / "checkpointed", "train")]
    assert len(plain) == 3 and checkpointed == pytest.approx(plain, rel=1e-5)


@pytest.mark.parametrize("family", list(FAMILY_RUNS))
def test_kbit_preparation_trains_each_family_without_the_deprecated_call(colour_data, tmp_path, monkeypatch, family):
    """The QLoRA path as far as a CPU can take it: the model comes back flagged as loaded in 4 bits
    (what peft's k-bit preparation reads; the weights stay float), then LoRA and checkpointing."""
    import warnings

    import captune.train.loop as loop

    real = loop.load_captioner

    def flagged_4bit(name, dtype, quantization):
        assert quantization == "4bit"
        model, processor = real(name, dtype, "none")
        model.is_loaded_in_4bit = True
        return model, processor

    monkeypatch.setattr(loop, "load_captioner", flagged_4bit)
    args = ("train.max_steps=2", "eval.every_steps=2", "model.quantization=4bit",
            "train.gradient_checkpointing=true", *FAMILY_RUNS[family])
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*gradient_checkpointing_enable.*deprecated", category=FutureWarning)
        summary = finetune(make_cfg(colour_data, tmp_path / "run", *args))
    losses = [e["loss"] for e in events(tmp_path / "run", "train")]
    assert summary["steps"] == 2 and len(losses) == 2 and all(math.isfinite(x) for x in losses)
    saved = load_file(tmp_path / "run/checkpoints/last/adapter_model.safetensors")
    assert saved and all("lora_" in k for k in saved)
