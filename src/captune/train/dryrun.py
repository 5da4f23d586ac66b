"""``captune train --dry-run``: build one batch, show it, and check that the image matters.

Prints each example decoded with the supervised tokens marked ``⟦...⟧``, the loss, the loss
with the images swapped between examples (it must change: otherwise the model ignores the
image), and the trainable parameters. Nothing is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from captune.data.records import read_records
from captune.errors import CaptuneError
from captune.models.family import adapt
from captune.models.loading import load_captioner
from captune.models.peft import apply_finetuning, trainable_report
from captune.train.config import TrainConfig
from captune.train.data import CaptionDataset, Collate


@dataclass
class DryRunReport:
    lines: list[str]
    loss: float
    swapped_loss: float
    trainable: str

    @property
    def image_matters(self) -> bool:
        return abs(self.loss - self.swapped_loss) > 1e-6

    def text(self) -> str:
        verdict = ("changes: the model sees the image" if self.image_matters
                   else "DOES NOT CHANGE: the image is ignored")
        return "\n".join(self.lines + [
            f"loss: {self.loss:.4f}; with images swapped between examples: {self.swapped_loss:.4f} ({verdict})",
            self.trainable])


def dry_run(cfg: TrainConfig, max_examples: int = 4) -> DryRunReport:
    torch.manual_seed(cfg.train.seed)
    model, processor = load_captioner(cfg.model.name, cfg.model.dtype)
    model = apply_finetuning(model, cfg.finetune)
    captioner, batcher = adapt(model, processor, cfg.data.max_prompt_tokens, cfg.data.max_caption_tokens)
    records = read_records(cfg.data.train)
    root = Path(cfg.data.image_root) if cfg.data.image_root else Path(cfg.data.train).parent
    # One caption of each of the first images, so that swapping images changes something.
    ds = CaptionDataset(records[: max(2, min(max_examples, cfg.train.batch_size))], root, cfg.data.prompt, "random")
    if len(ds) < 2:
        raise CaptuneError(f"{cfg.data.train}: the dry run needs at least two images")
    items = [ds[i] for i in range(len(ds))]
    batch = Collate(batcher)(items)
    captioner.eval()
    with torch.no_grad():
        loss = float(captioner(**batch).loss)
        swapped = dict(batch, pixel_values=batch["pixel_values"].roll(1, dims=0))
        swapped_loss = float(captioner(**swapped).loss)
    lines = [f"dry run: {cfg.model.name}, {len(items)} examples from {cfg.data.train}"]
    for i, it in enumerate(items):
        lines.append(f"[{i}] {it['image_id']}")
        lines.extend("    " + s for s in render_example(batcher, batch, i))
    return DryRunReport(lines, loss, swapped_loss, trainable_report(model).line())


def render_example(batcher, batch: dict[str, torch.Tensor], i: int) -> list[str]:
    """The example's tokens with image tokens collapsed and supervised tokens in ⟦...⟧."""
    ids = batch["input_ids"][i][batch["attention_mask"][i].bool()].tolist()
    labels = batch["labels"][i]
    if batcher.decoder_only:
        supervised = (labels[batch["attention_mask"][i].bool()] != -100).tolist()
        return ["input+caption: " + _render(batcher, ids, supervised)]
    target = labels[labels != -100].tolist()
    return ["encoder: " + _render(batcher, ids, [False] * len(ids)),
            "labels:  " + _render(batcher, target, [True] * len(target))]


def _render(batcher, ids: list[int], supervised: list[bool]) -> str:
    out, n_image, run, run_sup = [], 0, [], False
    tok = batcher.tokenizer

    def flush():
        if run:
            text = tok.decode(run, skip_special_tokens=False).replace("\n", "⏎")
            out.append(f"⟦{text}⟧" if run_sup else text)

    for token, sup in zip(ids, supervised):
        if token == batcher.image_token_id:
            n_image += 1
            continue
        if run and sup != run_sup:
            flush()
            run = []
        run_sup = sup
        run.append(token)
    flush()
    return (f"<image>×{n_image} " if n_image else "") + "".join(out)
