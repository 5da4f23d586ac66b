"""Export a fine-tuned checkpoint as a standalone model (adapter merged into the weights).

    captune export --adapter runs/x/checkpoints/best --merge --out exported/
"""

from __future__ import annotations

import os
from pathlib import Path

from captune.errors import CaptuneError
from captune.io import write_json
from captune.models.loading import CHECKPOINT_META, load_checkpoint


def export_merged(adapter: str | os.PathLike, out: str | os.PathLike, model: str | None = None) -> Path:
    """Write ``out`` loadable with ``Blip2ForConditionalGeneration.from_pretrained`` alone."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise CaptuneError(f"{out} exists and is not empty; choose a new folder")
    net, processor, meta = load_checkpoint(adapter, model=model, merge=True)
    net.save_pretrained(out, safe_serialization=True)
    processor.save_pretrained(out)
    # the base merged onto: ``model`` when it replaced the checkpoint's (captions and reports name it)
    base = model or meta["base_model"]
    write_json(out / CHECKPOINT_META, meta | {"kind": "full", "merged_from": str(adapter), "base_model": base})
    return out
