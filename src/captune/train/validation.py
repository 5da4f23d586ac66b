"""Validation during training: loss on a fixed set of examples, and generation metrics on a
fixed subset of images, split across processes and gathered on the main process.

Validation runs inside ``torch.random.fork_rng`` so evaluating never changes the training
random stream (an evaluated run and a resumed run see the same dropout masks).
"""

from __future__ import annotations

from pathlib import Path

import torch

from captune.errors import CaptuneError
from captune.generate import CaptionItem, generate_captions
from captune.io import write_jsonl
from captune.train.data import CaptionDataset, Collate


def spread(n: int, k: int) -> list[int]:
    """``k`` indices spread evenly over ``range(n)`` (all of them when ``k >= n``).

    Caption files are often ordered (by event, by date, by photographer): the first ``k``
    records would be a biased sample and would pick the best checkpoint on one event.
    """
    if k >= n:
        return list(range(n))
    return [i * n // k for i in range(k)]


def _metric_resources():
    from captune.metrics import MetricResources

    return MetricResources()


class Validator:
    def __init__(self, recipe, records):
        self.r = recipe
        cfg = recipe.cfg
        root = recipe._root(cfg.data.val)
        self.loss_ds = CaptionDataset(records, root, cfg.data.prompt, "all", cfg.train.seed, recipe.features)
        subset = [records[i] for i in spread(len(records), cfg.eval.subset)]
        self.items = [CaptionItem(r.image_id, str(Path(root) / r.image), r.meta) for r in subset]
        self.refs = [r.captions for r in subset]
        self.metric_resources = _metric_resources()  # models and caches kept from one validation to the next

    def close(self) -> None:
        """Stop the METEOR process and drop the metrics' models and caches."""
        self.metric_resources.close()

    def run(self) -> dict[str, float]:
        acc = self.r.acc
        model = acc.unwrap_model(self.r.captioner)
        model.eval()
        devices = [acc.device] if acc.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices), acc.autocast():
            values = {"val_loss": self._loss(model)}
            if self.r.cfg.eval.metrics:
                values |= self._metrics(model)
        model.train()
        return values

    def _shard(self, n: int) -> list[int]:
        acc = self.r.acc
        return list(range(n))[acc.process_index::acc.num_processes]

    @torch.no_grad()
    def _loss(self, model) -> float:
        acc, cfg = self.r.acc, self.r.cfg
        indices = self._shard(min(len(self.loss_ds), cfg.eval.loss_subset))
        collate = Collate(self.r.batcher)
        total = torch.zeros(2, device=acc.device, dtype=torch.float64)  # [loss * tokens, tokens]
        for start in range(0, len(indices), cfg.eval.batch_size):
            items = [self.loss_ds[i] for i in indices[start:start + cfg.eval.batch_size]]
            batch = {k: v.to(acc.device) for k, v in collate(items).items()}
            loss = model(**batch).loss
            labels = batch["labels"][:, 1:] if model.decoder_only else batch["labels"]
            n = (labels != -100).sum()
            total += torch.stack([loss.double() * n, n.double()])
        total = acc.reduce(total, reduction="sum")
        return float(total[0] / total[1])

    def _metrics(self, model) -> dict[str, float]:
        from accelerate.utils import broadcast_object_list, gather_object

        from captune.metrics import score

        acc, cfg = self.r.acc, self.r.cfg
        mine = self._shard(len(self.items))
        caps = generate_captions(
            model, self.r.batcher, [self.items[i] for i in mine], [cfg.eval.decoding], cfg.data.prompt,
            cfg.eval.batch_size, features=self.r.features)[0]
        pairs = gather_object([(i, c[0]) for i, c in zip(mine, caps)]) if acc.num_processes > 1 else list(
            zip(mine, (c[0] for c in caps)))
        values: list = [None]
        if acc.is_main_process:
            preds = [c for _, c in sorted(pairs)]
            scores = score(preds, self.refs, images=[it.image for it in self.items], metrics=cfg.eval.metrics,
                           clip_model=cfg.eval.clip_model, resources=self.metric_resources)
            missing = [m for m in cfg.eval.monitor_terms() if m in scores.unavailable]
            if missing:
                raise CaptuneError(f"eval.monitor needs {', '.join(missing)}: {scores.unavailable[missing[0]]}")
            values[0] = dict(scores.corpus)
            self._write_predictions(preds)
        if acc.num_processes > 1:
            broadcast_object_list(values)
        return values[0]

    def _write_predictions(self, preds: list[str]) -> None:
        step = self.r.state.step
        rows = [{"image_id": it.image_id, "caption": p, "references": refs, "step": step}
                for it, p, refs in zip(self.items, preds, self.refs)]
        write_jsonl(self.r.out / "predictions" / f"val_step{step:06d}.jsonl", rows)
