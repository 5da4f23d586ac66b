"""The report's figures, drawn with matplotlib (Agg backend) and returned as PNG bytes.

Every function takes plain data (events, comparison rows) and returns ``bytes`` or ``None``
when there is nothing to draw.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt

from captune.report.text import label, num

COLOURS = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C"]
BETTER, WORSE, NEUTRAL = "#2E8B57", "#C0392B", "#7F8C8D"
DPI = 110


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _style(ax) -> None:
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(True, alpha=0.25, linewidth=0.6)
    ax.tick_params(labelsize=8)


def loss_curves(train: Sequence[dict], evals: Sequence[dict], best_step: int | None) -> bytes | None:
    """Training loss per logged step and validation loss per evaluation; learning rate below."""
    if not train and not evals:
        return None
    fig, (ax, lr_ax) = plt.subplots(
        2, 1, figsize=(7.2, 4.2), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    if train:
        ax.plot(
            [e["step"] for e in train],
            [e["loss"] for e in train],
            color=COLOURS[0],
            lw=1.2,
            label="training loss",
        )
        lr_ax.plot([e["step"] for e in train], [e["lr"] for e in train], color=COLOURS[4], lw=1.2)
    with_loss = [e for e in evals if e.get("val_loss") is not None]
    if with_loss:
        ax.plot(
            [e["step"] for e in with_loss],
            [e["val_loss"] for e in with_loss],
            "o-",
            color=COLOURS[1],
            lw=1.4,
            ms=4,
            label="validation loss",
        )
    if best_step is not None:
        for a in (ax, lr_ax):
            a.axvline(best_step, color=NEUTRAL, ls="--", lw=1)
        ax.annotate(
            "best checkpoint",
            (best_step, ax.get_ylim()[1]),
            fontsize=8,
            color=NEUTRAL,
            ha="right",
            va="top",
            rotation=90,
            xytext=(-3, -3),
            textcoords="offset points",
        )
    ax.set_ylabel("loss (cross-entropy)", fontsize=9)
    ax.legend(fontsize=8, frameon=False)
    lr_ax.set_ylabel("learning rate", fontsize=8)
    lr_ax.set_xlabel("optimizer step", fontsize=9)
    lr_ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
    for a in (ax, lr_ax):
        _style(a)
    return _png(fig)


def eval_metrics(evals: Sequence[dict], names: Sequence[str], best_step: int | None) -> bytes | None:
    """One small panel per validation metric, over the evaluations."""
    names = [n for n in names if any(e.get(n) is not None for e in evals)]
    if not names or not evals:
        return None
    cols = min(3, len(names))
    rows = (len(names) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols + 0.6, 2.1 * rows), squeeze=False)
    for k, name in enumerate(names):
        ax = axes[k // cols][k % cols]
        # BLEU's smoothing leaves ~1e-15 where nothing matches: that is 0, not a curve.
        points = [(e["step"], e[name] if abs(e[name]) > 1e-9 else 0.0)
                  for e in evals if e.get(name) is not None]
        ax.plot(*zip(*points), "o-", color=COLOURS[k % len(COLOURS)], lw=1.3, ms=3.5)
        if best_step is not None:
            ax.axvline(best_step, color=NEUTRAL, ls="--", lw=1)
        ax.set_title(label(name), fontsize=9)
        _style(ax)
    for k in range(len(names), rows * cols):
        axes[k // cols][k % cols].axis("off")
    fig.supxlabel("optimizer step", fontsize=9)
    fig.tight_layout()
    return _png(fig)


def delta_forest(pair: dict[str, Any]) -> bytes | None:
    """B - A per metric with its 95% interval: one row per metric, each on its own scale around 0."""
    # Rows whose values are all at BLEU's smoothing noise (1e-15 and below) carry no information.
    rows = [
        (m, r)
        for m, r in pair["metrics"].items()
        if r.get("ci_low") is not None and max(abs(r["ci_low"]), abs(r["ci_high"]), abs(r["delta"])) > 1e-9
    ]
    if not rows:
        return None
    fig, axes = plt.subplots(len(rows), 1, figsize=(7.2, 0.52 * len(rows) + 0.9), squeeze=False)
    for ax, (m, r) in zip(axes[:, 0], rows):
        colour = _verdict_colour(r)
        ax.errorbar(
            [r["delta"]],
            [0],
            xerr=[[r["delta"] - r["ci_low"]], [r["ci_high"] - r["delta"]]],
            fmt="o",
            color=colour,
            ecolor=colour,
            capsize=3,
            ms=5,
            lw=1.6,
        )
        ax.axvline(0, color="#333333", lw=0.8)
        reach = max(abs(r["ci_low"]), abs(r["ci_high"]), abs(r["delta"])) * 1.15
        ax.set_xlim(-reach, reach)
        ax.set_yticks([0], [label(m)], fontsize=8.5)
        ax.text(
            1.01,
            0.5,
            f"{num(r['a'], 3)} → {num(r['b'], 3)}",
            transform=ax.transAxes,
            fontsize=8,
            va="center",
            color="#555555",
        )
        ax.spines[["top", "right", "left"]].set_visible(False)
        ax.tick_params(axis="x", labelsize=7.5)
        ax.grid(True, axis="x", alpha=0.25, linewidth=0.6)
    axes[-1, 0].set_xlabel(
        f"{pair['b']['name']} − {pair['a']['name']} (dot) with its 95% interval (bar); "
        "each row has its own scale",
        fontsize=8.5,
    )
    fig.tight_layout(h_pad=0.4)
    return _png(fig)


def _verdict_colour(r: dict[str, Any]) -> str:
    if not r.get("significant") or r.get("better") is None:
        return NEUTRAL
    return BETTER if (r["delta"] > 0) == (r["better"] == "higher") else WORSE


def error_bars(
    names: Sequence[str], shares: Sequence[dict[str, float]], flags: Sequence[str]
) -> bytes | None:
    """Share of captions carrying each error flag, one bar per model."""
    flags = [f for f in flags if any(s.get(f) for s in shares)]
    if not flags:
        return None
    fig, ax = plt.subplots(figsize=(7.2, 0.5 * len(flags) * max(1, len(names)) ** 0.5 + 1.0))
    height = 0.8 / len(names)
    for k, (name, share) in enumerate(zip(names, shares)):
        ys = [i + (k - (len(names) - 1) / 2) * height for i in range(len(flags))]
        ax.barh(
            ys,
            [100 * share.get(f, 0) for f in flags],
            height=height * 0.92,
            color=COLOURS[k % len(COLOURS)],
            label=name,
        )
    ax.set_yticks(range(len(flags)), [f.replace("_", " ") for f in flags], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("% of captions", fontsize=9)
    ax.legend(fontsize=8, frameon=False)
    _style(ax)
    return _png(fig)


def decoding_scatter(
    rows: Sequence[dict[str, Any]], quality: str = "cider", diversity: str = "distinct_2"
) -> bytes | None:
    """Quality against diversity, one point per decoding."""
    points = [(r["label"], r["metrics"].get(diversity), r["metrics"].get(quality)) for r in rows]
    points = [p for p in points if p[1] is not None and p[2] is not None]
    if len(points) < 2:
        return None
    fig, ax = plt.subplots(figsize=(5.6, 3.4))
    for k, (name, x, y) in enumerate(points):
        ax.scatter([x], [y], s=45, color=COLOURS[k % len(COLOURS)], zorder=3)
        ax.annotate(name, (x, y), fontsize=8, xytext=(5, 4), textcoords="offset points")
    ax.set_xlabel(f"{label(diversity)} (more varied →)", fontsize=9)
    ax.set_ylabel(f"{label(quality)} (better →)", fontsize=9)
    ax.margins(0.25)
    _style(ax)
    return _png(fig)
