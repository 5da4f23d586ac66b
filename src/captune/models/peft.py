"""Which parts of a captioner train, and how: frozen, LoRA (rsLoRA, DoRA) or full.

Each part is ``frozen``, ``lora`` or ``full``: ``vision`` (the vision encoder, every family),
``qformer`` (BLIP-2's Q-Former, query tokens and projection to the language model), ``projector``
(LLaVA's multimodal projector) and ``lm`` (the language model; BLIP's text decoder). A part the
model's family lacks must stay frozen. LoRA targets come from a per-family preset (``query_value``
or ``all_linear``) or an explicit list of module names. With any LoRA part the model is wrapped by peft and saved as an adapter; a part
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
from captune.models.family import Family, base_model, family_for

PartMode = Literal["frozen", "lora", "full"]
FULL_PARTS_FILE = "full_parts.safetensors"
PARTS = ("vision", "qformer", "projector", "lm")
"""Every ``finetune`` part key; each family has some of them (``captune.models.family``)."""


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
    """BLIP-2's Q-Former, its query tokens and the projection into the language model."""
    projector: PartMode = "frozen"
    """LLaVA's multimodal projector (vision features to the language model's width)."""
    lm: PartMode = "lora"
    """The language model (OPT, Flan-T5, LLaVA's Llama/Vicuna, BLIP's text decoder)."""

    def parts(self, mode: str) -> list[str]:
        return [p for p in PARTS if getattr(self, p) == mode]


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


def target_modules(cfg: FinetuneConfig, family: Family, config) -> list[str]:
    names = []
    for part in cfg.parts("lora"):
        names.extend(cfg.targets if isinstance(cfg.targets, list) else family.lora_presets(part, config)[cfg.targets])
    return sorted(set(names))


def lora_regex(model, cfg: FinetuneConfig, family: Family) -> str:
    """A full-match regex over module names: the target linears inside the LoRA parts only."""
    targets = target_modules(cfg, family, model.config)
    prefixes = [p for part in cfg.parts("lora") for p in family.parts[part]]
    # a target directly under a prefix (LLaVA's projector.linear_1) or any depth below it
    pattern = rf"(?:{'|'.join(map(re.escape, prefixes))})\.(?:.*\.)?(?:{'|'.join(map(re.escape, targets))})"
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
    family = family_for(model.config)
    if not cfg.parts("lora") and not cfg.parts("full"):
        raise ConfigError("finetune: every part is frozen, nothing would train; set lm: lora (or full)")
    check_parts(cfg, family)
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
        if _in_parts(name, [prefix for part in cfg.parts("full") for prefix in family.parts[part]]):
            p.requires_grad_(True)
    return trainable_in_float32(model)


def check_parts(cfg: FinetuneConfig, family: Family) -> None:
    """A part the family lacks (``qformer`` on LLaVA, ``projector`` on BLIP-2) must stay frozen."""
    for part in PARTS:
        if getattr(cfg, part) != "frozen" and part not in family.parts:
            raise ConfigError(
                f"finetune.{part}: {getattr(cfg, part)}, but {family.name} has no {part}; its parts are "
                f"{', '.join(family.parts)}: set finetune.{part}: frozen")


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


def _in_parts(name: str, prefixes: list[str]) -> bool:
    """Whether parameter ``name`` lies under one of the module-name ``prefixes`` (or is one, like
    BLIP-2's ``query_tokens``, which trains with a full Q-Former: LoRA adapts linear layers only)."""
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


def trainable_report(model) -> TrainableReport:
    """Trainable and total parameter counts, overall and per part (peft's own wrapper names stripped)."""
    parts = family_for(base_model(model).config).parts
    trainable = total = 0
    by_part: dict[str, int] = {}
    for name, p in model.named_parameters():
        n = p.numel()
        total += n
        if p.requires_grad:
            trainable += n
            plain = name.removeprefix("base_model.model.")
            part = next((k for k, v in parts.items() if _in_parts(plain, list(v))), "other")
            by_part[part] = by_part.get(part, 0) + n
    return TrainableReport(trainable, total, by_part)
