"""``captune report``: the HTML and Markdown report of a training run and/or evaluation folders
(``captune.report.build_report``); tests in tests/unit/report/test_report.py.
"""

from __future__ import annotations

import click

from captune.cli import echo_json, json_option


@click.command("report")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--out", default=None, type=click.Path(file_okay=False),
              help="Folder for report.html, report.md and report_files/ (default: the run folder).")
@click.option("--resamples", default=1000, show_default=True, type=click.IntRange(min=1),
              help="Bootstrap resamples and permutation rounds for the comparisons.")
@click.option("--seed", default=0, show_default=True, help="Seed of the resampling and of the example sample.")
@click.option("--examples", default=8, show_default=True, type=click.IntRange(min=0),
              help="Images in the qualitative grid.")
@click.option("--ratings", default=None, type=click.Path(exists=True, dir_okay=False),
              help="Human ratings JSONL: a `captune review export`, or {\"image_id\", \"model\", \"rating\"} per line.")
@click.option("--model-card", is_flag=True,
              help="Also write a Hugging Face model card (README.md) into the run's checkpoints/best/.")
@json_option("Print the written paths as JSON.")
def report_cmd(paths, out, resamples, seed, examples, ratings, model_card, as_json) -> None:
    """Write the report of a training run (RUN_DIR) and/or evaluation folders (the first is the baseline)."""
    from captune.report import build_report

    written = build_report(paths, out=out, resamples=resamples, seed=seed, examples=examples, ratings=ratings,
                           model_card=model_card)
    if as_json:
        echo_json(written)
        return
    for kind, path in written.items():
        click.echo(f"{kind:<11} {path}")


COMMANDS = (report_cmd,)
