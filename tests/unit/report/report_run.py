"""A tiny fine-tuning run with base and fine-tuned evaluations, for the report tests.

Shapes-world data (24 images) split 16/4/4 (plus 4 test images more for the comparison), 8 LoRA
steps on the tiny model with an evaluation every 4 steps, then ``captune evaluate`` of the base
model and of the best checkpoint (with a decoding comparison), and a ratings file.
"""

from __future__ import annotations

from pathlib import Path

METRICS = ["bleu_1", "bleu_4", "rouge_l", "cider"]


def make_report_run(root: Path, base_model: str = "tiny-blip2-opt") -> dict[str, Path]:
    from captune.config import load_config
    from captune.data.split import split_file
    from captune.demo.world import generate
    from captune.evaluate import evaluate
    from captune.io import write_jsonl
    from captune.train.config import TrainConfig
    from captune.train.loop import finetune

    world = root / "world"
    generate(world, n_images=32, seed=0, style="plain")
    split_file(world / "plain.jsonl", root / "splits", "0.5,0.25,0.25", seed=0)
    splits, run = root / "splits", root / "run"
    cfg = load_config(
        TrainConfig,
        None,
        [
            f"model.name={base_model}",
            f"data.train={splits / 'train.jsonl'}",
            f"data.val={splits / 'val.jsonl'}",
            f"data.image_root={world}",
            f"output_dir={run}",
            "train.max_steps=8",
            "train.batch_size=8",
            "train.lr=3e-3",
            "train.log_every_steps=2",
            "finetune.targets=all_linear",
            "finetune.qformer=lora",
            "eval.every_steps=4",
            "eval.subset=4",
            f"eval.metrics=[{','.join(METRICS)}]",
            "eval.batch_size=4",
        ],
    )
    finetune(cfg, progress=False)
    test = splits / "test.jsonl"
    base, tuned = run / "eval" / "base", run / "eval" / "finetuned"
    evaluate(test, base, model=base_model, metrics=METRICS, image_root=str(world), batch_size=8)
    evaluate(
        test,
        tuned,
        adapter=run / "checkpoints" / "best",
        metrics=METRICS,
        decodings="beam,top_p",
        image_root=str(world),
        batch_size=8,
    )
    from captune.data.records import read_records

    ids = [r.image_id for r in read_records(test)]
    write_jsonl(
        run / "ratings.jsonl",
        [
            {"image_id": i, "model": m, "rating": r}
            for k, i in enumerate(ids)
            for m, r in (("base", 1 + k % 2), ("finetuned", 3 + k % 3))
        ],
    )
    return {"run": run, "base": base, "finetuned": tuned, "test": test, "world": world}
