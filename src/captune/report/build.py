"""Write the report of a fine-tuning run and/or a set of evaluations.

    captune report runs/x                                   # the run and runs/x/eval/*
    captune report runs/x runs/x/eval/base runs/x/eval/finetuned --out runs/x
    captune report runs/a/eval/base runs/b/eval/finetuned --out reports/a-vs-b   # evaluations only

Writes ``report.html`` (self-contained: styles inline, figures and thumbnails as data URIs, no
network) and ``report.md`` with its figures in ``report_files/``. The first evaluation folder is
the baseline the others are compared with (found ones: base models first, then by name).
Human ratings are read from ``ratings.jsonl`` (``{"image_id", "model", "rating"}`` per line;
``model`` is an evaluation folder's name) in the run folder, an evaluation folder, or ``ratings``,
which may also be a review study's export (``captune review export``: means per system and
criterion, agreement, the Bradley-Terry ranking).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from captune import __version__
from captune.errors import CaptuneError
from captune.evaluate.comparison import compare_evals, load_eval
from captune.report import plots
from captune.report import sections as sec
from captune.report.render import template_env
from captune.report.run import eval_dirs_in, is_run_dir, read_data, read_run
from captune.report.text import METRIC_HELP, label

FILES_DIR = "report_files"


def build_report(
    paths: Sequence[str | os.PathLike],
    out: str | os.PathLike | None = None,
    resamples: int = 1000,
    seed: int = 0,
    examples: int = 8,
    ratings: str | os.PathLike | None = None,
    model_card: bool = False,
) -> dict[str, Any]:
    """Build the report from a run folder and/or evaluation folders; returns the files written."""
    run_dir, eval_dirs = _classify(paths)
    if out is None and run_dir is None:
        raise CaptuneError("without a training run folder, say where the report goes: --out DIR")
    out = Path(out or run_dir)
    run = read_run(run_dir) if run_dir else None
    evals = [load_eval(d) for d in eval_dirs] if eval_dirs else _found_evals(run_dir) if run_dir else []
    pairs = [compare_evals(evals[0], ev, resamples, seed) for ev in evals[1:]]
    ctx = context(run, evals, pairs, examples, seed, _ratings_path(ratings, run_dir, evals), resamples)
    written = render(ctx, out)
    if model_card:
        if run is None:
            raise CaptuneError("--model-card needs the training run folder (its checkpoints/best/)")
        from captune.report.model_card import write_model_card

        written["model_card"] = str(write_model_card(run, evals, pairs, ctx))
    return written


def _classify(paths) -> tuple[Path | None, list[Path]]:
    run_dir, eval_dirs = None, []
    for p in map(Path, paths):
        if is_run_dir(p):
            if run_dir is not None:
                raise CaptuneError(f"two training runs given ({run_dir}, {p}); a report covers one run")
            run_dir = p
        elif (p / "eval.json").exists():
            eval_dirs.append(p)
        else:
            raise CaptuneError(
                f"{p}: neither a training run (metrics.jsonl, config.yaml) nor an evaluation "
                "(eval.json from `captune evaluate`)"
            )
    if run_dir is None and not eval_dirs:
        raise CaptuneError("give a training run folder and/or evaluation folders")
    return run_dir, eval_dirs


def _found_evals(run_dir: Path) -> list[dict]:
    """``RUN/eval/*`` evaluations, base models first (the baseline), then by folder name."""
    found = [load_eval(d) for d in eval_dirs_in(run_dir)]
    return sorted(found, key=lambda ev: (sec.role(ev) != "base model", ev["name"]))


def _ratings_path(ratings, run_dir, evals) -> Path | None:
    if ratings is not None:
        return Path(ratings)
    candidates = ([Path(run_dir) / "ratings.jsonl"] if run_dir else []) + [
        Path(ev["dir"]) / "ratings.jsonl" for ev in evals
    ]
    return next((c for c in candidates if c.exists()), None)


def context(run, evals, pairs, examples: int, seed: int, ratings_path, resamples: int) -> dict[str, Any]:
    """Everything the templates show."""
    summary = sec.run_summary(run) if run else None
    figures: dict[str, Any] = {"loss": None, "val_metrics": None, "errors": None}
    if run:
        best = (run.best or {}).get("step")
        figures["loss"] = _pic(
            "loss",
            plots.loss_curves(run.train, run.evals, best),
            "training and validation loss over optimizer steps",
        )
        figures["val_metrics"] = _pic(
            "val_metrics",
            plots.eval_metrics(run.evals, run.metric_names, best),
            "validation metrics at each evaluation",
        )
    figures["deltas"] = [
        _pic(f"deltas_{k}", plots.delta_forest(p), "difference per metric with 95% intervals")
        for k, p in enumerate(pairs)
    ]
    if evals:
        figures["errors"] = _pic(
            "errors",
            plots.error_bars(
                [e["name"] for e in evals], [e["errors"]["shares"] for e in evals], list(sec.FLAGS)
            ),
            "share of captions per error flag",
        )
    metrics_used = list(dict.fromkeys(m for ev in evals for m, v in ev["metrics"].items() if v is not None))
    metrics_used += [m for m in (run.metric_names if run else []) if m not in metrics_used]
    return {
        "title": _title(run, evals),
        "generated": time.strftime("%Y-%m-%d %H:%M"),
        "version": __version__,
        "run": run,
        "run_dir": str(run.dir) if run else None,
        "summary": sec.bottom_line(pairs[0] if pairs else None, evals, summary),
        "data": _data(run, evals),
        "setup": sec.setup(run) if run else None,
        "figures": figures,
        "evals": evals,
        "pairs": pairs,
        "resamples": resamples,
        "metric_help": [(label(m), METRIC_HELP[m]) for m in metrics_used if m in METRIC_HELP],
        "decodings": _decodings(evals),
        "grid": sec.example_grid(evals, examples, seed),
        "errors": sec.error_section(evals),
        "ratings": sec.ratings_section(ratings_path, [e["name"] for e in evals], resamples, seed),
        "appendix": _appendix(run, evals),
    }


def _pic(name: str, png: bytes | None, alt: str) -> sec.Picture | None:
    return sec.Picture(name, png, alt) if png else None


def _title(run, evals) -> str:
    if run:
        return (
            f"Fine-tuning report: {run.config.get('model', {}).get('name', '?')} — {run.dir.resolve().name}"
        )
    return "Evaluation report: " + " vs ".join(ev["name"] for ev in evals)


def _data(run, evals) -> dict[str, Any]:
    paths: dict[str, str | None] = {}
    if run:
        d = run.config.get("data", {})
        paths = {"train": d.get("train"), "validation": d.get("val")}
    for ev in evals:
        paths.setdefault("test", ev["data"]["path"])
    info = read_data(paths)
    groups: dict[str, dict[str, Any]] = {}
    for ev in evals:  # evaluations on the same file are listed once
        groups.setdefault(ev["data"]["sha256"], {"names": [], **ev["data"]})["names"].append(ev["name"])
    info["evaluated"] = list(groups.values())
    return info


def _decodings(evals) -> list[dict[str, Any]]:
    out = []
    for k, ev in enumerate(evals):
        rows = ev.get("decodings")
        if rows:
            names = list(dict.fromkeys(m for r in rows for m in r["metrics"]))
            out.append(
                {
                    "model": ev["name"],
                    "rows": rows,
                    "metrics": names,
                    "figure": _pic(
                        f"decodings_{k}", plots.decoding_scatter(rows), "quality against diversity"
                    ),
                }
            )
    return out


def _appendix(run, evals) -> dict[str, Any]:
    return {
        "config": run.config_text if run else None,
        "evals": [
            {
                "name": ev["name"],
                "dir": ev["dir"],
                "model": ev.get("model", {}),
                "data": ev["data"],
                "predictions": ev.get("predictions", {}),
                "config": ev.get("config", {}),
                "info": ev.get("info", {}),
                "unavailable": ev.get("unavailable", {}),
                "created": ev.get("created"),
            }
            for ev in evals
        ],
    }


def render(ctx: dict[str, Any], out: Path) -> dict[str, Any]:
    """Write report.html, report.md and the Markdown's figures; returns the paths."""
    from captune.io import write_text

    out.mkdir(parents=True, exist_ok=True)
    files = out / FILES_DIR
    files.mkdir(exist_ok=True)
    for pic in _pictures(ctx):
        (files / f"{pic.name}.png").write_bytes(pic.png)
    html = template_env(autoescape=True).get_template("report.html.j2").render(**ctx)
    md = template_env(autoescape=False).get_template("report.md.j2").render(**ctx)
    write_text(out / "report.html", html)
    write_text(out / "report.md", md)
    return {"html": str(out / "report.html"), "markdown": str(out / "report.md"), "files": str(files)}


def _pictures(ctx) -> list[sec.Picture]:
    figs = ctx["figures"]
    pics = [figs.get("loss"), figs.get("val_metrics"), figs.get("errors"), *figs.get("deltas", [])]
    pics += [d["figure"] for d in ctx["decodings"]]
    pics += [ex["thumb"] for ex in ctx["grid"]]
    for side in (ctx["errors"] or {}).get("examples", {}).values():
        pics += [ex["thumb"] for group in side.values() for ex in group]
    return [p for p in pics if p is not None]
