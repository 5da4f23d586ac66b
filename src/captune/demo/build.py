"""Build the shipped demo models from nothing: ``captune demo build-base --out DIR``.

1. Generate three shapes worlds with their own seeds: training (``seed``), validation
   (``seed + 1``: the warm-up's per-patch accuracy and the choice of checkpoint) and held-out
   (``seed + 2``: the figures in the manifest, measured on images that chose nothing).
2. Train a byte-level BPE tokenizer on the world's plain and house captions, so that a later
   fine-tune to the house style has its words.
3. Warm up the captioner's ViT (2-D sine-cosine positions, then per-patch shape labels from
   the scenes' annotations, ``captune.demo.vision``), then pretrain the whole
   BLIP-2-architecture captioner (ViT, Q-Former, OPT) on the plain captions only, with captune's own recipe (``captune.train.loop.finetune``, every part
   ``full``), and measure on the held-out images how often its greedy and beam captions name
   each object's colour and shape (``captune.demo.accuracy``).
4. Train a tiny CLIP contrastively on the same images with plain, house and label texts
   (``captune.demo.clip``) and measure retrieval and CLIPScore figures on held-out images.
5. Write both folders (``save_pretrained``) and ``MANIFEST.json``: the sha256 of every file,
   the figures, the configuration, the versions and the exact command.

Everything is seeded and runs with deterministic algorithms, so the same command on the same
machine (same thread count) writes the same bytes. About ten minutes on a 2-core CPU.
"""

from __future__ import annotations

import platform
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from captune.demo.clip import ClipArch, ClipTraining
from captune.demo.vision import VisionWarmup
from captune.io import write_json


@dataclass(frozen=True)
class CaptionerArch:
    image_size: int = 64
    patch_size: int = 8
    hidden: int = 128
    vision_layers: int = 3
    qformer_layers: int = 2
    lm_layers: int = 2
    heads: int = 4
    num_query_tokens: int = 8
    vocab_size: int = 1024
    """Upper bound for the BPE vocabulary (the world's words need fewer)."""


@dataclass(frozen=True)
class CaptionerTraining:
    steps: int = 2000
    batch_size: int = 64
    lr: float = 1e-3
    warmup_ratio: float = 0.05
    eval_every: int = 500


@dataclass(frozen=True)
class BuildConfig:
    n_images: int = 6000
    """Training images (one caption of five drawn per image and epoch)."""
    eval_images: int = 200
    """Validation images: the warm-up's per-patch accuracy and the checkpoint choice."""
    heldout_images: int = 1000
    """Held-out images (another seed, used for nothing else) the manifest's figures are measured on."""
    seed: int = 0
    captioner: CaptionerArch = field(default_factory=CaptionerArch)
    vision_warmup: VisionWarmup = field(default_factory=VisionWarmup)
    captioner_training: CaptionerTraining = field(default_factory=CaptionerTraining)
    clip: ClipArch = field(default_factory=ClipArch)
    clip_training: ClipTraining = field(default_factory=ClipTraining)


def build_base(out: str = "captune-base", n_images: int = 6000, seed: int = 0, captioner_steps: int | None = None,
               clip_steps: int | None = None, vision_steps: int | None = None, eval_images: int = 200,
               heldout_images: int = 1000, progress: bool | None = None) -> dict[str, Any]:
    """Build the captioner and the CLIP into ``out``/{captioner,clip} with ``out``/MANIFEST.json."""
    cfg = BuildConfig(n_images=n_images, eval_images=eval_images, heldout_images=heldout_images, seed=seed)
    if captioner_steps is not None:
        cfg = replace(cfg, captioner_training=replace(
            cfg.captioner_training, steps=captioner_steps, eval_every=max(1, captioner_steps // 4)))
    if vision_steps is not None:
        cfg = replace(cfg, vision_warmup=replace(cfg.vision_warmup, steps=vision_steps))
    if clip_steps is not None:
        cfg = replace(cfg, clip_training=replace(cfg.clip_training, steps=clip_steps, warmup=min(100, clip_steps)))
    from captune.demo.shipped import quiet_transformers

    out_dir = Path(out)
    command = _command(out, n_images, seed, captioner_steps, clip_steps, vision_steps, eval_images, heldout_images)
    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        with tempfile.TemporaryDirectory(prefix="captune-build-") as tmp, quiet_transformers():
            figures = _build(cfg, out_dir, Path(tmp), progress)
    finally:
        torch.use_deterministic_algorithms(deterministic)
    return write_manifest(out_dir, cfg, figures, command)


def _build(cfg: BuildConfig, out: Path, tmp: Path, progress: bool | None) -> dict[str, Any]:
    from captune.demo.captioner import build_captioner
    from captune.demo.world import THEMES, generate

    t0 = time.perf_counter()
    # every event theme, so that the house style meets every event name in training
    train = generate(tmp / "train", cfg.n_images, cfg.seed, style="both", n_events=min(len(THEMES), cfg.n_images))
    val = generate(tmp / "val", cfg.eval_images, cfg.seed + 1, style="both",
                   n_events=min(len(THEMES), cfg.eval_images))
    held = heldout_world(tmp / "heldout", cfg.seed, cfg.heldout_images)
    world_seconds = round(time.perf_counter() - t0, 1)
    for name in ("captioner", "clip"):
        shutil.rmtree(out / name, ignore_errors=True)
    captioner = build_captioner(cfg, train, val, tmp, out / "captioner", progress)
    clip = build_clip_model(cfg, train, out / "clip", progress)
    figures = heldout_figures(out, held)
    return {"world_seconds": world_seconds, "captioner": captioner | figures["captioner"],
            "clip": clip | figures["clip"]}


def heldout_world(out: Path, seed: int, n_images: int = 1000):
    """The held-out world of a build with ``seed``: its own seed (``seed + 2``), used for nothing but figures."""
    from captune.demo.world import THEMES, generate

    return generate(out, n_images, seed + 2, style="both", n_events=min(len(THEMES), n_images))


def heldout_figures(root: Path, held) -> dict[str, Any]:
    """The manifest's figures for the models under ``root`` on ``held`` (a ``WorldData``).

    Captioner: greedy and beam object accuracy (``captune.demo.accuracy``); CLIP: retrieval,
    right-against-wrong-colour CLIPScore, label AUCs and neighbours (``captune.demo.clip``).
    """
    from transformers import Blip2ForConditionalGeneration, Blip2Processor, CLIPModel, CLIPProcessor

    from captune.data.images import load_image
    from captune.demo import clip as c
    from captune.demo.captioner import BEAM, GREEDY, measure
    from captune.demo.shipped import quiet_transformers

    with quiet_transformers():
        model = Blip2ForConditionalGeneration.from_pretrained(root / "captioner", dtype=torch.float32).eval()
        processor = Blip2Processor.from_pretrained(root / "captioner")
        clip = CLIPModel.from_pretrained(root / "clip", dtype=torch.float32).eval()
        clip_processor = CLIPProcessor.from_pretrained(root / "clip")
    captioner = {"heldout_images": len(held.plain)}
    for name, decoding in (("greedy", GREEDY), ("beam", BEAM)):
        _, captioner[name] = measure(model, processor, held.plain, held.out_dir, decoding)
    pixels = c.pixel_tensor(clip_processor, [load_image(held.out_dir / r.image) for r in held.plain])
    return {"captioner": captioner, "clip": {"held_out": c.clip_figures(clip, clip_processor, pixels, held.plain)}}


def _command(out, n_images, seed, captioner_steps, clip_steps, vision_steps, eval_images, heldout_images) -> str:
    parts = ["captune demo build-base", f"--out {out}", f"--images {n_images}", f"--seed {seed}"]
    if vision_steps is not None:
        parts.append(f"--vision-steps {vision_steps}")
    if captioner_steps is not None:
        parts.append(f"--captioner-steps {captioner_steps}")
    if clip_steps is not None:
        parts.append(f"--clip-steps {clip_steps}")
    if eval_images != 200:
        parts.append(f"--eval-images {eval_images}")
    if heldout_images != 1000:
        parts.append(f"--heldout-images {heldout_images}")
    return " ".join(parts)


def write_manifest(out: Path, cfg: BuildConfig, figures: dict[str, Any], command: str) -> dict[str, Any]:
    import tokenizers
    import transformers

    from captune import __version__
    from captune.demo.shipped import MANIFEST
    from captune.io import file_sha256

    files = sorted(p for p in out.rglob("*") if p.is_file() and p.name != MANIFEST)
    manifest = {
        "command": command,
        "config": asdict(cfg),
        "figures": figures,
        "versions": {"captune": __version__, "torch": torch.__version__, "transformers": transformers.__version__,
                     "tokenizers": tokenizers.__version__, "python": platform.python_version()},
        "machine": {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads()},
        "files": {p.relative_to(out).as_posix(): file_sha256(p) for p in files},
        "bytes": {p.relative_to(out).as_posix(): p.stat().st_size for p in files},
    }
    write_json(out / MANIFEST, manifest)
    return manifest


def build_clip_model(cfg: BuildConfig, train, out: Path, progress: bool | None) -> dict[str, Any]:
    """Train the tiny CLIP on ``train`` (a ``WorldData``) and save it to ``out``."""
    from captune.data.images import load_image
    from captune.demo import clip as c

    lines = [c for records in (train.plain, train.house) for r in records for c in r.captions]
    lines += [c.label_prompt(label) for label in c.LABELS] + [c.CLIPSCORE_PREFIX]
    tokenizer = c.build_clip_tokenizer(lines, cfg.clip.vocab_size)
    model, processor = c.build_clip(tokenizer, cfg.clip, cfg.seed)
    pixels = c.pixel_tensor(processor, [load_image(train.out_dir / r.image) for r in train.plain])
    examples = [c.ClipExample(p.captions + h.captions, p.meta["labels"]) for p, h in zip(train.plain, train.house)]
    training = c.train_clip(model, processor, pixels, examples, cfg.clip_training, progress)
    from captune.demo.shipped import quiet_transformers

    with quiet_transformers():
        model.save_pretrained(out)
        processor.save_pretrained(out)
    return {"params": sum(p.numel() for p in model.parameters()), "training": training}
