"""``captune sweep train``: a grid of fine-tuning runs, ranked on validation (``captune.train.sweep.run_sweep``).

Tests in tests/unit/train/test_sweep.py.
"""

from __future__ import annotations

import click

from captune.cli import csv_list, echo_json, json_option


@click.group()
def sweep() -> None:
    """Grid searches: many runs of one command, ranked."""


@sweep.command("train")
@click.argument("config", type=click.Path(exists=True, dir_okay=False))
@click.argument("overrides", nargs=-1)
@click.option("--grid", "grid", multiple=True, metavar="KEY=V1,V2",
              help="A key and the values to try (repeat for more keys; every combination runs), "
                   "e.g. --grid train.lr=1e-5,5e-5 --grid finetune.targets=query_value,all_linear.")
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Sweep folder: runs/<name>/ per combination, sweep.json, report.html.")
@click.option("--test", "test", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Records to evaluate the best runs on, compared with their base model (default: validation only).")
@click.option("--top", type=click.IntRange(min=0), default=3, show_default=True,
              help="How many of the best runs to evaluate on --test.")
@click.option("--parallel", type=click.IntRange(min=1), default=1, show_default=True,
              help="Runs at a time, each its own process (CPU threads shared out; one GPU each when there are GPUs).")
@click.option("--metrics", default=None, help="Test metrics, comma-separated (default: those captune evaluate runs).")
@click.option("--resamples", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Bootstrap resamples of the test comparisons.")
@json_option("Print sweep.json.")
def sweep_train(config, overrides, grid, out, test, top, parallel, metrics, resamples, as_json) -> None:
    """Train one run per combination of the --grid values: captune sweep train CONFIG.yaml --grid KEY=V1,V2 ...
    --out DIR [key=value ...].

    The key=value overrides apply to every run. Running it again skips finished runs and resumes
    a stopped one from its last checkpoint. Runs are ranked by eval.monitor on the validation data;
    with --test the best --top are evaluated and compared with their base model.
    """
    from captune.train.sweep import SweepSpec, parse_grid, run_sweep

    spec = SweepSpec(config, parse_grid(grid), out, list(overrides), test=test, top=top, parallel=parallel,
                     metrics=csv_list(metrics), resamples=resamples)
    summary = run_sweep(spec, log=(lambda s: None) if as_json else (lambda s: click.echo(s, err=True)))
    if as_json:
        echo_json(summary)
        return
    click.echo(results_table(summary))
    click.echo(f"report: {summary['report']}")


def results_table(summary: dict) -> str:
    """The ranked runs as plain text: rank, name, monitor at best, best step, seconds, status."""
    from captune.report.text import num

    monitor = summary["monitor"]
    width = max([len(r["name"]) for r in summary["runs"]] + [3])
    lines = [f"{'rank':>4}  {'run':<{width}}  {monitor:>12}  {'best step':>9}  {'seconds':>8}  status"]
    for r in summary["runs"]:
        lines.append(f"{r['rank'] or '–':>4}  {r['name']:<{width}}  {num(r['score']):>12}  "
                     f"{r['best_step'] or '–':>9}  {num(r['seconds'], 1):>8}  {r['status']}")
    for r in summary["runs"]:
        for metric, row in (r.get("test") or {}).get("compare", {}).items():
            lines.append(f"test #{r['rank']} {r['name']}: {metric} {num(row['a'])} -> {num(row['b'])} "
                         f"(95% interval of the difference [{num(row['ci_low'])}, {num(row['ci_high'])}])"
                         if row.get("ci_low") is not None else
                         f"test #{r['rank']} {r['name']}: {metric} {num(row['a'])} -> {num(row['b'])}")
    return "\n".join(lines)


COMMANDS = (sweep,)
