"""Which parts of BLIP-2 train, and how: frozen, LoRA (rsLoRA, DoRA) or full.

Each part — ``vision`` (the ViT), ``qformer`` (Q-Former, query tokens and the projection to the
language model) and ``lm`` (the language model) — is ``frozen``, ``lora`` or ``full``. LoRA
targets come from a per-family preset (``query_value`` or ``all_linear``) or an explicit list of
module names. With any LoRA part the model is wrapped by peft and saved as an adapter; a part
trained in full next to it trains in place and is saved to ``full_parts.safetensors`` beside the
adapter. With only full parts the model is trained and saved whole. The query tokens train with a
full Q-Former only: LoRA adapts linear layers, and they are not one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
from pydantic import Field

from captune.config import Schema
from captune.errors import CaptuneError, ConfigError

PartMode = Literal["frozen", "lora", "full"]
FULL_PARTS_FILE = "full_parts.safetensors"

# Module-name prefixes of each part inside Blip2ForConditionalGeneration.
PART_MODULES = {
    "vision": ("vision_model",),
    "qformer": ("qformer", "language_projection"),
    "lm": ("language_model",),
}
# Linear layers to adapt, per part and preset. OPT and T5 name their projections differently.
TARGET_PRESETS = {
    ("lm", "opt"): {"query_value": ["q_proj", "v_proj"],
                    "all_linear": ["q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"]},
    ("lm", "t5"): {"query_value": ["q", "v"], "all_linear": ["q", "k", "v", "o", "wi", "wi_0", "wi_1", "wo"]},
    ("qformer", None): {"query_value": ["query", "value"], "all_linear": ["query", "key", "value", "dense"]},
    ("vision", None): {"query_value": ["qkv"], "all_linear": ["qkv", "projection", "fc1", "fc2"]},
}


class FinetuneConfig(Schema):
    method: Literal["lora", "rslora", "dora"] = "lora"
    """Adapter kind for parts set to ``lora``: plain LoRA, rank-stabilized (alpha/sqrt(r)) or DoRA."""
    r: int = Field(16, ge=1)
    """LoRA rank."""
    alpha: float = 32
    """LoRA alpha (scale alpha/r, or alpha/sqrt(r) for rslora)."""
    dropout: float = Field(0.05, ge=0, lt=1)
    """Dropout on the LoRA input."""
    targets: Literal["query_value", "all_linear"] | list[str] = "query_value"
    """LoRA target modules: a preset (per family) or a list of module names such as [q_proj, v_proj]."""
    vision: PartMode = "frozen"
    """The vision encoder (ViT)."""
    qformer: PartMode = "frozen"
    """The Q-Former, its query tokens and the projection into the language model."""
    lm: PartMode = "lora"
    """The language model (OPT or T5)."""

    def parts(self, mode: str) -> list[str]:
        return [p for p in PART_MODULES if getattr(self, p) == mode]


@dataclass
class TrainableReport:
    trainable: int
    total: int
    by_part: dict[str, int] = field(default_factory=dict)

    @property
    def share(self) -> float:
        return self.trainable / max(self.total, 1)

    def line(self) -> str:
        return (f"trainable params: {self.trainable:,} || all params: {self.total:,} || "
                f"trainable%: {100 * self.share:.4f}")


def target_modules(cfg: FinetuneConfig, family: str) -> list[str]:
    names = []
    for part in cfg.parts("lora"):
        if isinstance(cfg.targets, list):
            names.extend(cfg.targets)
        else:
            preset = TARGET_PRESETS.get((part, family)) or TARGET_PRESETS[(part, None)]
            names.extend(preset[cfg.targets])
    return sorted(set(names))


def lora_regex(model, cfg: FinetuneConfig, family: str) -> str:
    """A full-match regex over module names: the target linears inside the LoRA parts only."""
    targets = target_modules(cfg, family)
    prefixes = [p for part in cfg.parts("lora") for p in PART_MODULES[part]]
    pattern = rf"(?:{'|'.join(map(re.escape, prefixes))})\..*\.(?:{'|'.join(map(re.escape, targets))})"
    matched = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules() if re.fullmatch(pattern, n)}
    if not matched:
        raise ConfigError(
            f"finetune.targets {cfg.targets!r} matches no linear layer in parts {cfg.parts('lora')}; "
            f"linear layers there: {', '.join(sorted(_linear_names(model, prefixes)))}"
        )
    return pattern


def _linear_names(model, prefixes) -> set[str]:
    from torch import nn

    return {n.rsplit(".", 1)[-1] for n, m in model.named_modules()
            if isinstance(m, nn.Linear) and n.startswith(tuple(prefixes))}


def apply_finetuning(model, cfg: FinetuneConfig):
    """Freeze, adapt or unfreeze each part; returns the model to train (a PeftModel if any LoRA)."""
    from captune.models.blip2 import model_family

    family = model_family(model.config)
    if not cfg.parts("lora") and not cfg.parts("full"):
        raise ConfigError("finetune: every part is frozen, nothing would train; set lm: lora (or full)")
    for p in model.parameters():
        p.requires_grad_(False)
    if cfg.parts("lora"):
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(
            r=cfg.r, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout,
            target_modules=lora_regex(model, cfg, family),
            use_rslora=cfg.method == "rslora", use_dora=cfg.method == "dora",
        ))
    # Full parts train in place; next to LoRA they are saved by save_full_parts (peft's
    # modules_to_save would keep a second, frozen copy of each: +5 GB for OPT-2.7B's language model).
    base = model.get_base_model() if hasattr(model, "peft_config") else model
    for name, p in base.named_parameters():
        if _in_parts(name, cfg.parts("full")):
            p.requires_grad_(True)
    return trainable_in_float32(model)


def full_part_weights(model) -> dict[str, torch.Tensor]:
    """The weights of parts trained in full next to LoRA, by their names in the base model."""
    prefix = model.base_model.prefix  # "lora_": the adapters, which peft's own file holds
    return {name: p.detach() for name, p in model.get_base_model().named_parameters()
            if p.requires_grad and prefix not in name}


def save_full_parts(model, directory: Path) -> None:
    """Write ``full_parts.safetensors`` next to the adapter when a part trains in full."""
    from safetensors.torch import save_file

    weights = full_part_weights(model)
    if weights:
        save_file({k: v.contiguous() for k, v in weights.items()}, directory / FULL_PARTS_FILE,
                  metadata={"format": "pt"})


def load_full_parts(model, directory: Path, expected: set[str] | None = None) -> None:
    """Load ``full_parts.safetensors`` (if any) into the base model of a PeftModel; with
    ``expected``, the file must hold exactly those names."""
    from safetensors.torch import load_file

    path = Path(directory) / FULL_PARTS_FILE
    weights = load_file(path) if path.exists() else {}
    base = model.get_base_model()
    allowed = expected if expected is not None else set(base.state_dict())
    missing, unexpected = sorted((expected or set()) - set(weights)), sorted(set(weights) - allowed)
    if missing or unexpected:
        raise CaptuneError(
            f"{path}: the saved full-part weights do not match the model (missing: {', '.join(missing[:5]) or '-'}; "
            f"unexpected: {', '.join(unexpected[:5]) or '-'}); load it with the base model and finetune settings "
            "it was trained with")
    base.load_state_dict(weights, strict=False)


def trainable_in_float32(model):
    """Keep trained weights in float32 (master weights) whatever ``model.dtype`` says for the frozen
    ones. A bfloat16 weight near 0.02 moves in steps of 1.2e-4: AdamW's updates at lr 1e-5 would
    round away. ``train.precision: bf16`` then autocasts the computation, not the weights."""
    for p in model.parameters():
        if p.requires_grad and p.dtype in (torch.bfloat16, torch.float16):
            p.data = p.data.float()
    return model


def _in_parts(name: str, parts: list[str]) -> bool:
    if name == "query_tokens":  # trains with a full Q-Former; LoRA adapts linear layers only
        return "qformer" in parts
    return any(name.startswith(prefix + ".") for part in parts for prefix in PART_MODULES[part])


def trainable_report(model) -> TrainableReport:
    """Trainable and total parameter counts, overall and per part (peft's own wrapper names stripped)."""
    trainable = total = 0
    by_part: dict[str, int] = {}
    for name, p in model.named_parameters():
        n = p.numel()
        total += n
        if p.requires_grad:
            trainable += n
            plain = name.removeprefix("base_model.model.")
            part = "qformer" if plain == "query_tokens" else next(
                (k for k, v in PART_MODULES.items() if plain.startswith(v)), "other")
            by_part[part] = by_part.get(part, 0) + n
    return TrainableReport(trainable, total, by_part)
