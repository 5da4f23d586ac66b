"""Training speed with and without the vision-feature cache, same run otherwise.

    python benchmarks/feature_cache.py [--steps 30] [--vision-layers 6] [--image-size 224]

Builds a BLIP-2-shaped model whose ViT dominates the cost (as ViT-g does in BLIP-2: ~1B of its
~3.9B parameters, run on every image), saves it to a folder, and LoRA-trains it twice on the
same shapes-world data: ``train.feature_cache=false`` then ``true``. Prints seconds per step
(after the cache is built: building it is reported separately) and the ratio.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import torch


def build_model(folder: Path, image_size: int, vision_layers: int, vision_hidden: int) -> None:
    from transformers import Blip2Config, Blip2ForConditionalGeneration, Blip2Processor

    from captune.models.tiny import build_tiny_tokenizer, tiny_blip2_config, tiny_image_processor

    tok = build_tiny_tokenizer("opt")
    proc = Blip2Processor(tiny_image_processor(image_size), tok, num_query_tokens=8)
    base = tiny_blip2_config("opt", len(tok), tok.convert_tokens_to_ids("<image>"), tok.convert_tokens_to_ids("Ċ"),
                             tok.pad_token_id, tok.bos_token_id, image_size=image_size, patch_size=16,
                             hidden=64, layers=2, num_query_tokens=8).to_dict()
    base["vision_config"].update(hidden_size=vision_hidden, intermediate_size=4 * vision_hidden,
                                 num_hidden_layers=vision_layers, num_attention_heads=8)
    base["qformer_config"]["encoder_hidden_size"] = vision_hidden
    torch.manual_seed(0)
    Blip2ForConditionalGeneration(Blip2Config(**base)).save_pretrained(folder)
    proc.save_pretrained(folder)


def run(model_dir: Path, data: Path, out: Path, steps: int, cache: bool) -> dict:
    from captune.config import load_config
    from captune.io import read_jsonl
    from captune.train.config import TrainConfig
    from captune.train.loop import finetune

    cfg = load_config(TrainConfig, None, [
        f"model.name={model_dir}", f"data.train={data}", f"output_dir={out}", f"train.max_steps={steps}",
        "train.batch_size=8", f"train.feature_cache={str(cache).lower()}", "train.log_every_steps=1"])
    t0 = time.time()
    finetune(cfg, progress=False)
    total = time.time() - t0
    events = read_jsonl(out / "metrics.jsonl")
    train = [e for e in events if e["event"] == "train"]
    # Steady-state time per step: from the first logged step to the last.
    per_step = (train[-1]["time"] - train[0]["time"]) / (len(train) - 1)
    start = next(e for e in events if e["event"] == "start")["time"]
    return {"seconds_per_step": per_step, "total_seconds": total, "setup_seconds": start - t0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--image-size", type=int, default=224)
    ap.add_argument("--vision-layers", type=int, default=6)
    ap.add_argument("--vision-hidden", type=int, default=256)
    args = ap.parse_args()
    from captune.demo.world import generate

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        import os

        os.environ["CAPTUNE_HOME"] = str(tmp / "home")
        generate(tmp / "world", n_images=args.images, seed=0, image_size=args.image_size, style="plain")
        build_model(tmp / "model", args.image_size, args.vision_layers, args.vision_hidden)
        off = run(tmp / "model", tmp / "world" / "plain.jsonl", tmp / "off", args.steps, cache=False)
        on = run(tmp / "model", tmp / "world" / "plain.jsonl", tmp / "on", args.steps, cache=True)
    result = {
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
                   f"torch {torch.__version__}, cuda={torch.cuda.is_available()}",
        "config": vars(args), "cache_off": off, "cache_on": on,
        "speedup_per_step": off["seconds_per_step"] / on["seconds_per_step"],
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
