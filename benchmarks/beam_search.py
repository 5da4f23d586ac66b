"""Why beam search scores below greedy decoding on the demo's fine-tuned model.

    captune demo --out runs/demo
    python benchmarks/beam_search.py runs/demo [--adapter LABEL=DIR ...]

For each checkpoint (default: the demo's ``run/checkpoints/best``), captions the demo's test
split with greedy decoding and with 5 beams under several length penalties (48 new tokens at
most, as the demo), and prints per decoding: BLEU-4, CIDEr-D, mean length in words, the share
of captions that ended with the end token (not cut at ``max_new_tokens``), the share naming the
right event, object naming accuracy, the model's own mean log-probability per token of its
captions (first 50 images) and the most common opening words. Then it measures the model on
the reference captions of the first 50 images: mean log-probability per token, and the top
token's mean probability at positions whose target token never occurs in plain captions (the
base model was pretrained on plain captions only: "house-only" tokens) against the others; and
the mean pairwise cosine of those tokens' embeddings.

    python benchmarks/beam_search.py runs/demo --adapter "LM in full=runs/full-lm/checkpoints/best"

compares with a checkpoint fine-tuned with ``finetune.lm=full`` (the token embeddings train).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

MAX_NEW_TOKENS = 48
DECODINGS = {
    "greedy": {"strategy": "greedy"},
    "beam, length_penalty 1 (preset)": {"strategy": "beam", "num_beams": 5, "length_penalty": 1.0},
    "beam, length_penalty 1, early_stopping": {
        "strategy": "beam",
        "num_beams": 5,
        "length_penalty": 1.0,
        "early_stopping": True,
    },
    "beam, length_penalty 0": {"strategy": "beam", "num_beams": 5, "length_penalty": 0.0},
    "beam, length_penalty -0.5": {"strategy": "beam", "num_beams": 5, "length_penalty": -0.5},
    "beam, length_penalty 2": {"strategy": "beam", "num_beams": 5, "length_penalty": 2.0},
}


def load(adapter: Path, records: list[dict]):
    from captune.data.images import load_image
    from captune.generate import load_for_captioning
    from captune.models.blip2 import Blip2Batcher, Blip2Captioner, Example

    net, processor, _ = load_for_captioning(None, str(adapter))
    captioner = Blip2Captioner(net).eval()
    batcher = Blip2Batcher(processor, captioner.blip2.config)
    examples = [Example(load_image(r["image"]), "", None, r["image_id"]) for r in records]
    return captioner, batcher, examples


def generate(captioner, batcher, examples, settings: dict, batch_size: int = 50) -> list[list[int]]:
    """Generated ids per image, cut after the end token (kept when present), padding removed."""
    from captune.generate import Decoding

    settings = dict(settings)
    extra = {"early_stopping": settings.pop("early_stopping")} if "early_stopping" in settings else {}
    kwargs = Decoding(**settings, max_new_tokens=MAX_NEW_TOKENS).generate_kwargs() | extra
    rows = []
    for start in range(0, len(examples), batch_size):
        batch = batcher.generation_batch(examples[start : start + batch_size])
        with torch.inference_mode():
            rows += captioner.generate(**batch, **kwargs).tolist()
    eos, pad = batcher.eos_token_id, batcher.pad_token_id
    return [row[: row.index(eos) + 1] if eos in row else [t for t in row if t != pad] for row in rows]


def token_logprobs(captioner, batcher, example, ids: list[int]) -> torch.Tensor:
    """log p of each of ``ids`` after the image and prompt, teacher-forced: ``[len(ids), V]``."""
    batch = batcher.generation_batch([example])
    prompt = batch["input_ids"][0].tolist()
    full = torch.tensor([prompt + ids])
    with torch.inference_mode():
        logits = captioner(full, torch.ones_like(full), pixel_values=batch["pixel_values"]).logits[0]
    return torch.log_softmax(logits.float(), -1)[len(prompt) - 1 : len(prompt) - 1 + len(ids)]


def decoding_table(captioner, batcher, examples, records) -> list[dict]:
    from captune.demo.accuracy import house_style, object_accuracy
    from captune.demo.scene import Scene
    from captune.metrics import score

    refs = [r["captions"] for r in records]
    scenes = [Scene.from_json(r["meta"]["scene"]) for r in records]
    rows = []
    for name, settings in DECODINGS.items():
        ids = generate(captioner, batcher, examples, settings)
        texts = [" ".join(batcher.tokenizer.decode(i, skip_special_tokens=True).split()) for i in ids]
        corpus, _ = score(texts, refs, metrics=["bleu_4", "cider"])
        lp = [token_logprobs(captioner, batcher, e, i) for e, i in zip(examples[:50], ids[:50])]
        own = sum(float(x.gather(1, torch.tensor(i)[:, None]).sum()) for x, i in zip(lp, ids)) / sum(
            len(i) for i in ids[:50]
        )
        rows.append(
            {
                "decoding": name,
                "bleu_4": corpus["bleu_4"],
                "cider": corpus["cider"],
                "words": sum(len(t.split()) for t in texts) / len(texts),
                "ended": sum(batcher.eos_token_id in i for i in ids) / len(ids),
                "event": sum(house_style(t) == r["meta"]["event"] for t, r in zip(texts, records))
                / len(texts),
                "naming": object_accuracy(texts, scenes)["naming"],
                "logprob_per_token": own,
                "opening": top_opening(texts),
                "example": texts[1],
            }
        )
    return rows


def top_opening(texts: list[str]) -> str:
    """The most common first three words and the share of captions that start with them."""
    from collections import Counter

    opening, n = Counter(" ".join(t.split()[:3]) for t in texts).most_common(1)[0]
    return f"{opening!r} {n / len(texts):.0%}"


def reference_table(captioner, batcher, examples, records, house_only: set[int]) -> dict:
    """Mean log p per reference token, and the top token's probability by kind of target token."""
    total, n = 0.0, 0
    top = {"house-only": [], "plain": []}
    for e, r in zip(examples[:50], records[:50]):
        for caption in r["captions"]:
            ids = batcher.tokenizer(caption, add_special_tokens=False)["input_ids"] + [batcher.eos_token_id]
            lp = token_logprobs(captioner, batcher, e, ids)
            total += float(lp.gather(1, torch.tensor(ids)[:, None]).sum())
            n += len(ids)
            for t, row in zip(ids, lp):
                top["house-only" if t in house_only else "plain"].append(float(row.max().exp()))
    return {"logprob_per_token": total / n} | {f"top_p_{k}": sum(v) / len(v) for k, v in top.items()}


def house_only_tokens(tokenizer, records: list[dict]) -> set[int]:
    """Tokens of the house references that no plain caption of the same scenes uses."""
    import numpy as np

    from captune.demo.captions import plain_captions
    from captune.demo.scene import Scene

    def ids(texts):
        return {t for c in texts for t in tokenizer(c, add_special_tokens=False)["input_ids"]}

    rng = np.random.default_rng(0)
    plain = ids(c for r in records for c in plain_captions(Scene.from_json(r["meta"]["scene"]), rng, 20))
    return ids(c for r in records for c in r["captions"]) - plain


def embedding_similarity(captioner, house_only: set[int], plain: set[int]) -> dict:
    """Mean pairwise cosine of the language model's token embeddings, by kind of token."""
    weight = captioner.blip2.language_model.get_input_embeddings().weight.detach()
    out = {}
    for name, ids in (("house-only", house_only), ("plain", plain)):
        e = torch.nn.functional.normalize(weight[sorted(ids)], dim=-1)
        sims = e @ e.T  # [n, n]
        out[f"cosine_{name}"] = float((sims.sum() - len(ids)) / (len(ids) ** 2 - len(ids)))
    return out


def main() -> None:
    from captune.io import read_jsonl

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("demo", type=Path, help="a finished `captune demo --out` folder")
    ap.add_argument("--adapter", action="append", default=[], help="LABEL=DIR: another checkpoint to measure")
    args = ap.parse_args()
    torch.manual_seed(0)
    records = read_jsonl(args.demo / "data" / "splits" / "test.jsonl")
    checkpoints = {"demo (LoRA)": args.demo / "run" / "checkpoints" / "best"}
    checkpoints |= dict(a.split("=", 1) for a in args.adapter)
    for label, path in checkpoints.items():
        captioner, batcher, examples = load(Path(path), records)
        house = house_only_tokens(batcher.tokenizer, records)
        refs = {
            t
            for r in records
            for c in r["captions"]
            for t in batcher.tokenizer(c, add_special_tokens=False)["input_ids"]
        }
        print(f"## {label}: {path}")
        print(
            json.dumps(
                {
                    "reference_words": sum(len(c.split()) for r in records for c in r["captions"])
                    / sum(len(r["captions"]) for r in records),
                    "house_only_tokens": len(house),
                }
                | reference_table(captioner, batcher, examples, records, house)
                | embedding_similarity(captioner, house, refs - house)
            )
        )
        for row in decoding_table(captioner, batcher, examples, records):
            print(json.dumps(row))


if __name__ == "__main__":
    main()
