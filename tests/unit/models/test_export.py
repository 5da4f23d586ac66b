"""``captune export``: the merged model captions as base + adapter + full parts do, for every
family and finetune option, and its ``captune.json`` names the base model it was merged onto."""

import numpy as np
import pytest
import torch
from PIL import Image

from captune.config import load_config
from captune.models.export import export_merged
from captune.models.family import Example, adapt
from captune.models.loading import load_captioner, load_checkpoint, read_checkpoint_meta
from captune.models.peft import FinetuneConfig, apply_finetuning
from captune.train.checkpoint import save_checkpoint
from captune.train.config import TrainConfig


def _outputs(model, processor):
    """Greedy ids of three random images and the teacher-forced loss of one caption on them."""
    captioner, batcher = adapt(model, processor)
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)) for _ in range(3)]
    with torch.no_grad():
        ids = captioner.generate(**batcher.generation_batch([Example(i) for i in images]),
                                 max_new_tokens=8, min_new_tokens=8, do_sample=False, num_beams=1)
        loss = captioner(**batcher.train_batch([Example(i, "", "a red square") for i in images])).loss
    return ids.tolist(), loss.item()


def _checkpoint(directory, name, **finetune):
    """A checkpoint of ``name`` whose trainable weights moved as if trained; and its outputs."""
    model, processor = load_captioner(name)
    model = apply_finetuning(model, FinetuneConfig(**finetune))
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.3 * torch.randn(p.shape, generator=g))
    model.eval()
    cfg = load_config(TrainConfig, None, ["data.train=unused.jsonl"])
    save_checkpoint(directory, model, processor, cfg, {"base_model": name, "prompt": ""})
    return _outputs(model, processor)


@pytest.mark.parametrize("name,finetune", [
    ("tiny-blip2-opt", {"method": "dora", "qformer": "lora", "lm": "lora", "targets": "all_linear"}),
    ("tiny-blip2-t5", {"method": "rslora", "qformer": "full", "lm": "lora"}),
    ("tiny-llava", {"method": "rslora", "vision": "lora", "projector": "full", "lm": "lora"}),
    ("tiny-blip", {"method": "dora", "vision": "lora", "lm": "full"}),
])
def test_merged_export_captions_as_the_adapter(tmp_path, name, finetune):
    trained = _checkpoint(tmp_path / "ckpt", name, **finetune)
    assert trained[1] != _outputs(*load_captioner(name))[1]  # the adapter and full parts change the model
    adapter, processor, _ = load_checkpoint(tmp_path / "ckpt")
    assert _outputs(adapter, processor) == trained
    merged, processor, meta = load_checkpoint(export_merged(tmp_path / "ckpt", tmp_path / "merged"))
    assert meta["kind"] == "full" and merged.dtype == torch.float32
    ids, loss = _outputs(merged, processor)
    assert ids == trained[0] and loss == pytest.approx(trained[1], abs=1e-5)


def test_export_onto_another_base_model_records_it(tmp_path):
    """``--model`` merges onto another copy of the base; the export names that one, not the
    checkpoint's (captions and evaluation reports show it as the model)."""
    _checkpoint(tmp_path / "ckpt", "tiny-blip2-opt", lm="lora")
    moved = tmp_path / "base"
    for part in load_captioner("tiny-blip2-opt"):
        part.save_pretrained(moved)
    out = export_merged(tmp_path / "ckpt", tmp_path / "merged", model=str(moved))
    meta = read_checkpoint_meta(out)
    assert meta["base_model"] == str(moved) and meta["merged_from"] == str(tmp_path / "ckpt")
