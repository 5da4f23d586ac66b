"""The fine-tuning recipe, read top to bottom: ``setup``, ``train``, ``evaluate``,
``save_checkpoint``, ``cleanup``.

    captune train configs/finetune/tiny-lora.yaml output_dir=runs/tiny
    accelerate launch -m captune train CONFIG.yaml     # several GPUs or machines

Runs on accelerate with one process or several under DDP (tested with two CPU processes on
gloo); FSDP and DeepSpeed are refused, since checkpoints and validation use the main process's
whole model. Only the main process writes; validation loss and captions are gathered from all
processes.
"""

from __future__ import annotations

import importlib.util
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from captune import __version__
from captune.config import dump_config
from captune.data.records import CaptionRecord, read_records
from captune.errors import CaptuneError
from captune.io import JsonlAppender
from captune.models.family import adapt, base_model, family_for
from captune.models.loading import language_model_kind, load_captioner
from captune.models.peft import apply_finetuning, trainable_report
from captune.train.checkpoint import TrainerState, load_training_state, rng_state, save_checkpoint
from captune.train.config import TrainConfig
from captune.train.data import CaptionDataset, Collate, EpochSampler
from captune.train.features import FeatureCache, captune_home, vision_fingerprint
from captune.train.optim import build_optimizer, build_scheduler, warmup_steps
from captune.train.validation import Validator


def _enable_activation_checkpointing(model) -> None:
    """Non-reentrant activation checkpointing by the name the installed transformers has: newer ones
    call it ``activation_checkpointing_enable`` and warn that ``gradient_checkpointing_enable``, all
    that the oldest supported one has, goes in transformers 6."""
    kwargs = {"use_reentrant": False}
    enable = getattr(model, "activation_checkpointing_enable", None)
    if enable is not None:
        enable(activation_checkpointing_kwargs=kwargs)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


class Finetune:
    def __init__(self, cfg: TrainConfig, resume: bool = False, progress: bool | None = None):
        self.cfg = cfg
        self.resume = resume
        self.progress = progress
        self.out = Path(cfg.output_dir)
        self.ckpt_dir = self.out / "checkpoints"
        self.state = TrainerState()

    # ---- setup -------------------------------------------------------------------------
    def setup(self) -> None:
        from accelerate import Accelerator
        from accelerate.utils import set_seed

        cfg = self.cfg
        self._check_output_dir()
        cpu = not (torch.cuda.is_available() or torch.backends.mps.is_available())
        check_precision(cfg.train.precision, cpu)
        self.acc = Accelerator(
            # Without a GPU, processes started by `accelerate launch` / torchrun join one gloo group
            # (accelerate would otherwise run them as independent copies).
            cpu=cpu,
            mixed_precision=cfg.train.precision,
            gradient_accumulation_steps=cfg.train.grad_accum,
            log_with=_available_trackers(cfg.log.trackers) or None,
            project_dir=str(self.out),
        )
        check_distributed(self.acc.distributed_type)
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world != self.acc.num_processes:
            raise CaptuneError(f"launched as {world} processes but accelerate joined {self.acc.num_processes}; "
                               "check the accelerate config (`accelerate env`)")
        self.state.processes = self.acc.num_processes
        # Dropout draws from seed + rank: processes must not share masks. New layers still start
        # equal in every process (DDP copies process 0's weights when it wraps the model), and the
        # data order has its own generator (EpochSampler), the same in every process.
        set_seed(cfg.train.seed, device_specific=True)
        self._setup_model()
        self._setup_data()
        self.optimizer = build_optimizer(self.captioner, cfg.train.lr, cfg.train.weight_decay, cfg.train.betas)
        self.total_steps = cfg.train.max_steps or cfg.train.epochs * self.steps_per_epoch
        warm = warmup_steps(self.total_steps, cfg.train.warmup_ratio, cfg.train.warmup_steps)
        # The scheduler is stepped by hand once per optimizer step (never per process).
        self.scheduler = build_scheduler(
            self.optimizer, cfg.train.scheduler, self.total_steps, warm, cfg.train.lr, cfg.train.min_lr)
        self.captioner, self.optimizer, self.loader = self.acc.prepare(self.captioner, self.optimizer, self.loader)
        if self.resume:
            self.state = load_training_state(
                self.ckpt_dir / "last", self._inner_model(), self.optimizer, self.scheduler,
                self.acc.process_index, self.acc.num_processes)
        self.validator = Validator(self, self.val_records) if self.val_records else None
        if self.acc.is_main_process:
            self.out.mkdir(parents=True, exist_ok=True)
            dump_config(cfg, self.out / "config.yaml")
            self.log = JsonlAppender(self.out / "metrics.jsonl")
            self._event("resume" if self.resume else "start", **self._run_facts())
            if self.acc.log_with:
                self.acc.init_trackers(cfg.log.project, config=cfg.model_dump(mode="json"))

    def _check_output_dir(self) -> None:
        last = self.ckpt_dir / "last"
        if self.resume and not last.exists():
            raise CaptuneError(f"--resume: {last} does not exist; nothing to resume")
        if not self.resume and last.exists():
            raise CaptuneError(
                f"{self.out} already holds a run ({last}); pass --resume to continue it or choose another output_dir")

    def _setup_model(self) -> None:
        cfg = self.cfg
        model, self.processor = load_captioner(cfg.model.name, cfg.model.dtype, cfg.model.quantization)
        if cfg.train.precision == "fp16" and language_model_kind(model.config) == "t5":
            raise CaptuneError("train.precision fp16: Flan-T5 overflows in float16; use bf16 or no")
        if cfg.model.image_size:
            self.processor.image_processor.size = {"height": cfg.model.image_size, "width": cfg.model.image_size}
        if cfg.model.quantization != "none":
            from peft import prepare_model_for_kbit_training

            # Checkpointing is switched on below, non-reentrant (no input-gradient hook needed) and by
            # the name the installed transformers has; peft's would call the deprecated one.
            model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
        model = apply_finetuning(model, cfg.finetune)
        if cfg.train.gradient_checkpointing:
            _enable_activation_checkpointing(model)
        self.trainable = trainable_report(model)
        self.parts = list(family_for(base_model(model).config).parts)
        captioner, self.batcher = adapt(model, self.processor, cfg.data.max_prompt_tokens, cfg.data.max_caption_tokens)
        self.captioner = captioner.to(self.acc.device)

    def _setup_data(self) -> None:
        cfg = self.cfg
        train = read_records(cfg.data.train)
        if not train:
            raise CaptuneError(f"{cfg.data.train}: no training records")
        self.val_records = read_records(cfg.data.val) if cfg.data.val else []
        self.features = self._feature_cache(
            [(r, self._root(cfg.data.train)) for r in train] + [(r, self._root(cfg.data.val)) for r in self.val_records])
        self.train_ds = CaptionDataset(
            train, self._root(cfg.data.train), cfg.data.prompt, cfg.data.captions, cfg.train.seed, self.features)
        self.sampler = EpochSampler(len(self.train_ds), cfg.train.seed)
        self.loader = DataLoader(
            self.train_ds, batch_size=cfg.train.batch_size, sampler=self.sampler,
            collate_fn=Collate(self.batcher), num_workers=cfg.train.num_workers,
            # Its own generator: starting an epoch must not draw from the global stream (dropout).
            generator=torch.Generator().manual_seed(cfg.train.seed))
        self.batches_per_epoch = math.ceil(len(self.train_ds) / (cfg.train.batch_size * self.acc.num_processes))
        self.steps_per_epoch = max(1, math.ceil(self.batches_per_epoch / cfg.train.grad_accum))

    def _root(self, records_path: str) -> Path:
        return Path(self.cfg.data.image_root) if self.cfg.data.image_root else Path(records_path).parent

    def _feature_cache(self, records: list[tuple[CaptionRecord, Path]]) -> FeatureCache | None:
        """The cache, filled for every ``(record, image root)`` given, when the ViT is frozen."""
        cfg = self.cfg
        use = cfg.train.feature_cache
        if use is False or (use == "auto" and cfg.finetune.vision != "frozen"):
            return None
        if cfg.finetune.vision != "frozen":
            raise CaptuneError("train.feature_cache: true, but the vision encoder trains, so its features change; "
                               "set finetune.vision: frozen or train.feature_cache: false")
        size = self.processor.image_processor.size["height"]
        cache = FeatureCache(captune_home() / "cache" / "features" / vision_fingerprint(self.captioner, size))
        images = [str(root / r.image) for r, root in records]
        if self.acc.is_main_process:
            cache.build(self.captioner, self.batcher, images, progress=self.progress)
        self.acc.wait_for_everyone()
        return cache

    # ---- train -------------------------------------------------------------------------
    def train(self) -> dict[str, Any]:
        from tqdm.auto import tqdm

        st, cfg = self.state, self.cfg
        bar = tqdm(total=self.total_steps, initial=st.step, desc="training", unit="step",
                   disable=not self.acc.is_main_process or (not self.progress and self.progress is not None) or None)
        running, count, t0 = 0.0, 0, time.perf_counter()
        self.captioner.train()
        while st.step < self.total_steps and not st.stopped_early:
            if st.batches_in_epoch >= self.batches_per_epoch:  # stopped after the epoch's last batch:
                self._end_epoch()  # nothing to skip to (accelerate 1.0 would hand out None)
                continue
            self.train_ds.set_epoch(st.epoch)
            # Set on the sampler itself: under several processes, accelerate's loader that skips the
            # batches already trained (resume) does not reach it and would replay epoch 0's order.
            self.sampler.set_epoch(st.epoch)
            loader = self.acc.skip_first_batches(self.loader, st.batches_in_epoch) if st.batches_in_epoch else self.loader
            loader.set_epoch(st.epoch)
            for batch in loader:
                loss = self._train_batch(batch)
                running, count = running + loss, count + 1
                st.batches_in_epoch += 1
                if not self.acc.sync_gradients:
                    continue
                st.step += 1
                bar.update(1)
                if st.step % cfg.train.log_every_steps == 0 or st.step == self.total_steps:
                    rate = count * cfg.train.batch_size * self.acc.num_processes / (time.perf_counter() - t0)
                    self._log_train(running / count, rate, bar)
                    running, count, t0 = 0.0, 0, time.perf_counter()
                self._after_step()
                if st.step >= self.total_steps or st.stopped_early:
                    break
            else:
                self._end_epoch()
        bar.close()
        return self._finish()

    def _train_batch(self, batch: dict[str, torch.Tensor]) -> float:
        with self.acc.accumulate(self.captioner):
            loss = self.captioner(**batch).loss
            self.acc.backward(loss * (self.cfg.train.grad_accum / self._accumulated_batches()))
            if self.acc.sync_gradients and self.cfg.train.max_grad_norm:
                self.grad_norm = float(self.acc.clip_grad_norm_(self.captioner.parameters(), self.cfg.train.max_grad_norm))
            if self.acc.sync_gradients:
                self.step_lr = self.scheduler.get_last_lr()[0]  # what this step uses; logged with it
            self.optimizer.step()
            if self.acc.sync_gradients and not self.acc.optimizer_step_was_skipped:
                self.scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)
        return float(self.acc.gather(loss.detach()).mean())

    def _end_epoch(self) -> None:
        st = self.state
        st.epoch, st.batches_in_epoch = st.epoch + 1, 0
        if self.cfg.eval.every_steps is None and st.step < self.total_steps:
            self._evaluate_and_save()

    def _accumulated_batches(self) -> int:
        """Forward batches in the current optimizer step: ``grad_accum``, or fewer in an epoch's last
        step. accelerate divides every loss by ``grad_accum``, which would count such a step's mean
        gradient as a share of one."""
        k = self.cfg.train.grad_accum
        return min(k, self.batches_per_epoch - self.state.batches_in_epoch // k * k)

    def _after_step(self) -> None:
        cfg, st = self.cfg, self.state
        if cfg.eval.every_steps and st.step % cfg.eval.every_steps == 0:
            self._evaluate_and_save()
        elif cfg.train.save_every_steps and st.step % cfg.train.save_every_steps == 0:
            self.save_checkpoint("last")

    def _finish(self) -> dict[str, Any]:
        st = self.state
        evaluated = st.history and st.history[-1]["step"] == st.step
        if not evaluated and not st.stopped_early:
            self._evaluate_and_save()
        if not self.validator:
            self.save_checkpoint("best")
        if self.acc.is_main_process:
            self._event("end", step=st.step, best_step=st.best_step, best_score=st.best_score,
                        stopped_early=st.stopped_early)
        return {
            "output_dir": str(self.out), "steps": st.step, "monitor": self.cfg.eval.monitor,
            "best_step": st.best_step, "best_score": st.best_score, "stopped_early": st.stopped_early,
            "trainable": self.trainable.line(), "best": str(self.ckpt_dir / "best"),
            "last": str(self.ckpt_dir / "last"),
        }

    # ---- evaluate ----------------------------------------------------------------------
    def _evaluate_and_save(self) -> None:
        st, cfg = self.state, self.cfg
        if self.validator is None:
            self.save_checkpoint("last")
            return
        values = self.validator.run()
        score = sum(values[t] for t in cfg.eval.monitor_terms())
        lower = cfg.eval.monitor == "val_loss"
        improved = st.best_score is None or (score < st.best_score if lower else score > st.best_score)
        if improved:
            st.best_score, st.best_step, st.evals_without_improvement = score, st.step, 0
        else:
            st.evals_without_improvement += 1
        st.history.append({"step": st.step, "epoch": st.epoch, **values})
        if cfg.eval.patience and st.evals_without_improvement >= cfg.eval.patience:
            st.stopped_early = True
        if self.acc.is_main_process:
            self._event("eval", step=st.step, epoch=st.epoch, **values, monitor=cfg.eval.monitor, score=score,
                        best=improved)
            self.acc.log({f"val/{k}": v for k, v in values.items()}, step=st.step)
            if st.stopped_early:
                self._event("early_stop", step=st.step, patience=cfg.eval.patience, best_step=st.best_step)
        if improved:
            self.save_checkpoint("best", values)
        self.save_checkpoint("last", values)

    # ---- checkpoints -------------------------------------------------------------------
    def save_checkpoint(self, which: str, values: dict[str, float] | None = None) -> None:
        full_state = which == "last"
        rng = self._rng_states() if full_state else None
        self.acc.wait_for_everyone()
        if self.acc.is_main_process:
            st = self.state
            meta = {
                "base_model": self.cfg.model.name, "family": self.captioner_family, "prompt": self.cfg.data.prompt,
                "step": st.step, "epoch": st.epoch, "metrics": values or {}, "monitor": self.cfg.eval.monitor,
                "max_caption_tokens": self.cfg.data.max_caption_tokens, "captune_version": __version__,
            }
            save_checkpoint(
                self.ckpt_dir / which, self._inner_model(), self.processor, self.cfg, meta,
                st if full_state else None, self.optimizer if full_state else None,
                self.scheduler if full_state else None, rng)
            self._event("checkpoint", which=which, step=st.step)
        self.acc.wait_for_everyone()

    def _rng_states(self) -> list[dict[str, Any]]:
        """Every process's random state, in rank order (a collective call: all processes run it)."""
        from accelerate.utils import gather_object

        mine = rng_state()
        return gather_object([mine]) if self.acc.num_processes > 1 else [mine]

    @property
    def captioner_family(self) -> str:
        return self.acc.unwrap_model(self.captioner).family

    def _inner_model(self):
        return self.acc.unwrap_model(self.captioner).model

    # ---- logging -----------------------------------------------------------------------
    def _event(self, event: str, **fields: Any) -> None:
        self.log.write({"event": event, "time": time.time(), **fields})

    def _log_train(self, loss: float, rate: float, bar) -> None:
        lr = self.step_lr
        fields = {"step": self.state.step, "epoch": self.state.epoch, "loss": loss, "lr": lr,
                  "grad_norm": getattr(self, "grad_norm", None), "examples_per_s": rate}
        bar.set_postfix(loss=f"{loss:.3f}", lr=f"{lr:.2e}")
        if self.acc.is_main_process:
            self._event("train", **fields)
            self.acc.log({"train/loss": loss, "train/lr": lr}, step=self.state.step)

    def _run_facts(self) -> dict[str, Any]:
        return {
            "model": self.cfg.model.name, "trainable": self.trainable.trainable, "total": self.trainable.total,
            "trainable_line": self.trainable.line(), "trainable_by_part": self.trainable.by_part,
            "parts": self.parts, "train_examples": len(self.train_ds), "val_images": len(self.val_records),
            "steps_per_epoch": self.steps_per_epoch, "total_steps": self.total_steps,
            "processes": self.acc.num_processes, "device": str(self.acc.device),
            "feature_cache": self.features is not None, "hardware": _hardware(), "resumed_at": self.state.step,
        }

    # ---- cleanup -----------------------------------------------------------------------
    def cleanup(self) -> None:
        if self.validator is not None:
            self.validator.close()
        if self.acc.is_main_process:
            self.log.close()
        if self.acc.log_with:
            self.acc.end_training()


def check_distributed(kind) -> None:
    """Refuse engines that shard the weights across processes: checkpoints are written from the
    main process's unwrapped model and validation runs on it, which holds every weight under DDP only."""
    from accelerate.utils import DistributedType

    if kind in (DistributedType.FSDP, DistributedType.DEEPSPEED, DistributedType.MEGATRON_LM):
        raise CaptuneError(
            f"accelerate is configured for {kind.value}: captune trains with DDP (one full copy of the model "
            "per process) and would save incomplete checkpoints from sharded weights. Choose multi-GPU in "
            "`accelerate config`, or launch with `accelerate launch --multi_gpu --num_processes N`")


def check_precision(precision: str, cpu: bool) -> None:
    """Refuse fp16 on the CPU: accelerate neither autocasts nor scales there, so the run would train in
    float32 while its config, report and model card say fp16."""
    if precision == "fp16" and cpu:
        raise CaptuneError("train.precision fp16: this run is on the CPU, where accelerate trains fp16 as plain "
                           "float32; set train.precision=bf16 (autocast on the CPU) or no, or train on a GPU")


def _available_trackers(names: list[str]) -> list[str]:
    modules = {"tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow"}
    found = [n for n in names if importlib.util.find_spec(modules[n])]
    for n in sorted(set(names) - set(found)):
        print(f"captune: tracker {n} is not installed (pip install {n}); logging to metrics.jsonl only",
              file=sys.stderr)
    return found


def _hardware() -> str:
    import platform

    if torch.cuda.is_available():
        return f"{torch.cuda.device_count()} x {torch.cuda.get_device_name(0)}"
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def finetune(cfg: TrainConfig, resume: bool = False, progress: bool | None = None) -> dict[str, Any]:
    """Run a fine-tuning job from a validated config; returns a summary of the run."""
    recipe = Finetune(cfg, resume=resume, progress=progress)
    recipe.setup()
    try:
        return recipe.train()
    finally:
        recipe.cleanup()
