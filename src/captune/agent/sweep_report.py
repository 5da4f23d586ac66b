"""The sweep's ``report.md`` and ``report.html``: findings, the seed's table with intervals, the
paired comparisons, stage figures, plots (``OUT/plots/*.png``; embedded in the HTML) and seconds."""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from typing import Any

from captune.agent.sweep_compare import MODE, findings
from captune.io import write_text

SEED_TABLE = ("cluster.k", "cluster.max_images_per_post", MODE)
"""The seed's table: CLIPScore by k, images per post and captioner mode."""
STAGE_COLUMNS = (("dedupe", ("precision", "recall", "f1")), ("quality", ("precision", "recall")),
                 ("labels", ("micro_precision", "micro_recall", "micro_f1")),
                 ("clusters", ("ari", "nmi", "bcubed_f1")))


def write_sweep_report(sweep) -> None:
    """Write ``OUT/plots/*.png``, ``OUT/report.md`` and ``OUT/report.html`` for a ``Sweep``."""
    import jinja2

    from captune.agent.sweep_plots import all_plots

    out = sweep.out_dir
    plots = []
    for name, title, png in all_plots(sweep.rows, core_rows(sweep.rows, sweep.keys)):
        (out / "plots").mkdir(parents=True, exist_ok=True)
        (out / "plots" / name).write_bytes(png)
        plots.append({"file": f"plots/{name}", "title": title, "data": base64.b64encode(png).decode()})
    ctx = context(sweep) | {"plots": plots}
    env = jinja2.Environment(loader=jinja2.PackageLoader("captune.agent", "templates"), autoescape=False,
                             trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    write_text(out / "report.md", env.get_template("sweep_report.md.j2").render(**ctx))
    env.autoescape = True
    write_text(out / "report.html", env.get_template("sweep_report.html.j2").render(**ctx))


def core_rows(rows: Sequence[dict], keys: Sequence[str]) -> list[dict]:
    """The rows whose keys outside the seed's table hold the first row's values (the table's runs)."""
    others = [k for k in keys if k not in SEED_TABLE]
    return [r for r in rows if all(r[k] == rows[0][k] for k in others)] if rows else []


def context(sweep) -> dict[str, Any]:
    rows, keys = sweep.rows, sweep.keys
    photos = rows[0]["photos"] if rows else 0
    return {
        "title": f"Agent sweep: {len(rows)} combinations of {', '.join(keys)}",
        "meta": [(f"{len(rows)} runs ({len(sweep.ran)} made now, {len(rows) - len(sweep.ran)} finished before), "
                  f"{sweep.seconds:.0f} s; {sweep.comparisons['resamples']} bootstrap resamples, "
                  f"seed {sweep.comparisons['seed']}; {photos} files in the photo folder.")],
        "findings": findings(sweep.comparisons, rows),
        "tables": [_tidy(t) for t in (seed_table(rows, keys), mode_table(sweep.comparisons),
                                      key_table(sweep.comparisons), label_table(sweep.comparisons),
                                      stage_table(rows, keys), seconds_table(rows)) if t["rows"]],
    }


SHORT = {"cluster.k": "k", "cluster.max_images_per_post": "images per post", MODE: "mode",
         "dedupe.clip_threshold": "dedupe threshold", "categorize.threshold": "label threshold"}
"""Column names of the swept keys the seed studied (the title and the notes name the keys in full)."""
NUMBER = re.compile(r"^[-+−–\d.,%/ \[\]]+$")


def _tidy(table: dict[str, Any]) -> dict[str, Any]:
    """Short column names, no column that is empty in every row, and which columns hold numbers (right-aligned)."""
    keep = [i for i in range(len(table["columns"])) if any(row[i] != "–" for row in table["rows"])]
    rows = [[row[i] for i in keep] for row in table["rows"]]
    return table | {"columns": [SHORT.get(table["columns"][i], table["columns"][i]) for i in keep], "rows": rows,
                    "numeric": [all(NUMBER.match(row[j]) for row in rows) for j in range(len(keep))]}


def _f(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _ci(r: dict, low: str, high: str, sign: str = "+") -> str:
    return "–" if r.get(low) is None else f"[{r[low]:{sign}.3f}, {r[high]:{sign}.3f}]"


def seed_table(rows: Sequence[dict], keys: Sequence[str]) -> dict[str, Any]:
    """One line per run of the seed's table: the keys, silhouette, posts and CLIPScore mean [95%], median, range."""
    shown = [k for k in SEED_TABLE if k in keys] or list(keys)
    core = core_rows(rows, keys)
    fixed = [f"{k}={core[0][k]}" for k in keys if k not in shown] if core else []
    order = {k: {repr(v): i for i, v in enumerate(dict.fromkeys(r[k] for r in core))} for k in shown}
    core = sorted(core, key=lambda r: [order[k][repr(r[k])] for k in shown])
    return {
        "title": "CLIPScore by " + ", ".join(shown),
        "note": "Mean CLIPScore of a run's posts with the 95% bootstrap interval of the mean (posts resampled), "
                "the median and the range (min to max), as the seed's table had."
                + (f" Runs with {', '.join(fixed)}." if fixed else ""),
        "columns": [*shown, "silhouette", "posts", "CLIPScore mean", "95% interval", "median", "min", "max",
                    "fallback"],
        "rows": [[*(str(r[k]) for k in shown), _f(r["silhouette"]), str(r["posts"]), _f(r["clipscore_mean"]),
                  _ci(r, "clipscore_ci_low", "clipscore_ci_high", ""), _f(r["clipscore_median"]),
                  _f(r["clipscore_min"]), _f(r["clipscore_max"]),
                  "–" if r["fallback_rate"] is None else f"{r['fallback_rate']:.0%}"] for r in core],
    }


def _comparison_rows(cs: Sequence[dict]) -> list[list[str]]:
    return [[", ".join(f"{SHORT.get(k, k)}={v}" for k, v in c["setting"].items()) if isinstance(c["setting"], dict)
             else f"{c['setting']} (distinct posts)", str(c["a"]), str(c["b"]), str(c["n_a"]) if c["paired"]
             else f"{c['n_a']} / {c['n_b']}", _f(c["mean_a"]), _f(c["mean_b"]),
             "–" if c["delta"] is None else f"{c['delta']:+.3f}", _ci(c, "ci_low", "ci_high"), _f(c["p_value"]),
             "–" if c["significant"] is None else "yes" if c["significant"] else "no"] for c in cs]


COMPARISON_COLUMNS = ["setting", "A", "B", "posts", "mean A", "mean B", "B − A", "95% interval", "p", "significant"]


def mode_table(comparisons: dict) -> dict[str, Any]:
    cs = comparisons["pooled"] + [c for c in comparisons["clipscore"] if c["key"] == MODE]
    return {"title": "Captioner modes on identical posts (paired)",
            "note": "Per-post CLIPScore of mode B minus mode A on the same posts; paired bootstrap interval "
                    "and permutation p-value. The first rows pool every setting, each distinct post once.",
            "columns": COMPARISON_COLUMNS, "rows": _comparison_rows(cs)}


def key_table(comparisons: dict) -> dict[str, Any]:
    cs = [c for c in comparisons["clipscore"] if c["key"] != MODE]
    return {"title": "CLIPScore between values of one key, the rest held fixed",
            "note": "Runs that differ in one key make different posts: the interval is that of the difference "
                    "of the two means, each run's posts resampled on their own (no p-value). 'posts' is A / B.",
            "columns": ["key", *COMPARISON_COLUMNS[:-2], "significant"],
            "rows": [[c["key"], *row[:-2], row[-1]] for c, row in zip(cs, _comparison_rows(cs))]}


def label_table(comparisons: dict) -> dict[str, Any]:
    cs = comparisons["labels"]
    return {"title": "Label micro-F1 between categorize.threshold values (paired over photos)",
            "note": "'posts' here counts the photos with truth labels that both runs labelled.",
            "columns": COMPARISON_COLUMNS, "rows": _comparison_rows(cs)}


def stage_table(rows: Sequence[dict], keys: Sequence[str]) -> dict[str, Any]:
    """Every run's stage metrics against the truth file (columns only for the stages it had)."""
    cols = [(s, m) for s, ms in STAGE_COLUMNS for m in ms if any(r.get(f"{s}_{m}") is not None for r in rows)]
    return {"title": "Stage metrics per run",
            "note": "Against the truth file, on one photo folder: figures, not intervals.",
            "columns": [*keys, "silhouette", "posts", *(f"{s} {m.replace('_', ' ')}" for s, m in cols)],
            "rows": [[*(str(r[k]) for k in keys), _f(r["silhouette"]), str(r["posts"]),
                      *(_f(r.get(f"{s}_{m}")) for s, m in cols)] for r in rows] if cols else []}


def seconds_table(rows: Sequence[dict]) -> dict[str, Any]:
    """Mean, min and max seconds of every stage over the runs (cached stages take milliseconds)."""
    names = list(dict.fromkeys(k for r in rows for k in r if k.startswith("seconds_")))
    return {"title": "Seconds per stage", "note": "Over the runs made now and before; later runs read "
            "earlier stages from the cache.", "columns": ["stage", "mean", "min", "max"],
            "rows": [_spread(n.removeprefix("seconds_"), [r[n] for r in rows if r.get(n) is not None])
                     for n in names]}


def _spread(name: str, values: list[float]) -> list[str]:
    return [name, f"{sum(values) / len(values):.2f}", f"{min(values):.2f}", f"{max(values):.2f}"]
