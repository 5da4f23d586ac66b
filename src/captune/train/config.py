"""The training configuration schema (``captune train CONFIG.yaml [key=value ...]``).

Every field has a one-line docstring; ``captune train --help-config`` lists them all.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from captune.config import Schema
from captune.generate import Decoding
from captune.models.peft import FinetuneConfig
from captune.models.prompt import check_template


class ModelSection(Schema):
    name: str = "tiny-blip2-opt"
    """Model to fine-tune: a name from `captune models list`, a Hugging Face id or a local directory."""
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    """Dtype of the frozen weights; trained ones stay float32 (Flan-T5: bfloat16 or float32 only)."""
    quantization: Literal["none", "4bit", "8bit"] = "none"
    """QLoRA: load the language model in 4 or 8 bits with bitsandbytes (CUDA only)."""
    image_size: int | None = None
    """Train and caption at this resolution (e.g. 364); position embeddings are interpolated."""


class DataSection(Schema):
    train: str
    """Training records (JSONL from `captune data validate` or `split`)."""
    val: str | None = None
    """Validation records; without them there is no evaluation or best checkpoint."""
    image_root: str | None = None
    """Folder that relative image paths are resolved against (default: each file's folder)."""
    prompt: str = ""
    """Prompt template with {event}, {labels}, {attributes}; the same template is used to generate."""
    captions: Literal["all", "random"] = "all"
    """Train on every reference caption (one example each) or on one drawn at random per image and epoch."""
    max_prompt_tokens: int = Field(64, ge=1)
    """Longer prompts are truncated."""
    max_caption_tokens: int = Field(48, ge=1)
    """Longer captions are truncated (before the end token)."""

    @field_validator("prompt")
    @classmethod
    def _template(cls, v: str) -> str:
        return check_template(v)


class TrainSection(Schema):
    epochs: int = Field(3, ge=1)
    """Passes over the training data (ignored when max_steps is set)."""
    max_steps: int | None = Field(None, ge=1)
    """Stop after this many optimizer steps."""
    batch_size: int = Field(8, ge=1)
    """Examples per device per forward pass."""
    grad_accum: int = Field(1, ge=1)
    """Forward passes per optimizer step (effective batch = batch_size x grad_accum x processes)."""
    lr: float = Field(1e-4, gt=0)
    """Peak learning rate."""
    weight_decay: float = Field(0.01, ge=0)
    """AdamW weight decay (not applied to biases and norms)."""
    betas: tuple[float, float] = (0.9, 0.999)
    """AdamW betas."""
    scheduler: Literal["cosine", "linear", "constant"] = "cosine"
    """Learning-rate schedule after warmup."""
    warmup_ratio: float = Field(0.0, ge=0, lt=1)
    """Warmup as a share of all steps (ignored when warmup_steps is set)."""
    warmup_steps: int | None = Field(None, ge=0)
    """Warmup steps."""
    min_lr: float = Field(0.0, ge=0)
    """Cosine schedule floor (cosine annealing to a minimum learning rate)."""
    max_grad_norm: float | None = Field(1.0, gt=0)
    """Clip gradients to this norm (null: no clipping)."""
    precision: Literal["no", "bf16", "fp16"] = "no"
    """Mixed precision: autocast over float32 trained weights (fp16: GPU only, with a gradient scaler; not Flan-T5)."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass to save memory."""
    feature_cache: Literal["auto"] | bool = "auto"
    """Compute the frozen vision encoder's features once and reuse them (auto: when vision is frozen)."""
    seed: int = 0
    """Seed for weights of new layers, data order, dropout and sampling."""
    save_every_steps: int | None = Field(None, ge=1)
    """Also save last/ every N steps (resume points); last/ is always saved at evaluations and at the end."""
    log_every_steps: int = Field(10, ge=1)
    """Steps between training-loss log lines."""
    num_workers: int = Field(0, ge=0)
    """DataLoader worker processes for image loading."""

    @field_validator("precision", mode="before")
    @classmethod
    def _bare_no(cls, v):
        return "no" if v is False else v  # YAML reads a bare `no` as false


class EvalSection(Schema):
    every_steps: int | None = Field(None, ge=1)
    """Evaluate every N optimizer steps (null: at the end of each epoch)."""
    subset: int = Field(64, ge=1)
    """Validation images captioned for generation metrics (a fixed subset spread evenly over the file)."""
    loss_subset: int = Field(512, ge=1)
    """Validation examples used for the validation loss (the first N)."""
    metrics: list[str] = Field(default_factory=lambda: ["bleu_1", "bleu_2", "bleu_4", "rouge_l", "cider"])
    """Generation metrics (see `captune metrics --help`); add clipscore with clip_model."""
    clip_model: str | None = None
    """CLIP model (name or directory) for clipscore."""
    monitor: str = "val_loss"
    """Picks best/: val_loss (lower is better), a metric, or a sum such as cider+bleu_4 (higher is better)."""
    patience: int | None = Field(None, ge=1)
    """Stop after this many evaluations without improvement (null: never)."""
    batch_size: int = Field(16, ge=1)
    """Images per batch when captioning for metrics."""
    decoding: Decoding = Field(default_factory=lambda: Decoding(strategy="beam", num_beams=3))
    """Decoding used for validation captions (deterministic strategies keep metrics comparable)."""

    def monitor_terms(self) -> list[str]:
        return [t.strip() for t in self.monitor.split("+")]

    @model_validator(mode="after")
    def _check_monitor(self) -> EvalSection:
        terms = self.monitor_terms()
        if "val_loss" in terms and len(terms) > 1:
            raise ValueError("monitor: val_loss cannot be summed with metrics (lower vs higher is better)")
        unknown = [t for t in terms if t != "val_loss" and t not in self.metrics]
        if unknown:
            raise ValueError(f"monitor: {', '.join(unknown)} not in eval.metrics {self.metrics}")
        return self


class LogSection(Schema):
    trackers: list[Literal["tensorboard", "wandb", "mlflow"]] = Field(default_factory=list)
    """Experiment trackers (through accelerate), used when installed."""
    project: str = "captune"
    """Project name for the trackers."""


class TrainConfig(Schema):
    output_dir: str = "runs/finetune"
    """Run directory: config.yaml, metrics.jsonl, checkpoints/{best,last}/."""
    model: ModelSection = Field(default_factory=ModelSection)
    """The base model."""
    data: DataSection
    """Training and validation data."""
    finetune: FinetuneConfig = Field(default_factory=FinetuneConfig)
    """What trains and how (LoRA settings, trainability per part)."""
    train: TrainSection = Field(default_factory=TrainSection)
    """Optimization."""
    eval: EvalSection = Field(default_factory=EvalSection)
    """Evaluation during training and checkpoint selection."""
    log: LogSection = Field(default_factory=LogSection)
    """Logging."""
