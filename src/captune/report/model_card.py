"""A Hugging Face model card for the best checkpoint of a run (``captune report RUN --model-card``).

Writes ``RUN/checkpoints/best/README.md`` (replacing the generic one peft writes there): YAML
front matter (base_model, library_name, tags, datasets, metrics, pipeline_tag), a description,
the training and generation configuration, how the checkpoint was chosen, the base-vs-fine-tuned
table with 95% intervals, strengths and trade-offs drawn from the comparison and the error
analysis, and a usage snippet with transformers + peft.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from captune.evaluate.error_analysis import FLAGS, NAMES
from captune.report.text import label, num, verdict

HF_METRICS = {
    "bleu_1": "bleu",
    "bleu_2": "bleu",
    "bleu_3": "bleu",
    "bleu_4": "bleu",
    "rouge_l": "rouge",
    "cider": "cider",
    "meteor": "meteor",
    "spice": "spice",
    "clipscore": "clipscore",
    "refclipscore": "clipscore",
    "bertscore_f1": "bertscore",
}

METHODS = {"lora": "LoRA", "rslora": "rsLoRA", "dora": "DoRA"}

# The checkpoint's language model (captune.json "family") -> how the card names and loads it.
FAMILY_CARDS = {
    "opt": {"language_model": "decoder-only OPT", "model_class": "Blip2ForConditionalGeneration",
            "processor_class": "Blip2Processor", "tag": "blip-2"},
    "t5": {"language_model": "encoder-decoder Flan-T5", "model_class": "Blip2ForConditionalGeneration",
           "processor_class": "Blip2Processor", "tag": "blip-2"},
    "llama": {"language_model": "decoder-only Llama", "model_class": "LlavaForConditionalGeneration",
              "processor_class": "LlavaProcessor", "tag": "llava"},
    "bert": {"language_model": "BERT text decoder", "model_class": "BlipForConditionalGeneration",
             "processor_class": "BlipProcessor", "tag": "blip"},
}


def write_model_card(run, evals: list[dict], pairs: list[dict], ctx: dict[str, Any]) -> Path:
    """Render the card into the run's ``checkpoints/best/README.md``; returns its path."""
    from captune.io import write_text
    from captune.report.render import template_env

    best = run.dir / "checkpoints" / "best"
    if not (best / "captune.json").exists():
        raise FileNotFoundError(f"{best}: no best checkpoint to describe")
    pair = _pair_for(best, pairs)
    card = {**ctx, **card_context(run, best, pair, evals)}
    text = template_env(autoescape=False).get_template("model_card.md.j2").render(**card)
    return write_text(best / "README.md", text)


def _pair_for(best: Path, pairs: list[dict]) -> dict | None:
    """The comparison whose B is this checkpoint (else the first one)."""
    for p in pairs:
        adapter = (p["b"]["model"] or {}).get("adapter")
        if adapter and Path(adapter).resolve() == best.resolve():
            return p
    return pairs[0] if pairs else None


def card_context(run, best: Path, pair: dict | None, evals: list[dict]) -> dict[str, Any]:
    meta = run.best or {}
    base = meta.get("base_model") or run.config.get("model", {}).get("name")
    hub_base = _hub_id(base)
    evaluated = next(
        (e for e in evals if pair and e["dir"] == pair["b"]["dir"]), evals[-1] if evals else None
    )
    names = list((pair or {}).get("metrics", {})) or list((evaluated or {}).get("metrics", {}))
    return {
        "card": {
            "base_model": hub_base,
            "base_is_builtin": _is_builtin(base),
            "library": "peft" if meta.get("kind") == "peft" else "transformers",
            "full_parts": _full_parts(run, best, meta),
            "family": meta.get("family", "opt"),
            **FAMILY_CARDS[meta.get("family", "opt")],
            "method": METHODS.get(run.config.get("finetune", {}).get("method", "lora"), "LoRA"),
            "path": str(best),
            "prompt": meta.get("prompt", ""),
            "monitor": meta.get("monitor"),
            "step": meta.get("step"),
            "selected_by": meta.get("metrics", {}),
            "datasets": _datasets(run),
            "metrics": sorted({HF_METRICS[m] for m in names if m in HF_METRICS}),
            "decoding": (evaluated or {}).get("config", {}).get("decoding")
            or run.config.get("eval", {}).get("decoding"),
            "strengths": strengths(pair, evals),
            "tradeoffs": tradeoffs(pair, evals),
            "pair": pair,
        }
    }


def _full_parts(run, best: Path, meta: dict) -> list[str]:
    """The parts trained in full beside a LoRA adapter (their weights are in ``full_parts.safetensors``)."""
    from captune.models.peft import FULL_PARTS_FILE, PARTS

    if meta.get("kind") != "peft" or not (Path(best) / FULL_PARTS_FILE).exists():
        return []
    finetune = run.config.get("finetune", {})
    return [part for part in PARTS if finetune.get(part) == "full"] or ["see config.yaml"]


def _hub_id(name: str | None) -> str | None:
    from captune.models.registry import lookup

    entry = lookup(name)
    if entry and not entry.checkpoint.startswith("builtin:"):
        return entry.checkpoint
    return name


def _is_builtin(name: str | None) -> bool:
    from captune.models.registry import lookup

    entry = lookup(name)
    return bool(entry and entry.checkpoint.startswith("builtin:"))


def _datasets(run) -> list[str]:
    data = run.config.get("data", {})
    return [f"{Path(p).parent.name}/{Path(p).name}" for p in (data.get("train"), data.get("val")) if p]


def strengths(pair: dict | None, evals: list[dict]) -> list[str]:
    out = [
        f"{label(m)} improved from {num(r['a'])} to {num(r['b'])} (95% interval of the change "
        f"[{num(r['ci_low'])}, {num(r['ci_high'])}])."
        for m, r in (pair or {}).get("metrics", {}).items()
        if verdict(r) == "better"
    ]
    return out + [
        f"Fewer captions with {NAMES[f]}: {a:.0%} → {b:.0%}."
        for f, a, b in _flag_changes(pair, evals)
        if b < a
    ]


def tradeoffs(pair: dict | None, evals: list[dict]) -> list[str]:
    out = [
        f"{label(m)} dropped from {num(r['a'])} to {num(r['b'])} (95% interval of the change "
        f"[{num(r['ci_low'])}, {num(r['ci_high'])}])."
        for m, r in (pair or {}).get("metrics", {}).items()
        if verdict(r) == "worse"
    ]
    out += [
        f"More captions with {NAMES[f]}: {a:.0%} → {b:.0%}."
        for f, a, b in _flag_changes(pair, evals)
        if b > a
    ]
    flat = [
        label(m) for m, r in (pair or {}).get("metrics", {}).items() if verdict(r) == "no clear difference"
    ]
    if flat:
        out.append(f"No clear change in {', '.join(flat)} on this test set.")
    return out


def _flag_changes(
    pair: dict | None, evals: list[dict], threshold: float = 0.05
) -> list[tuple[str, float, float]]:
    """Flags whose share of captions moved by more than ``threshold`` from the pair's A to its B
    (without a pair, from the first to the last model)."""
    if pair:
        by_dir = {e["dir"]: e for e in evals}
        evals = [by_dir[pair[side]["dir"]] for side in ("a", "b") if pair[side]["dir"] in by_dir]
    if len(evals) < 2:
        return []
    a, b = evals[0]["errors"]["shares"], evals[-1]["errors"]["shares"]
    return [(f, a[f], b[f]) for f in FLAGS if f in a and f in b and abs(b[f] - a[f]) > threshold]
