"""The report's sections as plain data: bottom line, data, set-up, examples, errors, ratings.

Each function takes what was read from disk (``Run``, loaded ``eval.json`` objects, comparison
results) and returns dicts and lists the templates render; nothing here writes files.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from captune.errors import DataError
from captune.evaluate.error_analysis import FLAGS, extremes, sample_ids
from captune.report.text import interval, label, num, p_value, percent, signed, verdict

HEADLINE_METRICS = (
    "cider",
    "bleu_4",
    "clipscore",
    "rouge_l",
    "meteor",
    "spice",
    "refclipscore",
    "bertscore_f1",
)


@dataclass
class Picture:
    """A PNG shown in the HTML (as a data URI) and written next to the Markdown (as a file)."""

    name: str
    png: bytes
    alt: str

    @property
    def b64(self) -> str:
        return base64.b64encode(self.png).decode("ascii")

    @property
    def file(self) -> str:
        return f"report_files/{self.name}.png"


def thumbnail(path: str, name: str, size: int = 160) -> Picture | None:
    from PIL import Image

    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            im.thumbnail((size, size))
            if im.width < size // 2:  # tiny images (e.g. 64 px) are shown larger, pixels kept sharp
                factor = max(1, size // max(im.width, im.height))
                im = im.resize((im.width * factor, im.height * factor), Image.NEAREST)
            buf = io.BytesIO()
            im.save(buf, format="PNG", optimize=True)
    except OSError:
        return None
    return Picture(name, buf.getvalue(), f"image {name}")


def role(ev: dict) -> str:
    return (ev.get("model") or {}).get("source") or "captions"


# ---- bottom line ------------------------------------------------------------------------------
def bottom_line(pair: dict | None, evals: Sequence[dict], run_summary: dict | None) -> dict[str, Any]:
    """The headline sentence and supporting points."""
    if pair is None:
        return _without_comparison(evals, run_summary)
    rows = pair["metrics"]
    main = next((m for m in HEADLINE_METRICS if m in rows and rows[m].get("ci_low") is not None), None)
    a, b = pair["a"]["name"], pair["b"]["name"]
    tuned = (pair["a"]["model"] or {}).get("source") == "base model" and (pair["b"]["model"] or {}).get(
        "source"
    ) == "fine-tuned checkpoint"
    points = [
        _metric_point(m, rows[m]) for m in HEADLINE_METRICS if m in rows and rows[m].get("ci_low") is not None
    ]
    if main is None:
        return {
            "headline": f"{b} against {a}: no metric with an interval to judge by.",
            "verdict": None,
            "points": points,
        }
    r, what = rows[main], verdict(rows[main])
    subject = "Fine-tuning" if tuned else f"{b} (against {a})"
    rel = f", {percent(r)}" if r.get("rel_delta") is not None else ""
    change = (
        f"{label(main)} went from {num(r['a'])} to {num(r['b'])} ({signed(r['delta'])}{rel}; "
        f"95% interval {interval(r)}, p {p_value(r['p_value'])}) on {pair['images']} test images"
    )
    if what == "better":
        headline = f"{subject} helped: {change}. The improvement is larger than resampling noise."
    elif what == "worse":
        headline = f"{subject} made captions worse: {change}. The drop is larger than resampling noise."
    elif r["ci_low"] > 0 or r["ci_high"] < 0:  # not significant by the permutation test alone
        alpha = 1 - pair.get("confidence", 0.95)
        headline = (
            f"{subject} made no clear difference: {change}. The interval excludes 0 but the "
            f"permutation test's p is {p_value(r['p_value'])} (not below {alpha:.2g}): the two "
            "tests disagree, so the change is not shown to be more than noise."
        )
    else:
        half = (r["ci_high"] - r["ci_low"]) / 2
        headline = (
            f"{subject} made no clear difference: {change}. The interval includes 0: with this many "
            f"images, changes smaller than about ±{num(half)} cannot be told from noise."
        )
    return {"headline": headline, "verdict": what, "points": points}


def _metric_point(metric: str, r: dict) -> str:
    what = verdict(r) or "no interval"
    rel = f", {percent(r)}" if r.get("rel_delta") is not None else ""
    return (
        f"{label(metric)}: {num(r['a'])} → {num(r['b'])} ({signed(r['delta'])}{rel}), "
        f"95% interval {interval(r)}, p {p_value(r['p_value'])}: {what}."
    )


def _without_comparison(evals: Sequence[dict], run_summary: dict | None) -> dict[str, Any]:
    points = []
    if run_summary and run_summary.get("first_loss") is not None:
        points.append(
            f"Validation loss went from {num(run_summary['first_loss'])} (step {run_summary['first_step']}) "
            f"to {num(run_summary['best_loss'])} at the best checkpoint (step {run_summary['best_step']})."
        )
    for ev in evals:
        shown = [
            f"{label(m)} {num(ev['metrics'][m])}"
            for m in HEADLINE_METRICS
            if ev["metrics"].get(m) is not None
        ]
        points.append(
            f"{ev['name']} on {ev['data']['images']} images: " + (", ".join(shown) or "no metrics") + "."
        )
    headline = (
        "No comparison: evaluate the base model and the fine-tuned checkpoint on the same test set "
        "(captune evaluate), then run captune report again with both folders."
    )
    return {"headline": headline, "verdict": None, "points": points}


def run_summary(run) -> dict[str, Any] | None:
    losses = [e for e in run.evals if e.get("val_loss") is not None]
    if not losses:
        return None
    best = run.best or {}
    best_step = best.get("step", losses[-1]["step"])
    best_loss = next((e["val_loss"] for e in losses if e["step"] == best_step), losses[-1]["val_loss"])
    return {
        "first_loss": losses[0]["val_loss"],
        "first_step": losses[0]["step"],
        "best_loss": best_loss,
        "best_step": best_step,
    }


# ---- set-up -----------------------------------------------------------------------------------
PART_NAMES = {"vision": "vision encoder", "qformer": "Q-Former", "projector": "projector", "lm": "language model"}


def model_parts(ft: dict, start: dict) -> dict[str, Any]:
    """Each part of the trained model -> how it trained (``finetune``'s mode), for the parts its
    family has (the run's start records them; runs from before that were BLIP-2 runs)."""
    names = start.get("parts") or ["vision", "qformer", "lm"]
    return {p: ft.get(p) for p in PART_NAMES if p in names}


def setup(run) -> dict[str, Any]:
    cfg, start = run.config, run.start
    ft, tr, ev = cfg.get("finetune", {}), cfg.get("train", {}), cfg.get("eval", {})
    parts = model_parts(ft, start)
    lora = [p for p, mode in parts.items() if mode == "lora"]
    method = (
        f"{ft.get('method', 'lora')} (r={ft.get('r')}, alpha={ft.get('alpha')}, dropout={ft.get('dropout')}, "
        f"targets={ft.get('targets')}) on {', '.join(lora)}"
        if lora
        else ""
    )
    full = [p for p, mode in parts.items() if mode == "full"]
    if full:
        method = (method + "; " if method else "") + "full fine-tuning of " + ", ".join(full)
    total, trainable = start.get("total"), start.get("trainable")
    steps = tr.get("max_steps") or f"{tr.get('epochs')} epochs"
    hyper = [
        (
            "learning rate",
            (f"{tr.get('lr')} ({tr.get('scheduler')}, warmup "
            f"{tr.get('warmup_steps') if tr.get('warmup_steps') is not None else tr.get('warmup_ratio')})"),
        ),
        (
            "batch",
            (f"{tr.get('batch_size')} per device x {tr.get('grad_accum')} accumulation x "
            f"{start.get('processes', 1)} processes"),
        ),
        (
            "steps",
            (f"{steps} ({start.get('total_steps', '?')} optimizer steps, "
            f"{start.get('steps_per_epoch', '?')} per epoch)"),
        ),
        (
            "optimizer",
            (f"AdamW, weight decay {tr.get('weight_decay')}, betas {tr.get('betas')}, "
            f"gradient clipping {tr.get('max_grad_norm')}"),
        ),
        ("precision", f"{tr.get('precision')} (weights {cfg.get('model', {}).get('dtype')})"),
        ("prompt", repr(cfg["data"]["prompt"]) if cfg.get("data", {}).get("prompt") else "(none)"),
        (
            "checkpoint selection",
            f"best {ev.get('monitor')} over evaluations every "
            f"{ev.get('every_steps') or 'epoch'} steps on {ev.get('subset')} validation images"
            + (
                f", early stopping after {ev.get('patience')} without improvement"
                if ev.get("patience")
                else ""
            ),
        ),
        ("seed", tr.get("seed")),
    ]
    return {
        "model": cfg.get("model", {}).get("name"),
        "parts": parts,
        "what_trains": ", ".join(f"{PART_NAMES[p]}: {mode}" for p, mode in parts.items()),
        "method": method or "–",
        "trainable": trainable,
        "total": total,
        "share": (100 * trainable / total) if trainable and total else None,
        "by_part": start.get("trainable_by_part") or {},
        "hyper": hyper,
        "hardware": start.get("hardware"),
        "device": start.get("device"),
        "feature_cache": start.get("feature_cache"),
        "duration": _duration(run.duration_s),
        "steps_done": (run.end or {}).get("step") or (run.train[-1]["step"] if run.train else None),
        "best_step": (run.best or {}).get("step"),
        "stopped_early": bool(run.early_stop),
        "resumed": len(run.resumes),
    }


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    minutes, s = divmod(round(seconds), 60)
    hours, m = divmod(minutes, 60)
    return f"{hours} h {m} min" if hours else f"{m} min {s} s" if m else f"{s} s"


# ---- examples ---------------------------------------------------------------------------------
def example_grid(evals: Sequence[dict], k: int = 8, seed: int = 0) -> list[dict[str, Any]]:
    """A fixed random sample of images with references and every model's caption."""
    if not evals:
        return []
    by_id = [{r["image_id"]: r for r in ev["per_image"]} for ev in evals]
    ids = [i for i in sample_ids(list(by_id[0]), k, seed) if all(i in m for m in by_id)]
    return [
        _example(i, by_id[0][i], [(ev["name"], m[i]) for ev, m in zip(evals, by_id)], f"sample_{n}")
        for n, i in enumerate(ids)
    ]


def _example(image_id: str, row: dict, captions: list[tuple[str, dict]], pic: str) -> dict[str, Any]:
    return {
        "image_id": image_id,
        "thumb": thumbnail(row["image"], pic),
        "references": row["references"],
        "captions": [
            {
                "model": name,
                "caption": r["caption"],
                "cider": r.get("scores", {}).get("cider"),
                "flags": sorted(r.get("flags", {})),
            }
            for name, r in captions
        ],
    }


def error_section(evals: Sequence[dict], k: int = 3) -> dict[str, Any]:
    """Flag counts per model, and the worst and best captions of the last model."""
    if not evals:
        return {}
    checked = [f for f in FLAGS if any(f in ev["errors"]["counts"] for ev in evals)]
    table = [
        {
            "flag": f,
            "help": FLAGS[f],
            "counts": [(ev["errors"]["counts"].get(f), ev["errors"]["shares"].get(f)) for ev in evals],
        }
        for f in checked
    ]
    last = evals[-1]
    examples = {}
    for metric in ("cider", "clipscore"):
        values = [r.get("scores", {}).get(metric) for r in last["per_image"]]
        if any(v is not None for v in values):
            picks = extremes(values, k)
            examples[metric] = {
                side: [
                    _flagged(last["per_image"][i], f"{metric}_{side}_{n}", metric) for n, i in enumerate(idx)
                ]
                for side, idx in picks.items()
            }
    evidence = _evidence(last, checked)
    return {
        "table": table,
        "models": [ev["name"] for ev in evals],
        "model": last["name"],
        "examples": examples,
        "evidence": evidence,
        "length_range": last["errors"].get("length_range"),
    }


def _flagged(row: dict, pic: str, metric: str) -> dict[str, Any]:
    return {
        "image_id": row["image_id"],
        "thumb": thumbnail(row["image"], pic),
        "caption": row["caption"],
        "references": row["references"][:2],
        "value": row.get("scores", {}).get(metric),
        "flags": {f: ", ".join(v) for f, v in row.get("flags", {}).items()},
    }


def _evidence(ev: dict, flags: Sequence[str], k: int = 2) -> list[dict[str, Any]]:
    """For each flag, a couple of captions that carry it, with what raised it."""
    out = []
    for f in flags:
        rows = [r for r in ev["per_image"] if f in r.get("flags", {})][:k]
        if rows:
            out.append(
                {
                    "flag": f,
                    "examples": [{"caption": r["caption"], "why": ", ".join(r["flags"][f])} for r in rows],
                }
            )
    return out


# ---- human ratings ----------------------------------------------------------------------------
def ratings_section(
    path: Path | None, model_names: Sequence[str], resamples: int = 1000, seed: int = 0
) -> dict[str, Any] | None:
    """Mean rating per model with a bootstrap interval; paired difference to the first model."""
    import numpy as np

    from captune.evaluate.resample import MeanStat, paired_test
    from captune.io import iter_jsonl
    from captune.review.export import is_export_row

    if path is None or not Path(path).exists():
        return None
    lines = list(iter_jsonl(path))
    if lines and is_export_row(lines[0][1]):
        return study_ratings(path, lines, model_names, resamples, seed)
    per: dict[str, dict[str, list[float]]] = {}
    for line, row in lines:
        if not {"image_id", "model", "rating"} <= set(row):
            raise DataError(f'{path}: line {line}: a rating is {{"image_id", "model", "rating"}}')
        per.setdefault(str(row["model"]), {}).setdefault(str(row["image_id"]), []).append(
            float(row["rating"])
        )
    order = [m for m in model_names if m in per] + sorted(m for m in per if m not in model_names)
    means = {m: {i: float(np.mean(v)) for i, v in per[m].items()} for m in order}
    rows = []
    for m in order:
        values = list(means[m].values())
        low, high = _mean_interval(values, resamples, seed)
        rows.append(
            {
                "model": m,
                "images": len(values),
                "ratings": sum(len(v) for v in per[m].values()),
                "mean": float(np.mean(values)),
                "ci_low": low,
                "ci_high": high,
            }
        )
    pairs = []
    for m in order[1:]:
        shared = [i for i in means[order[0]] if i in means[m]]
        if len(shared) >= 2:
            r = paired_test(
                [MeanStat("rating", [means[order[0]][i] for i in shared], [means[m][i] for i in shared])],
                len(shared),
                resamples,
                seed,
            )["rating"]
            pairs.append(
                {
                    "a": order[0],
                    "b": m,
                    "images": len(shared),
                    "delta": r.delta,
                    "ci_low": r.ci_low,
                    "ci_high": r.ci_high,
                    "p_value": r.p_value,
                }
            )
    return {"path": str(path), "rows": rows, "pairs": pairs, "study": None}


def study_ratings(path: Path, lines: list[tuple[int, dict]], model_names: Sequence[str], resamples: int,
                  seed: int) -> dict[str, Any]:
    """A review study's export (``captune review export``): means per system and criterion,
    agreement per criterion, the Bradley-Terry ranking from the preferences."""
    from captune.review.agreement import summarize
    from captune.review.export import EXPORT_KEYS, is_export_row

    for line, row in lines:
        missing = [k for k in EXPORT_KEYS if k not in row]
        if missing or not is_export_row(row):
            raise DataError(f"{path}: line {line}: a study export line has {', '.join(EXPORT_KEYS)}; "
                            f"missing {', '.join(missing)} (write it with `captune review export`)")
    rows = [row for _, row in lines]
    found = {r["system"] for r in rows}
    summary = summarize(rows, resamples, seed, systems=[m for m in model_names if m in found])
    return {"path": str(path), "rows": [], "pairs": [], "study": summary}


def _mean_interval(values: Sequence[float], resamples: int, seed: int) -> tuple[float, float]:
    import numpy as np

    from captune.evaluate.resample import resample_blocks

    v = np.asarray(values, dtype=float)
    means = np.concatenate([(c @ v) / len(v) for c in resample_blocks(len(v), resamples, seed)])
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)
