"""The grid-search report, ``DIR/report.html``: the ranked table, every run's curves, the test comparisons.

    write_sweep_report("runs/sweep", summary)    # summary: what captune.train.sweep.run_sweep writes to sweep.json

One self-contained HTML file (the figure inline, nothing fetched). The table lists every run
best first, with its grid values, its best ``eval.monitor`` on validation and the step it was
reached, the other validation metrics there, trainable parameters and training seconds. The
figure draws every run's training loss and validation monitor over the optimizer steps, coloured
by rank. Each tested run gets a table of its test metrics against its base model, with the 95%
interval of the difference and the p-value from ``captune compare``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from captune import __version__
from captune.report.render import template_env
from captune.report.run import read_run
from captune.report.sections import Picture
from captune.report.text import label


def write_sweep_report(out: str | os.PathLike, summary: dict[str, Any]) -> Path:
    """Write ``out/report.html`` from the sweep summary and the run folders; returns its path."""
    from captune.io import write_text

    out = Path(out)
    rows = summary["runs"]
    curves = [(row, read_run(row["dir"])) for row in rows if row["status"] != "failed"]
    png = sweep_curves([(_legend(row), run.train, run.evals) for row, run in curves], summary["monitor"])
    ctx = {
        "title": f"Grid search: {out.resolve().name}",
        "generated": time.strftime("%Y-%m-%d %H:%M"),
        "version": __version__,
        "summary": summary,
        "keys": list(summary["grid"]),
        "val_metrics": list(dict.fromkeys(m for r in rows for m in (r.get("val") or {}) if m != "val_loss")),
        "figure": Picture("curves", png, "training loss and validation monitor of every run") if png else None,
        "tested": [r for r in rows if r.get("test")],
        "monitor_label": monitor_label(summary["monitor"]),
    }
    html = template_env(autoescape=True).get_template("sweep.html.j2").render(**ctx)
    return write_text(out / "report.html", html)


def monitor_label(monitor: str) -> str:
    """``cider+bleu_4`` -> ``validation CIDEr + BLEU-4``; ``val_loss`` -> ``validation loss``."""
    if monitor == "val_loss":
        return "validation loss"
    return "validation " + " + ".join(label(t.strip()) for t in monitor.split("+"))


def _legend(row: dict[str, Any]) -> str:
    return f"#{row['rank']} {row['name']}" if row.get("rank") else row["name"]


def sweep_curves(runs: list[tuple[str, list[dict], list[dict]]], monitor: str) -> bytes | None:
    """Training loss (left) and the validation monitor (right) over optimizer steps, one line per run."""
    from captune.report import plots

    if not runs:
        return None
    plt = plots.plt
    fig, (loss_ax, val_ax) = plt.subplots(1, 2, figsize=(10.5, 3.9))
    for k, (name, train, evals) in enumerate(runs):
        colour = plots.COLOURS[k % len(plots.COLOURS)]
        style = "-" if k < len(plots.COLOURS) else "--"
        if train:
            loss_ax.plot([e["step"] for e in train], [e["loss"] for e in train], style + "o", color=colour, lw=1.1,
                         ms=2.5 if len(train) < 30 else 0)
        points = [(e["step"], e["score"]) for e in evals if e.get("score") is not None]
        if points:
            val_ax.plot(*zip(*points), style + "o", color=colour, lw=1.3, ms=3.5, label=name)
    loss_ax.set_ylabel("training loss", fontsize=9)
    val_ax.set_ylabel(monitor_label(monitor), fontsize=9)
    for ax in (loss_ax, val_ax):
        ax.set_xlabel("optimizer step", fontsize=9)
        plots._style(ax)
    val_ax.legend(fontsize=7.5, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return plots._png(fig)
