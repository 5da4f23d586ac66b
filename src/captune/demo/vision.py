"""Teaching the shapes captioner's ViT to see shape before it learns to caption.

A BLIP-2 ViT trained from random weights on captions alone learns colour (a linear function
of one patch) at once and shape hardly at all: the shapes are 6 to 20 pixels wide, straddle
patch borders, and a ViT starts with no notion of which patches are neighbours. Two steps,
both on the vision tower only, before the captioner's pretraining:

1. **2-D sine-cosine position embeddings** at initialisation (as in MAE), so attention starts
   out knowing the patch grid; they stay trainable.
2. **A dense warm-up**: every patch is classified, for each attribute (shape, colour, material,
   size), as background or as the value of the object whose box covers its centre, from the
   scenes' annotations, by linear heads on the ViT's patch outputs. Every batch is freshly drawn
   and rendered scenes, so the ViT cannot memorise a fixed set of images (on 6,000 fixed images
   it fitted them and named held-out shapes 68% of the time). The heads are discarded
   afterwards and the ViT is frozen for the caption pretraining, as BLIP-2 freezes its
   pretrained image encoder.

    init_positions(model.vision_model)
    batches = fresh_batches(processor.image_processor, batch_size=64, seed=0)
    figures = warm_up_vision(model.vision_model, batches, VisionWarmup(), val=(pixels, scenes))
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from captune.demo.scene import COLOURS, MATERIALS, SHAPES, SIZES, Obj, Scene

# What each patch is labelled with, per attribute: 0 for background, else 1 + the value's index.
ATTRIBUTES: dict[str, list[str]] = {"shape": SHAPES, "colour": list(COLOURS), "material": MATERIALS, "size": SIZES}


@dataclass(frozen=True)
class VisionWarmup:
    steps: int = 4000
    batch_size: int = 64
    lr: float = 1e-3
    warmup_ratio: float = 0.05
    weight_decay: float = 0.05


def sincos_positions(grid: int, dim: int) -> torch.Tensor:
    """``[grid * grid, dim]`` embeddings: half the channels encode the row, half the column."""
    if dim % 4:
        raise ValueError(f"dim={dim}: 2-D sine-cosine embeddings need a multiple of 4")
    rows, cols = np.meshgrid(np.arange(grid, dtype=np.float64), np.arange(grid, dtype=np.float64), indexing="ij")

    def encode(pos: np.ndarray, d: int) -> np.ndarray:
        omega = 1.0 / 10000 ** (np.arange(d // 2) / (d / 2))
        angles = pos.reshape(-1)[:, None] * omega[None]
        return np.concatenate([np.sin(angles), np.cos(angles)], axis=1)

    return torch.tensor(np.concatenate([encode(rows, dim // 2), encode(cols, dim // 2)], axis=1), dtype=torch.float32)


def init_positions(vision_model) -> None:
    """Set a BLIP-2 ViT's patch position embeddings to 2-D sine-cosine (the class token's to zero)."""
    emb = vision_model.embeddings
    grid = emb.image_size // emb.patch_size
    with torch.no_grad():
        emb.position_embedding[0, 0].zero_()
        emb.position_embedding[0, 1:] = sincos_positions(grid, emb.embed_dim)


def patch_labels(scene: Scene, grid: int) -> np.ndarray:
    """``[len(ATTRIBUTES), grid * grid]``: per attribute and patch (row-major, as the ViT orders
    them), 0 for background, else 1 + the index of the covering object's value."""
    labels = np.zeros((len(ATTRIBUTES), grid * grid), dtype=np.int64)
    for obj in scene.objects:
        covered = covered_patches(obj, grid)
        for k, (name, values) in enumerate(ATTRIBUTES.items()):
            labels[k, covered] = 1 + values.index(getattr(obj, name))
    return labels


class PatchHeads(torch.nn.Module):
    """One linear classifier per attribute over the ViT's patch outputs."""

    def __init__(self, hidden: int):
        super().__init__()
        self.sizes = [1 + len(values) for values in ATTRIBUTES.values()]
        self.linear = torch.nn.Linear(hidden, sum(self.sizes))
        torch.nn.init.normal_(self.linear.weight, std=0.02)
        torch.nn.init.zeros_(self.linear.bias)

    def forward(self, patches: torch.Tensor) -> list[torch.Tensor]:
        """``[batch, patches, hidden]`` -> one ``[batch, patches, 1 + values]`` logits tensor per attribute."""
        return list(self.linear(patches).split(self.sizes, dim=-1))

    def loss(self, patches: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Mean over attributes of the per-patch cross-entropy; ``labels`` is ``[batch, attributes, patches]``."""
        logits = self(patches)
        return sum(F.cross_entropy(lg.flatten(0, 1), labels[:, k].flatten()) for k, lg in enumerate(logits)) / len(logits)


def covered_patches(obj: Obj, grid: int) -> np.ndarray:
    """Boolean mask over the patches (row-major) whose centre lies in ``obj``'s box."""
    centres = (np.arange(grid) + 0.5) / grid
    return ((np.abs(centres[None, :] - obj.x) <= obj.radius) & (np.abs(centres[:, None] - obj.y) <= obj.radius)).ravel()


def _grid(vision_model) -> int:
    return vision_model.embeddings.image_size // vision_model.embeddings.patch_size


def fresh_batches(image_processor, batch_size: int, seed: int = 0,
                  image_size: int | None = None) -> Iterator[tuple[torch.Tensor, list[Scene]]]:
    """Endless ``(pixel_values, scenes)`` batches of newly drawn scenes, rendered as the world renders them."""
    from captune.demo.render import render
    from captune.demo.scene import sample_scene

    size = image_size or image_processor.size["height"]
    rng = np.random.default_rng([seed, 4321])
    while True:
        scenes = [sample_scene(rng) for _ in range(batch_size)]
        pixels = image_processor([render(s, size) for s in scenes], return_tensors="pt")["pixel_values"]
        yield pixels, scenes


def warm_up_vision(vision_model, batches: Iterator[tuple[torch.Tensor, Sequence[Scene]]],
                   cfg: VisionWarmup = VisionWarmup(), seed: int = 0,
                   val: tuple[torch.Tensor, Sequence[Scene]] | None = None, progress: bool | None = None) -> dict:
    """Train ``vision_model`` to tell each patch's attributes on ``cfg.steps`` of ``batches``;
    returns loss, seconds and the per-patch accuracy on ``val`` (validation pixels and scenes)."""
    from tqdm.auto import tqdm

    grid = _grid(vision_model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        head = PatchHeads(vision_model.config.hidden_size)
    params = list(vision_model.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    warm = max(1, int(cfg.steps * cfg.warmup_ratio))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min((s + 1) / warm, 0.5 * (1 + math.cos(
        math.pi * max(0, s + 1 - warm) / max(1, cfg.steps - warm)))))
    vision_model.train()
    t0, losses = time.perf_counter(), []
    for _ in tqdm(range(cfg.steps), desc="vision warm-up", disable=progress is False, leave=False):
        pixels, scenes = next(batches)
        labels = torch.from_numpy(np.stack([patch_labels(s, grid) for s in scenes]))
        loss = head.loss(vision_model(pixel_values=pixels).last_hidden_state[:, 1:], labels)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
    vision_model.eval()
    figures = {"steps": cfg.steps, "seconds": round(time.perf_counter() - t0, 1), "batch_size": cfg.batch_size,
               "final_loss": round(float(np.mean(losses[-50:])), 4)}
    if val is not None:
        accuracy = patch_accuracy(vision_model, head, *val)
        figures["val_accuracy"] = {name: round(v, 4) for name, v in accuracy.items()}
    return figures


@torch.no_grad()
def patch_accuracy(vision_model, head, pixels: torch.Tensor, scenes: Sequence[Scene],
                   batch_size: int = 256) -> dict[str, float]:
    """Per attribute, the share of objects whose covered patches name their value by majority of
    non-background votes (an object with no such vote counts as wrong)."""
    grid = _grid(vision_model)
    chunks = [head(vision_model(pixel_values=pixels[i:i + batch_size]).last_hidden_state[:, 1:])
              for i in range(0, len(pixels), batch_size)]
    preds = [torch.cat([chunk[k].argmax(-1) for chunk in chunks]) for k in range(len(ATTRIBUTES))]
    right = dict.fromkeys(ATTRIBUTES, 0)
    total = 0
    for i, scene in enumerate(scenes):
        for obj in scene.objects:
            covered = torch.from_numpy(covered_patches(obj, grid))
            total += 1
            for k, (name, values) in enumerate(ATTRIBUTES.items()):
                votes = preds[k][i][covered]
                votes = votes[votes > 0]
                right[name] += bool(len(votes)) and int(torch.mode(votes).values) == 1 + values.index(getattr(obj, name))
    return {name: n / max(total, 1) for name, n in right.items()}
