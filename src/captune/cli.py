"""The ``captune`` command line: each command parses its options, calls one library function
and prints the result (``--json`` for machine-readable output). Heavy imports stay inside the
commands so ``captune --help`` is instant.
"""

from __future__ import annotations

import json
import sys

import click

from captune import __version__
from captune.errors import CaptuneError


class _Group(click.Group):
    """A group that turns ``CaptuneError`` into one clear line on stderr and exit status 2."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except CaptuneError as e:
            click.echo(f"error: {e}", err=True)
            ctx.exit(2)


def echo_json(obj) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False, indent=2, default=str))


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="captune")
def cli() -> None:
    """Fine-tune, evaluate and compare image-captioning models on your own photos."""


# --- demo commands ---
@cli.group("demo", invoke_without_command=True)
@click.pass_context
def demo(ctx: click.Context) -> None:
    """The embedded demo: data and models that need no downloads."""
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


@demo.command("world")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Folder to write images/, plain.jsonl, house.jsonl, house_rows.jsonl, world.json.")
@click.option("--n", "n_images", default=500, show_default=True, type=click.IntRange(min=1),
              help="Number of images.")
@click.option("--seed", default=0, show_default=True, type=int, help="Random seed; same seed, same bytes.")
@click.option("--size", "image_size", default=64, show_default=True, type=click.IntRange(min=16),
              help="Image side in pixels.")
@click.option("--style", default="both", show_default=True, type=click.Choice(["plain", "house", "both"]),
              help="Caption style(s) to write: plain (COCO-like), house (club Instagram) or both.")
@click.option("--events", "n_events", default=6, show_default=True, type=click.IntRange(min=1),
              help="Number of events (photo groups) the images are shared between.")
@click.option("--refs", "refs_per_image", default=5, show_default=True, type=click.IntRange(min=1),
              help="Reference captions per image and style.")
@click.option("--noisy", is_flag=True,
              help="Decorate some house captions with @handles, hashtags, links and emoji.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def demo_world(as_json: bool, **kwargs) -> None:
    """Generate the shapes world: a seeded image-caption dataset with events and attributes."""
    from captune.demo.world import generate

    summary = generate(**kwargs).summary()
    if as_json:
        echo_json(summary)
        return
    click.echo(f"wrote {summary['images']} images ({summary['near_duplicates']} near-duplicates) "
               f"to {summary['out_dir']}")
    click.echo("captions: " + ", ".join(f"{n} {k}" for k, n in summary["captions"].items() if n))
    click.echo("events: " + ", ".join(f"{name} ({n})" for name, n in summary["events"].items()))
    click.echo("files: " + ", ".join(summary["files"].values()))
    for ex in summary["examples"]:
        click.echo(f"  {ex['image']}")
        for style in ("plain", "house"):
            if ex[style]:
                click.echo(f"    {style}: {ex[style]}")
# --- end demo commands ---


def main() -> None:
    cli(prog_name="captune")


if __name__ == "__main__":
    sys.exit(main())
