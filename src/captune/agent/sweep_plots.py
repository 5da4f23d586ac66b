"""The sweep report's figures (matplotlib, the house style of ``captune.report.plots``), as PNG bytes.

Each function takes the sweep's rows and returns ``None`` when the sweep has nothing to draw for it
(the key was not swept, or no truth file gave the stage's metrics).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from captune.report.plots import COLOURS, NEUTRAL, _png, _style, plt

MODE, K, PER_POST = "captioner.mode", "cluster.k", "cluster.max_images_per_post"


def _modes(rows: Sequence[dict]) -> list[Any]:
    return list(dict.fromkeys(r.get(MODE) for r in rows))


def silhouette_vs_clipscore(rows: Sequence[dict]) -> bytes | None:
    """Mean CLIPScore (95% interval) against the clustering's silhouette, one point per run, per mode."""
    points = [r for r in rows if r.get("silhouette") is not None and r.get("clipscore_mean") is not None]
    if len({r["silhouette"] for r in points}) < 2:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    modes = _modes(points)
    silhouettes = [r["silhouette"] for r in points]
    step = (max(silhouettes) - min(silhouettes)) * 0.012  # modes side by side: equal scores would hide each other
    for i, mode in enumerate(modes):
        mine = [r for r in points if r.get(MODE) == mode]
        ys = [r["clipscore_mean"] for r in mine]
        errs = [[y - (r["clipscore_ci_low"] if r["clipscore_ci_low"] is not None else y) for y, r in zip(ys, mine)],
                [(r["clipscore_ci_high"] if r["clipscore_ci_high"] is not None else y) - y for y, r in zip(ys, mine)]]
        xs = [r["silhouette"] + (i - (len(modes) - 1) / 2) * step for r in mine]
        ax.errorbar(xs, ys, yerr=errs, fmt="o", ms=4.5, capsize=2.5, lw=1,
                    color=COLOURS[i % len(COLOURS)], label=mode or "captions", alpha=0.85)
    ax.set_xlabel("mean silhouette of the clustering (modes drawn side by side)", fontsize=9)
    ax.set_ylabel("mean CLIPScore of the posts (95% interval)", fontsize=9)
    ax.legend(fontsize=8, frameon=False, title=MODE if MODE in points[0] else None, title_fontsize=8,
              loc="upper left", bbox_to_anchor=(1.01, 1.0))
    _style(ax)
    return _png(fig)


def clipscore_by_images_per_post(rows: Sequence[dict]) -> bytes | None:
    """Per k (one panel each): mean CLIPScore per mode against images per post, with its 95% interval
    (thick bar) and the min-max range of the posts (thin line), as the seed's table had."""
    rows = [r for r in rows if r.get(PER_POST) is not None and r.get("clipscore_mean") is not None]
    sizes = sorted({r[PER_POST] for r in rows})
    if len(sizes) < 2:
        return None
    ks = list(dict.fromkeys(r.get(K) for r in rows))
    modes = _modes(rows)
    fig, axes = plt.subplots(1, len(ks), figsize=(3.3 * len(ks) + 0.6, 3.6), sharey=True, squeeze=False)
    for ax, k in zip(axes[0], ks):
        for i, mode in enumerate(modes):
            colour, shift = COLOURS[i % len(COLOURS)], (i - (len(modes) - 1) / 2) * 0.12
            for r in (r for r in rows if r.get(K) == k and r.get(MODE) == mode):
                x = sizes.index(r[PER_POST]) + shift
                ax.vlines(x, r["clipscore_min"], r["clipscore_max"], color=colour, lw=0.8, alpha=0.6)
                if r["clipscore_ci_low"] is not None:
                    ax.vlines(x, r["clipscore_ci_low"], r["clipscore_ci_high"], color=colour, lw=3.2)
                ax.plot([x], [r["clipscore_mean"]], "o", color="white", mec=colour, ms=5, mew=1.4)
            ax.plot([], [], "o", color=colour, label=mode or "captions")
        ax.set_xticks(range(len(sizes)), [str(s) for s in sizes])
        ax.set_title(f"cluster.k = {k}", fontsize=9)
        ax.set_xlabel("images per post (at most)", fontsize=9)
        _style(ax)
    axes[0][0].set_ylabel("CLIPScore: mean, 95% interval, range", fontsize=9)
    axes[0][-1].legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return _png(fig)


def stage_vs_threshold(rows: Sequence[dict], key: str, stage: str, measures: Sequence[str],
                       xlabel: str) -> bytes | None:
    """A stage's measures (e.g. dedupe precision and recall) against one swept threshold; one run per value."""
    first: dict[Any, dict] = {}
    for r in rows:
        if r.get(key) is not None and r.get(f"{stage}_{measures[0]}") is not None:
            first.setdefault(r[key], r)
    if len(first) < 2:
        return None
    xs = sorted(first)
    fig, ax = plt.subplots(figsize=(5.2, 3.3))
    styles = (("o", "-", 7), ("s", "--", 5), ("^", ":", 4))  # equal values (often 1.0) stay visible
    for i, m in enumerate(measures):
        ys = [first[x].get(f"{stage}_{m}") for x in xs]
        marker, line, size = styles[i % len(styles)]
        ax.plot(xs, ys, marker=marker, ls=line, color=COLOURS[i % len(COLOURS)] if i < 2 else NEUTRAL, lw=1.4,
                ms=size, label=m.replace("_", " "))
    ax.set_xticks(xs, [f"{x:g}" for x in xs])
    ax.set_xlabel(xlabel, fontsize=9)
    ax.set_ylim(-0.03, 1.03)
    ax.legend(fontsize=8, frameon=False)
    _style(ax)
    return _png(fig)


def all_plots(rows: Sequence[dict], core: Sequence[dict]) -> list[tuple[str, str, bytes]]:
    """``(file name, title, png)`` of every figure the rows allow; ``core``: the runs of the seed's table."""
    made = [
        ("silhouette_clipscore.png", "CLIPScore against silhouette, per captioner mode",
         silhouette_vs_clipscore(core)),
        ("clipscore_images_per_post.png", ("CLIPScore by images per post, per mode and k: mean (circle), "
                                           "95% interval (thick bar), range of the posts (thin line)"),
         clipscore_by_images_per_post(core)),
        ("dedupe_threshold.png", "Dedupe precision and recall against dedupe.clip_threshold",
         stage_vs_threshold(rows, "dedupe.clip_threshold", "dedupe", ("precision", "recall", "f1"),
                            "dedupe.clip_threshold")),
        ("labels_threshold.png", "Label precision and recall against categorize.threshold",
         stage_vs_threshold(rows, "categorize.threshold", "labels", ("micro_precision", "micro_recall", "micro_f1"),
                            "categorize.threshold")),
    ]
    return [(name, title, png) for name, title, png in made if png is not None]
