"""The shapes captioner: its tokenizer, its fresh weights, its pretraining, and how it is measured.

The ViT starts with 2-D sine-cosine positions and a dense attribute warm-up, then stays frozen
(``captune.demo.vision``). Pretraining of the Q-Former and the LM is captune's own fine-tuning
recipe (``captune.train.loop.finetune``), started from the warmed-up model saved to a folder:
the recipe already does what from-scratch training needs (AdamW with warmup and cosine decay,
clipping, seeded data order, validation loss, checkpoints, the frozen ViT's feature cache), so
there is no second training loop to keep correct.
Dropout is off: the world draws fresh scenes for every image, and the demo's fine-tunes are short.

    model, processor = init_captioner(tokenizer, CaptionerArch(), seed=0)
    captions, figures = measure(model, processor, records, image_root)
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from captune.demo.vision import fresh_batches, init_positions, warm_up_vision
from captune.models.tiny import build_tiny_tokenizer, tiny_blip2_config, tiny_image_processor

GREEDY = {"strategy": "greedy", "max_new_tokens": 48}
BEAM = {"strategy": "beam", "num_beams": 5, "max_new_tokens": 48}


def caption_corpus(*worlds) -> str:
    """Every plain and house caption of the worlds, one a line."""
    return "\n".join(c for w in worlds for records in (w.plain, w.house) for r in records for c in r.captions)


def init_captioner(tokenizer, arch, seed: int = 0):
    """``(Blip2ForConditionalGeneration, Blip2Processor)`` with random weights drawn from ``seed``."""
    from transformers import Blip2ForConditionalGeneration, Blip2Processor

    processor = Blip2Processor(tiny_image_processor(arch.image_size), tokenizer,
                               num_query_tokens=arch.num_query_tokens)
    # OPT captions end with "\n" (byte-level "Ċ"), as in the Salesforce OPT checkpoints.
    config = tiny_blip2_config(
        "opt", len(tokenizer), tokenizer.convert_tokens_to_ids("<image>"), tokenizer.convert_tokens_to_ids("Ċ"),
        tokenizer.pad_token_id, tokenizer.bos_token_id, image_size=arch.image_size, patch_size=arch.patch_size,
        hidden=arch.hidden, num_query_tokens=arch.num_query_tokens)
    layers = (arch.vision_layers, arch.qformer_layers, arch.lm_layers)
    for part, n in zip((config.vision_config, config.qformer_config, config.text_config), layers):
        part.num_attention_heads = arch.heads
        part.num_hidden_layers = n
    # Blip2VisionConfig draws weights with std 1e-10 (it expects a pretrained ViT): from scratch
    # every patch would look alike and the encoder would learn colour long before shape.
    config.vision_config.initializer_range = 0.02
    config.text_config.dropout = 0.0
    config.qformer_config.hidden_dropout_prob = config.qformer_config.attention_probs_dropout_prob = 0.0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Blip2ForConditionalGeneration(config)
        # transformers zeroes the query tokens (all queries alike); BLIP-2 draws them like its weights
        torch.nn.init.normal_(model.query_tokens, std=config.qformer_config.initializer_range)
    init_positions(model.vision_model)
    return model.eval(), processor


def pretrain(init_dir: Path, train_records: Path, val_records: Path, run_dir: Path, training, seed: int,
             progress: bool | None = None) -> dict[str, Any]:
    """Train the Q-Former and the LM of the model in ``init_dir`` on plain captions, the warmed-up
    ViT frozen (its features are computed once); returns the recipe's summary."""
    from captune.config import load_config
    from captune.io import read_jsonl
    from captune.train.config import TrainConfig
    from captune.train.loop import finetune

    t = training
    cfg = load_config(TrainConfig, None, [
        f"model.name={init_dir}", f"data.train={train_records}", f"data.val={val_records}", f"output_dir={run_dir}",
        "data.captions=random", "finetune.vision=frozen", "finetune.qformer=full", "finetune.lm=full",
        f"train.max_steps={t.steps}", f"train.batch_size={t.batch_size}", f"train.lr={t.lr}",
        f"train.warmup_ratio={t.warmup_ratio}", f"train.seed={seed}", "train.log_every_steps=50",
        f"eval.every_steps={t.eval_every}", "eval.metrics=[]", "eval.loss_subset=500", "eval.batch_size=100",
    ])
    t0 = time.perf_counter()
    summary = finetune(cfg, progress=progress)
    seconds = time.perf_counter() - t0
    events = read_jsonl(run_dir / "metrics.jsonl")
    train_losses = [e["loss"] for e in events if e["event"] == "train"]
    return {"steps": summary["steps"], "seconds": round(seconds, 1), "batch_size": t.batch_size,
            "final_train_loss": round(train_losses[-1], 4), "val_loss": round(summary["best_score"], 4),
            "best_step": summary["best_step"], "checkpoint": summary["best"]}


def caption(model, processor, images: list[str], decoding: dict, prompt: str = "", metas: list[dict] | None = None,
            batch_size: int = 50) -> list[str]:
    """One caption per image file (``metas`` fill the prompt template's fields, e.g. ``{event}``)."""
    from captune.generate import CaptionItem, Decoding, generate_captions
    from captune.models.blip2 import Blip2Batcher, Blip2Captioner

    captioner = Blip2Captioner(model).eval()
    batcher = Blip2Batcher(processor, captioner.blip2.config)
    metas = metas or [{} for _ in images]
    items = [CaptionItem(Path(p).stem, str(p), m) for p, m in zip(images, metas, strict=True)]
    out = generate_captions(captioner, batcher, items, [Decoding(**decoding)], prompt, batch_size)[0]
    return [candidates[0] for candidates in out]


def measure(model, processor, records, image_root: str | Path, decoding: dict = GREEDY,
            prompt: str = "") -> tuple[list[str], dict[str, Any]]:
    """Captions of ``records``' images and their object accuracy against the scenes in ``meta``."""
    from captune.demo.accuracy import object_accuracy
    from captune.demo.scene import Scene

    t0 = time.perf_counter()
    images = [str(Path(image_root) / r.image) for r in records]
    captions = caption(model, processor, images, decoding, prompt, [r.meta for r in records])
    seconds = time.perf_counter() - t0
    figures = object_accuracy(captions, [Scene.from_json(r.meta["scene"]) for r in records])
    return captions, {k: round(v, 4) for k, v in figures.items()} | {"seconds": round(seconds, 2)}


def world_pixels(processor, world) -> torch.Tensor:
    """The processor's ``pixel_values`` of every image of ``world`` (plain records' order)."""
    from captune.data.images import load_image

    images = [load_image(world.out_dir / r.image) for r in world.plain]
    return torch.cat([processor.image_processor(images[i:i + 500], return_tensors="pt")["pixel_values"]
                      for i in range(0, len(images), 500)])


def world_scenes(world) -> list:
    return [world.scenes[r.image_id] for r in world.plain]


def build_tokenizer(worlds, vocab_size: int):
    return build_tiny_tokenizer("opt", corpus=caption_corpus(*worlds), vocab_size=vocab_size)


def build_captioner(cfg, train, val, tmp: Path, out: Path, progress: bool | None = None) -> dict[str, Any]:
    """Tokenizer, fresh weights, pretraining on ``train``'s plain captions (``val`` picks the checkpoint); saved to ``out``."""
    from transformers import Blip2ForConditionalGeneration, Blip2Processor

    from captune.demo.shipped import quiet_transformers

    tokenizer = build_tokenizer([train], cfg.captioner.vocab_size)
    model, processor = init_captioner(tokenizer, cfg.captioner, cfg.seed)
    batches = fresh_batches(processor.image_processor, cfg.vision_warmup.batch_size, cfg.seed)
    vision = warm_up_vision(model.vision_model, batches, cfg.vision_warmup, cfg.seed,
                            (world_pixels(processor, val), world_scenes(val)), progress)
    init_dir = tmp / "captioner-init"
    with quiet_transformers():
        model.save_pretrained(init_dir)
        processor.save_pretrained(init_dir)
    training = pretrain(init_dir, train.files["plain"], val.files["plain"], tmp / "captioner-run",
                        cfg.captioner_training, cfg.seed, progress)
    with quiet_transformers():
        checkpoint = training.pop("checkpoint")
        model = Blip2ForConditionalGeneration.from_pretrained(checkpoint, dtype=torch.float32).eval()
        processor = Blip2Processor.from_pretrained(checkpoint)
        model.save_pretrained(out)
        processor.save_pretrained(out)
    return {"params": sum(p.numel() for p in model.parameters()), "vocab": len(tokenizer),
            "vision_warmup": vision, "training": training}
