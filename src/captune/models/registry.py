"""Model names and where their weights come from.

A name is either registered here (``blip2-opt-2.7b`` -> ``Salesforce/blip2-opt-2.7b``), a
Hugging Face model id, or a local directory. ``tiny-*`` models are built offline from configs
(see ``captune.models.tiny``). Other packages add names with ``register`` from a function named
in the ``captune.models`` entry-point group; the shipped demo registers ``shapes-blip2-opt`` and
``shapes-clip`` that way (``captune.demo.shipped.register_models``), so this package imports
nothing from the packages above it.

    captune models list

    # in a plugin's pyproject.toml:  [project.entry-points."captune.models"]  mine = "mypkg:register_models"
    register(ModelEntry("my-captioner", "builtin:my-captioner", "opt", "2M", "...", loader=load_mine))
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata

ENTRY_POINT_GROUP = "captune.models"
CAPTIONER, CLIP = "captioner", "clip"


@dataclass(frozen=True)
class ModelEntry:
    name: str
    checkpoint: str
    """Hugging Face id, or ``builtin:<kind>`` for models captune builds or ships itself."""
    family: str
    """Language-model family: ``opt``, ``llama`` (LLaVA) or ``bert`` (BLIP's text decoder), all decoder-only,
    or ``t5`` (encoder-decoder); ``clip`` for a CLIP."""
    params: str
    description: str
    task: str = CAPTIONER
    """``captioner`` (``load_captioner`` loads it) or ``clip`` (an image-text encoder for the metrics)."""
    loader: Callable[[], tuple] | None = field(default=None, compare=False, repr=False)
    """Builds ``(model, processor)`` for a ``builtin:`` model; None for models loaded from a checkpoint."""
    weights: Callable[[], str] | None = field(default=None, compare=False, repr=False)
    """The sha256 identifying a ``builtin:`` model's weights; None when its checkpoint name identifies it."""

    def to_json(self) -> dict:
        return {k: getattr(self, k) for k in ("name", "checkpoint", "family", "params", "description", "task")}


def _tiny(builder: str, *args: str) -> Callable[[], tuple]:
    def load() -> tuple:
        from captune.models import tiny

        return getattr(tiny, builder)(*args)

    return load


_ENTRIES = [
    ModelEntry("blip2-opt-2.7b", "Salesforce/blip2-opt-2.7b", "opt", "3.8B", "BLIP-2, ViT-g + OPT-2.7B"),
    ModelEntry("blip2-opt-6.7b", "Salesforce/blip2-opt-6.7b", "opt", "7.8B", "BLIP-2, ViT-g + OPT-6.7B"),
    ModelEntry("blip2-flan-t5-xl", "Salesforce/blip2-flan-t5-xl", "t5", "3.9B", "BLIP-2, ViT-g + Flan-T5-XL"),
    ModelEntry("blip2-flan-t5-xxl", "Salesforce/blip2-flan-t5-xxl", "t5", "12.2B", "BLIP-2, ViT-g + Flan-T5-XXL"),
    ModelEntry("llava-1.5-7b", "llava-hf/llava-1.5-7b-hf", "llama", "7.1B", "LLaVA-1.5, CLIP ViT-L/336 + Vicuna-7B"),
    ModelEntry("llava-1.5-13b", "llava-hf/llava-1.5-13b-hf", "llama", "13.4B", "LLaVA-1.5, CLIP ViT-L/336 + Vicuna-13B"),
    ModelEntry("blip-base", "Salesforce/blip-image-captioning-base", "bert", "247M", "BLIP captioner, ViT-B + BERT"),
    ModelEntry("blip-large", "Salesforce/blip-image-captioning-large", "bert", "470M", "BLIP captioner, ViT-L + BERT"),
    ModelEntry("tiny-blip2-opt", "builtin:tiny-opt", "opt", "93K", "BLIP-2 architecture, random weights, for tests",
               loader=_tiny("build_tiny_blip2", "opt")),
    ModelEntry("tiny-blip2-t5", "builtin:tiny-t5", "t5", "120K", "BLIP-2 architecture, random weights, for tests",
               loader=_tiny("build_tiny_blip2", "t5")),
    ModelEntry("tiny-llava", "builtin:tiny-llava", "llama", "80K", "LLaVA-1.5 architecture, random weights, for tests",
               loader=_tiny("build_tiny_llava")),
    ModelEntry("tiny-blip", "builtin:tiny-blip", "bert", "76K", "BLIP architecture, random weights, for tests",
               loader=_tiny("build_tiny_blip")),
]
REGISTRY: dict[str, ModelEntry] = {e.name: e for e in _ENTRIES}


def register(entry: ModelEntry) -> None:
    """Add (or replace) a model name; a ``builtin:`` checkpoint needs a ``loader``."""
    if entry.checkpoint.startswith("builtin:") and entry.loader is None:
        raise ValueError(f"model {entry.name!r}: a builtin checkpoint ({entry.checkpoint}) needs a loader")
    REGISTRY[entry.name] = entry



def list_models() -> list[ModelEntry]:
    return list(REGISTRY.values())


def lookup(name: str | None) -> ModelEntry | None:
    return REGISTRY.get(name or "")


def load_entry_points() -> None:
    """Call every function of the ``captune.models`` entry-point group (each calls ``register``).

    A plugin that fails to load is skipped with a warning naming it, so one broken package does not
    take every model name with it.
    """
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            ep.load()()
        except Exception as err:  # noqa: BLE001 - any plugin failure is reported, not fatal
            warnings.warn(f"captune model plugin {ep.name!r} ({ep.value}) failed to register: {err!r}",
                          stacklevel=2)


load_entry_points()
