"""Model names and where their weights come from.

A name is either registered here (``blip2-opt-2.7b`` -> ``Salesforce/blip2-opt-2.7b``), a
Hugging Face model id, or a local directory. ``tiny-*`` models are built offline from configs
(see ``captune.models.tiny``); ``shapes-*`` models ship inside the package (see ``captune.demo``).

    captune models list
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class ModelEntry:
    name: str
    checkpoint: str
    """Hugging Face id, or ``builtin:<kind>`` for models captune builds or ships itself."""
    family: str
    """Language-model family: ``opt`` (decoder-only) or ``t5`` (encoder-decoder)."""
    params: str
    description: str

    def to_json(self) -> dict:
        return asdict(self)


_ENTRIES = [
    ModelEntry("blip2-opt-2.7b", "Salesforce/blip2-opt-2.7b", "opt", "3.8B", "BLIP-2, ViT-g + OPT-2.7B"),
    ModelEntry("blip2-opt-6.7b", "Salesforce/blip2-opt-6.7b", "opt", "7.8B", "BLIP-2, ViT-g + OPT-6.7B"),
    ModelEntry("blip2-flan-t5-xl", "Salesforce/blip2-flan-t5-xl", "t5", "3.9B", "BLIP-2, ViT-g + Flan-T5-XL"),
    ModelEntry("blip2-flan-t5-xxl", "Salesforce/blip2-flan-t5-xxl", "t5", "12.2B", "BLIP-2, ViT-g + Flan-T5-XXL"),
    ModelEntry("tiny-blip2-opt", "builtin:tiny-opt", "opt", "93K", "BLIP-2 architecture, random weights, for tests"),
    ModelEntry("tiny-blip2-t5", "builtin:tiny-t5", "t5", "120K", "BLIP-2 architecture, random weights, for tests"),
    ModelEntry("shapes-blip2-opt", "builtin:shapes-captioner", "opt", "1.5M",
               "BLIP-2 architecture pretrained on plain shapes-world captions; ships with captune"),
]
REGISTRY: dict[str, ModelEntry] = {e.name: e for e in _ENTRIES}


def register_model(entry: ModelEntry) -> None:
    REGISTRY[entry.name] = entry


def list_models() -> list[ModelEntry]:
    return list(REGISTRY.values())
