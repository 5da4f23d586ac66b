"""``captune models list`` and ``captune export``: the registered models, and a fine-tuned
checkpoint written as a standalone model.

``list_models`` (captune.models.registry) and ``export_merged`` (captune.models.export).
"""

from __future__ import annotations

import click

from captune.cli import echo_json, json_option


@click.group()
def models() -> None:
    """List the registered captioning models (`captune export` writes a fine-tuned one out)."""


@models.command("list")
@json_option("Print JSON instead of a table.")
def models_list(as_json: bool) -> None:
    """Registered model names and their checkpoints (any Hugging Face id or local folder works too)."""
    from captune.models.registry import list_models

    entries = list_models()
    if as_json:
        echo_json([e.to_json() for e in entries])
        return
    click.echo(f"{'name':<20} {'family':<7} {'params':>7}  checkpoint / description")
    for e in entries:
        click.echo(f"{e.name:<20} {e.family:<7} {e.params:>7}  {e.checkpoint}  ({e.description})")


@click.command("export")
@click.option("--adapter", required=True, type=click.Path(exists=True, file_okay=False),
              help="Checkpoint folder written by `captune train` (e.g. runs/x/checkpoints/best).")
@click.option("--merge/--no-merge", default=True, show_default=True,
              help="Merge the adapter into the base weights (the only export there is: the checkpoint folder "
                   "itself is the unmerged adapter).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="New folder for the standalone model.")
@click.option("--model", default=None, help="Base model, if not the one recorded in the checkpoint.")
@json_option("Print {\"out\": folder} as JSON.")
def export_cmd(adapter: str, merge: bool, out: str, model: str | None, as_json: bool) -> None:
    """Write a standalone model (adapter merged) that loads without peft."""
    if not merge:
        raise click.UsageError(f"--no-merge has nothing to export: {adapter} already is the unmerged adapter "
                               "(load it with --adapter); drop --no-merge to write a merged model")
    from captune.models.export import export_merged

    written = export_merged(adapter, out, model=model)
    if as_json:
        echo_json({"out": str(written)})
        return
    click.echo(f"exported to {written}")


COMMANDS = (models, export_cmd)
