"""``captune train CONFIG.yaml [key=value ...]``: fine-tune a captioner (``captune.train.loop.finetune``).

Under ``accelerate launch -m captune train ...`` the same command trains on several GPUs or
machines; only the main process prints. Tests in tests/unit/train/.
"""

from __future__ import annotations

import click

from captune.cli import echo_json, json_option, progress_option


@click.command(context_settings={"ignore_unknown_options": False})
@click.argument("config", required=False, type=click.Path(dir_okay=False))
@click.argument("overrides", nargs=-1)
@click.option("--resume", is_flag=True, help="Continue the run in output_dir from checkpoints/last/.")
@click.option("--dry-run", is_flag=True, help="Build one batch, show it, check the image matters, and exit.")
@click.option("--help-config", is_flag=True, help="List every configuration key with its type and help.")
@json_option("Print the run summary as JSON.")
@progress_option()
def train(config, overrides, resume, dry_run, help_config, as_json, progress) -> None:
    """Fine-tune a captioner: captune train CONFIG.yaml [key=value ...].

    Overrides use dotted keys, e.g. train.max_steps=20 data.train=train.jsonl output_dir=runs/x.
    Under `accelerate launch` the same command trains on several GPUs or machines.
    """
    from captune.config import describe_schema, load_config
    from captune.train.config import TrainConfig

    if help_config:
        for key, typ, text in describe_schema(TrainConfig):
            click.echo(f"{key:<34} {typ:<28} {text}")
        return
    if config is None:
        raise click.UsageError("missing CONFIG.yaml (see configs/finetune/ for presets)")
    cfg = load_config(TrainConfig, config, overrides)
    if dry_run:
        _dry_run(cfg)
        return
    _finetune(cfg, resume, progress, as_json)


def _dry_run(cfg) -> None:
    """Print the dry-run report; exit 1 when the captions do not depend on the image."""
    from captune.train.dryrun import dry_run

    report = dry_run(cfg)
    click.echo(report.text())
    if not report.image_matters:
        raise SystemExit(1)


def _finetune(cfg, resume: bool, progress: bool | None, as_json: bool) -> None:
    """Train, then print the summary on the main process only."""
    from accelerate import PartialState

    from captune.train.loop import finetune

    summary = finetune(cfg, resume=resume, progress=progress)
    if not PartialState().is_main_process:
        return
    if as_json:
        echo_json(summary)
        return
    click.echo(summary["trainable"])
    click.echo(f"trained {summary['steps']} steps; best {summary['monitor']} = {summary['best_score']} "
               f"at step {summary['best_step']}{' (stopped early)' if summary['stopped_early'] else ''}")
    click.echo(f"checkpoints: {summary['best']} (best), {summary['last']} (last)")


COMMANDS = (train,)
