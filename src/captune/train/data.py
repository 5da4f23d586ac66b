"""Training examples from caption records: one example per (image, caption), prompts rendered.

With ``captions: all`` every reference caption is an example; with ``captions: random`` each
image contributes one caption per epoch, drawn with the epoch's seed. The order of examples is a
permutation seeded by ``seed + epoch`` (``EpochSampler``), so an interrupted run resumes exactly.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch
from torch.utils.data import Dataset, Sampler

from captune.data.records import CaptionRecord
from captune.models.family import Example
from captune.models.prompt import render_prompt


def resolve_image(record: CaptionRecord, root: str | Path) -> str:
    return str(Path(root) / record.image)


class CaptionDataset(Dataset):
    def __init__(
        self,
        records: Sequence[CaptionRecord],
        image_root: str | Path,
        prompt: str = "",
        captions: str = "all",
        seed: int = 0,
        features=None,
    ):
        self.records = [r for r in records if r.captions]
        self.root = Path(image_root)
        self.prompt = prompt
        self.mode = captions
        self.seed = seed
        self.features = features
        self.epoch = 0
        if captions == "all":
            self.index = [(i, j) for i, r in enumerate(self.records) for j in range(len(r.captions))]
        else:
            self.index = [(i, -1) for i in range(len(self.records))]

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, k: int) -> dict:
        i, j = self.index[k]
        r = self.records[i]
        if j < 0:
            j = random.Random(f"{self.seed}:{self.epoch}:{r.image_id}").randrange(len(r.captions))
        path = resolve_image(r, self.root)
        item = {"image_id": r.image_id, "path": path, "prompt": render_prompt(self.prompt, r.meta),
                "caption": r.captions[j]}
        if self.features is not None:
            item["vision_embeds"] = self.features.get(path)
        return item


class Collate:
    """Loads images (unless features are cached) and builds a training batch with the batcher."""

    def __init__(self, batcher, train: bool = True):
        self.batcher = batcher
        self.train = train

    def __call__(self, items: list[dict]) -> dict[str, torch.Tensor]:
        from captune.data.images import load_image

        cached = "vision_embeds" in items[0]
        examples = [
            Example(None if cached else load_image(it["path"]), it["prompt"], it["caption"], it["image_id"])
            for it in items
        ]
        batch = self.batcher(examples, train=self.train)
        if cached:
            batch["vision_embeds"] = torch.stack([it["vision_embeds"] for it in items])  # [B, P+1, H]
        return batch


class EpochSampler(Sampler[int]):
    """A permutation of the dataset seeded by ``seed + epoch``; the same on every process."""

    def __init__(self, n: int, seed: int = 0, shuffle: bool = True):
        self.n, self.seed, self.shuffle, self.epoch = n, seed, shuffle, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        if not self.shuffle:
            return iter(range(self.n))
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        return iter(torch.randperm(self.n, generator=g).tolist())

    def __len__(self) -> int:
        return self.n
