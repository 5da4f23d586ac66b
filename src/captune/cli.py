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


# --- models commands ---
@cli.group()
def models() -> None:
    """List and export captioning models."""


@models.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
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


@cli.command("export")
@click.option("--adapter", required=True, type=click.Path(exists=True, file_okay=False),
              help="Checkpoint folder written by `captune train` (e.g. runs/x/checkpoints/best).")
@click.option("--merge", is_flag=True, required=True, help="Merge the adapter into the base weights.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="New folder for the standalone model.")
@click.option("--model", default=None, help="Base model, if not the one recorded in the checkpoint.")
def export_cmd(adapter: str, merge: bool, out: str, model: str | None) -> None:
    """Write a standalone model (adapter merged) that loads without peft."""
    from captune.models.export import export_merged

    click.echo(f"exported to {export_merged(adapter, out, model=model)}")
# --- end models commands ---


# --- train commands ---
@cli.command(context_settings={"ignore_unknown_options": False})
@click.argument("config", required=False, type=click.Path(dir_okay=False))
@click.argument("overrides", nargs=-1)
@click.option("--resume", is_flag=True, help="Continue the run in output_dir from checkpoints/last/.")
@click.option("--dry-run", is_flag=True, help="Build one batch, show it, check the image matters, and exit.")
@click.option("--help-config", is_flag=True, help="List every configuration key with its type and help.")
@click.option("--json", "as_json", is_flag=True, help="Print the run summary as JSON.")
@click.option("--progress/--no-progress", default=None, help="Show a progress bar (default: when on a terminal).")
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
        from captune.train.dryrun import dry_run as run_dry

        report = run_dry(cfg)
        click.echo(report.text())
        if not report.image_matters:
            raise SystemExit(1)
        return
    from captune.train.loop import finetune

    summary = finetune(cfg, resume=resume, progress=progress)
    from accelerate import PartialState

    if not PartialState().is_main_process:
        return
    if as_json:
        echo_json(summary)
        return
    click.echo(summary["trainable"])
    click.echo(f"trained {summary['steps']} steps; best {summary['monitor']} = {summary['best_score']} "
               f"at step {summary['best_step']}{' (stopped early)' if summary['stopped_early'] else ''}")
    click.echo(f"checkpoints: {summary['best']} (best), {summary['last']} (last)")
# --- end train commands ---


# --- caption commands ---
@cli.command()
@click.option("--model", default=None, help="Base model: name (captune models list), Hugging Face id or folder.")
@click.option("--adapter", default=None, type=click.Path(exists=True, file_okay=False),
              help="Fine-tuned checkpoint folder (its base model and prompt are used unless given).")
@click.option("--input", "input_", required=True, type=click.Path(exists=True),
              help="A folder of images or a records JSONL file.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Predictions JSONL (appended, resumable).")
@click.option("--image-root", default=None, help="Folder that relative image paths in records resolve against.")
@click.option("--decoding", default="beam", show_default=True,
              type=click.Choice(["greedy", "beam", "top_k", "top_p", "temperature"]), help="Decoding preset.")
@click.option("--num-beams", type=int, help="Beams (beam).")
@click.option("--length-penalty", type=float, help="Beam length penalty.")
@click.option("--top-k", type=int, help="Top-k candidates (top_k).")
@click.option("--top-p", type=float, help="Nucleus mass (top_p).")
@click.option("--temperature", type=float, help="Sampling temperature.")
@click.option("--no-repeat-ngram-size", type=int, help="Forbid repeated n-grams of this size.")
@click.option("--repetition-penalty", type=float, help="Penalty for repeated tokens (1.0: off).")
@click.option("--min-new-tokens", type=int, help="Minimum caption length in tokens.")
@click.option("--max-new-tokens", type=int, help="Maximum caption length in tokens.")
@click.option("--num-return-sequences", type=int, help="Captions per image (kept as candidates).")
@click.option("--seed", type=int, help="Sampling seed.")
@click.option("--prompt", default=None, help="Prompt template (default: the one the checkpoint was trained with).")
@click.option("--batch-size", default=8, show_default=True, help="Images per batch.")
@click.option("--dtype", default="float32", show_default=True, type=click.Choice(["float32", "bfloat16", "float16"]))
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--progress/--no-progress", default=None, help="Show a progress bar (default: when on a terminal).")
def caption(model, adapter, input_, out, image_root, decoding, prompt, batch_size, dtype, as_json, progress,
            **settings) -> None:
    """Caption images with a base model or a fine-tuned checkpoint; reruns skip images already done."""
    from captune.generate import caption_images, decoding_preset

    dec = decoding_preset(decoding, **settings)
    summary = caption_images(input_, out, model=model, adapter=adapter, decoding=dec, prompt=prompt,
                             batch_size=batch_size, image_root=image_root, dtype=dtype, progress=progress)
    if as_json:
        echo_json(summary)
        return
    click.echo(f"captioned {summary['captioned']} images ({summary['skipped']} already done) "
               f"with {summary['decoding']} -> {summary['out']}")
# --- end caption commands ---


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

@demo.command("build-base")
@click.option("--out", default="captune-base", show_default=True, type=click.Path(file_okay=False),
              help="Folder for captioner/, clip/ and MANIFEST.json (the shipped ones live in "
                   "src/captune/demo/weights).")
@click.option("--n-images", default=6000, show_default=True, type=click.IntRange(min=8),
              help="Shapes-world images to train on.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed for the world, the weights and the data order.")
@click.option("--captioner-steps", type=click.IntRange(min=1), default=None,
              help="Captioner pretraining steps (default: the shipped recipe's).")
@click.option("--clip-steps", type=click.IntRange(min=1), default=None,
              help="CLIP training steps (default: the shipped recipe's).")
@click.option("--eval-images", default=200, show_default=True, type=click.IntRange(min=8),
              help="Held-out images the accuracy figures are measured on.")
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON.")
@click.option("--progress/--no-progress", default=None, help="Show progress bars (default: when on a terminal).")
def demo_build_base(as_json: bool, **kwargs) -> None:
    """Train the shipped demo models from nothing: a BLIP-2 shapes captioner and a tiny CLIP."""
    from captune.demo.build import build_base

    manifest = build_base(**kwargs)
    if as_json:
        echo_json(manifest)
        return
    cap, clip = manifest["figures"]["captioner"], manifest["figures"]["clip"]
    click.echo(f"captioner: {cap['params']:,} params, {cap['training']['steps']} steps in "
               f"{cap['training']['seconds']:.0f} s; held-out greedy naming {cap['greedy']['naming']:.1%}, "
               f"colour {cap['greedy']['colour']:.1%}, shape {cap['greedy']['shape']:.1%}")
    held = clip["held_out"]
    click.echo(f"clip: {clip['params']:,} params, {clip['training']['steps']} steps in "
               f"{clip['training']['seconds']:.0f} s; image->text top-1 {held['retrieval_image_to_text_top1']:.1%} "
               f"(chance {held['retrieval_chance']:.1%}), true caption beats wrong colours "
               f"{held['true_beats_wrong_colours']:.1%}")
    click.echo(f"wrote {len(manifest['files'])} files ({sum(manifest['bytes'].values()) / 1e6:.1f} MB) and "
               f"MANIFEST.json to {kwargs['out']}")
# --- end demo commands ---


def main() -> None:
    cli(prog_name="captune")


if __name__ == "__main__":
    sys.exit(main())
