"""Load captioning models by name, Hugging Face id or local directory, offline first.

``load_captioner`` returns ``(model, processor)`` for a base model; ``load_checkpoint`` loads a
directory written by ``captune train`` (a PEFT adapter or full weights, the processor, and
``captune.json`` naming the base model). Hub ids are looked up in the local cache first
(``captune.hub.from_pretrained``); when the weights are not on this machine the error says which
model, where it looked and how to get it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from captune.errors import CaptuneError, ModelNotFoundError
from captune.hub import from_pretrained
from captune.models.registry import CAPTIONER, lookup

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
DTYPE_CHOICES = ("auto", *DTYPES)
CHECKPOINT_META = "captune.json"


def resolve_dtype(dtype: str) -> str:
    """``auto`` is bfloat16 on a CUDA GPU with native bfloat16 (Ampere and later), else float32.

    float16 is never picked: Flan-T5 overflows in it. The other names pass through; anything else is an
    error.
    """
    if dtype == "auto":
        native = torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)
        return "bfloat16" if native else "float32"
    if dtype not in DTYPES:
        raise CaptuneError(f"dtype {dtype!r}: expected one of {', '.join(DTYPE_CHOICES)}")
    return dtype


def load_captioner(
    name: str,
    dtype: str = "float32",
    quantization: str = "none",
    device_map: Any = None,
):
    """Load a base captioner (BLIP-2, LLaVA-1.5 or BLIP) and its processor; see ``captune models list``."""
    from captune.models.family import family_for

    dtype = resolve_dtype(dtype)
    entry = lookup(name)
    if entry is not None and entry.task != CAPTIONER:
        raise CaptuneError(f"model {name!r} is a {entry.task} model, not a captioner; see `captune models list`")
    if entry is not None and entry.loader is not None:
        if quantization != "none":
            quantization_config(quantization, dtype)  # explains what is missing (CUDA, bitsandbytes)
            raise CaptuneError(f"{name} is built in memory; QLoRA quantizes checkpoints loaded from disk: "
                               "save it with save_pretrained and pass the folder")
        model, processor = entry.loader()
    else:
        source = entry.checkpoint if entry else name
        model, processor = _load_pretrained(name, source, dtype, quantization, device_map)
    family_for(model.config).prepare(model, processor)
    check_dtype(model, dtype)
    if model.dtype != DTYPES[dtype] and quantization == "none":
        model = model.to(DTYPES[dtype])
    return model, processor


def check_dtype(model, dtype: str) -> None:
    if dtype == "float16" and language_model_kind(model.config) == "t5":
        raise CaptuneError(
            "Flan-T5 overflows in float16 (its activations exceed 65504): use dtype bfloat16 or float32"
        )


def language_model_kind(config) -> str:
    """``opt``, ``t5``, ``llama`` or ``bert``: the kind of language model a captioner's config has."""
    from captune.models.family import family_for

    return family_for(config).language_model(config)


def _load_pretrained(name: str, source: str, dtype: str, quantization: str, device_map: Any):
    from transformers import AutoConfig, AutoProcessor

    from captune.models.family import family_for

    path = Path(source).expanduser()
    is_local = path.is_dir()
    looks_like_path = source.startswith((".", "/", "~")) or source.count("/") > 1
    if not is_local and looks_like_path:
        raise ModelNotFoundError(f"model {name!r}: no directory {path} (expected a saved model folder)")
    target = str(path) if is_local else source
    try:
        family = family_for(from_pretrained(AutoConfig.from_pretrained, target, what="the config"))
        kwargs: dict[str, Any] = {"dtype": DTYPES[dtype]}
        if quantization != "none":
            kwargs["quantization_config"] = quantization_config(quantization, dtype, family.quantization_skip)
        device_map = device_map_for(quantization, device_map)
        if device_map is not None:
            kwargs["device_map"] = device_map
        processor = from_pretrained(AutoProcessor.from_pretrained, target, what="the processor")
        model = from_pretrained(family.transformers_class().from_pretrained, target, what=family.name, **kwargs)
    except ModelNotFoundError as err:
        if name == target:
            raise
        raise ModelNotFoundError(f"model {name!r}: {err}") from err.__cause__  # the registered name, too
    return model, processor


def device_map_for(quantization: str, device_map: Any = None, local_rank: int | None = None):
    """Where ``from_pretrained`` puts the weights: ``device_map`` when given; for QLoRA, which loads
    straight onto a GPU, this process's own GPU (its local rank under ``accelerate launch``, so two
    processes do not both load onto GPU 0); otherwise None (the caller moves the model)."""
    if device_map is not None or quantization == "none":
        return device_map
    if local_rank is None:
        from accelerate import PartialState

        local_rank = PartialState().local_process_index
    return {"": local_rank}


def quantization_config(quantization: str, dtype: str, skip: tuple[str, ...] = ()):
    """bitsandbytes settings for QLoRA: only the language model is quantized (``skip`` names the rest)."""
    if quantization not in ("4bit", "8bit"):
        raise CaptuneError(f"quantization {quantization!r}: expected none, 4bit or 8bit")
    if not torch.cuda.is_available():
        raise CaptuneError(f"QLoRA ({quantization}) needs a CUDA GPU; this machine has none. Use quantization: none")
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        raise CaptuneError("QLoRA needs bitsandbytes: pip install 'captune[qlora]'") from None
    from transformers import BitsAndBytesConfig

    skip = list(skip)
    if quantization == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=skip)
    compute = DTYPES["bfloat16" if dtype == "float32" else dtype]
    return BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=compute, llm_int8_skip_modules=skip,
    )


def read_checkpoint_meta(path: str | os.PathLike) -> dict:
    meta = Path(path) / CHECKPOINT_META
    if not meta.exists():
        raise CaptuneError(f"{path}: not a captune checkpoint (no {CHECKPOINT_META}); pass --model for a base model")
    return json.loads(meta.read_text())


def load_checkpoint(path: str | os.PathLike, model: str | None = None, dtype: str = "float32", merge: bool = False):
    """Load a checkpoint written by ``captune train``: ``(model, processor, meta)``.

    ``model`` overrides the base model recorded in the checkpoint (for weights moved elsewhere).
    """
    from transformers import AutoConfig, AutoProcessor

    from captune.models.family import family_for

    dtype = resolve_dtype(dtype)
    meta = read_checkpoint_meta(path)
    processor = AutoProcessor.from_pretrained(str(path))
    if meta["kind"] == "full":
        family = family_for(AutoConfig.from_pretrained(str(path)))
        net = family.transformers_class().from_pretrained(str(path), dtype=DTYPES[dtype])
        family.prepare(net, processor)
        return net, processor, meta
    from peft import PeftModel

    from captune.models.peft import load_full_parts

    base, _ = load_captioner(model or meta["base_model"], dtype=dtype)
    net = PeftModel.from_pretrained(base, str(path))
    load_full_parts(net, path)
    if merge:
        net = net.merge_and_unload()
    net.eval()
    return net, processor, meta
