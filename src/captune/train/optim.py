"""AdamW with decoupled weight decay (none on biases and norms) and warmup schedules."""

from __future__ import annotations

import math

import torch


def build_optimizer(model: torch.nn.Module, lr: float, weight_decay: float, betas=(0.9, 0.999)):
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        # Biases, norm scales and 1-d parameters such as query tokens are not decayed.
        (no_decay if p.ndim < 2 or "norm" in name.lower() else decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=lr, betas=tuple(betas))


def build_scheduler(optimizer, kind: str, total_steps: int, warmup_steps: int, lr: float, min_lr: float = 0.0):
    """Linear warmup, then cosine (down to ``min_lr``), linear (to 0) or constant."""
    floor = min_lr / lr

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        if kind == "constant":
            return 1.0
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        if kind == "linear":
            return 1.0 - progress
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def warmup_steps(total_steps: int, ratio: float, steps: int | None) -> int:
    return steps if steps is not None else round(ratio * total_steps)
