"""``captune demo`` (the whole job on the shapes world or your data: ``captune.demo.run.run_demo``),
``captune demo world`` (generate the shapes world: ``captune.demo.world.generate``),
``captune demo photos`` (an event photo dump for the agent: ``captune.demo.photos.generate_photos``),
``captune demo agent`` (the agent on that dump: ``captune.demo.agent.run_demo_agent``; with
``--sweep`` the seed's study: ``captune.demo.agent.run_demo_sweep``) and
``captune demo build-base`` (train the shipped demo models: ``captune.demo.build.build_base``).

Tests in tests/unit/demo/test_demo_cli.py, test_photos.py and test_shipped.py.
"""

from __future__ import annotations

import click

from captune.cli import echo_json, json_option, progress_option
from captune.demo.run import DEMO_IMAGES, DEMO_STEPS


@click.group("demo", invoke_without_command=True)
@click.option("--out", default="runs/demo", show_default=True, type=click.Path(file_okay=False),
              help="Folder for everything the demo writes (data, run, evaluations, report, summary.json).")
@click.option("--model", default=None, help="Your base model (name, Hugging Face id or folder); needs --data.")
@click.option("--data", default=None, type=click.Path(exists=True, dir_okay=False),
              help="Your caption dataset (any format `captune data validate` reads); needs --model.")
@click.option("--images", "n_images", default=DEMO_IMAGES, show_default=True, type=click.IntRange(min=20),
              help="Shapes-world images to generate (embedded demo only).")
@click.option("--steps", default=None, type=click.IntRange(min=1),
              help=f"Fine-tuning steps (default {DEMO_STEPS}, or 300 with --model).")
@click.option("--seed", default=0, show_default=True, help="Seed for data, split and training.")
@click.option("--clip-model", default=None, help="CLIP model for CLIPScore (default: the shipped tiny CLIP in the embedded demo).")
@click.option("--review", is_flag=True,
              help="Also create a blind review study of base vs fine-tuned on the test images (OUT/review) "
                   "and print its invite links and serve command.")
@json_option("Print summary.json instead of the table.")
@progress_option("progress bars")
@click.pass_context
def demo(ctx: click.Context, out, model, data, n_images, steps, seed, clip_model, review, as_json,
         progress) -> None:
    """Fine-tune a captioner, prove it got better, and write the report: the whole job.

    Without options it runs on the embedded shapes world with the shipped tiny models (a few
    minutes on a laptop CPU, no downloads). With --model and --data the same steps run on your
    checkpoint and dataset.
    """
    if ctx.invoked_subcommand is not None:
        return
    from captune.demo.run import run_demo, summary_table

    def echo(msg: str) -> None:
        click.echo(msg, err=as_json)

    summary = run_demo(out, model=model, data=data, n_images=n_images, steps=steps, seed=seed,
                       clip_model=clip_model, progress=progress, echo=echo, review=review)
    if as_json:
        echo_json(summary)
        return
    click.echo("")
    click.echo(summary_table(summary))
    click.echo(f"\nreport: {summary['report']}  ({summary['seconds']:.0f} s)")


@demo.command("world")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Folder to write images/, plain.jsonl, house.jsonl, house_rows.jsonl, world.json.")
@click.option("--images", "n_images", default=500, show_default=True, type=click.IntRange(min=1),
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
@json_option("Print the summary as JSON.")
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


@demo.command("photos")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Folder to write photos/ (the dump), truth.json (what the agent should find) and dump.json "
                   "(every file's kind, original and shooting time).")
@click.option("--events", "n_events", default=6, show_default=True, type=click.IntRange(1, 8),
              help="Number of events (shapes-world themes), hours apart.")
@click.option("--images", "n_images", default=120, show_default=True, type=click.IntRange(min=20),
              help="Readable photos, planted near-duplicates and low-quality shots included.")
@click.option("--seed", default=0, show_default=True, type=int, help="Random seed; same seed, same bytes.")
@click.option("--size", default=256, show_default=True, type=click.IntRange(min=64), help="Photo side in pixels.")
@json_option("Print the summary as JSON.")
def demo_photos(as_json: bool, **kwargs) -> None:
    """Write a shapes-world event photo dump for `captune agent run`, with its truth.

    JPEGs with EXIF shooting times (events hours apart, bursts seconds apart) and some PNGs timed by
    their file time only, in camera folders; planted near-duplicates (re-shots, re-encodes, small
    crops, byte copies), low-quality shots (blurred, under- and overexposed), a rotated photo with
    its EXIF orientation, and three files ingest must reject (empty, truncated, not an image).
    """
    from captune.demo.photos import generate_photos

    summary = generate_photos(**kwargs)
    if as_json:
        echo_json(summary)
        return
    dup, low, fmt = summary["duplicates"], summary["low_quality"], summary["formats"]
    click.echo(f"wrote {summary['photos']} photos ({fmt['jpeg']} JPEG, {fmt['png']} PNG) and "
               f"{summary['unreadable']} unreadable files to {summary['photos_dir']}")
    click.echo("events: " + ", ".join(f"{name} ({n})" for name, n in summary["events"].items())
               + f" over {summary['time_span']['hours']:.1f} h")
    click.echo(f"near-duplicates: {dup['photos']} in {dup['groups']} groups ({_kinds(dup)})")
    click.echo(f"low quality: {low['photos']} ({_kinds(low)}); truth: {summary['truth']}")


def _kinds(part: dict) -> str:
    return ", ".join(f"{n} {kind}" for kind, n in part["kinds"].items())


@demo.command("agent")
@click.argument("overrides", nargs=-1)
@click.option("--out", "out_dir", default="runs/agent-demo", show_default=True, type=click.Path(file_okay=False),
              help="Folder for the dump (OUT/dump) and the agent's files (posts, stages, summary.json, report.html).")
@click.option("--adapter", default=None, type=click.Path(exists=True, file_okay=False),
              help="The demo's fine-tuned adapter (e.g. runs/demo/run/checkpoints/best) for model and hybrid captions.")
@click.option("--mode", type=click.Choice(["template", "model", "hybrid"]), default=None,
              help="Caption mode (default: hybrid with --adapter, else template).")
@click.option("--events", "n_events", default=6, show_default=True, type=click.IntRange(1, 8), help="Events in the dump.")
@click.option("--images", "n_images", default=120, show_default=True, type=click.IntRange(min=20),
              help="Readable photos in the dump.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the dump.")
@click.option("--sweep", "do_sweep", is_flag=True,
              help="Run the seed's study instead (as `captune agent sweep`): k x images per post x captioner mode, "
                   "and the dedupe and label thresholds; OUT/report.html.")
@click.option("--full-grid", is_flag=True, help="With --sweep: every combination of the five keys (243 runs).")
@click.option("--resamples", default=1000, show_default=True, type=click.IntRange(min=100),
              help="With --sweep: bootstrap resamples of every interval.")
@json_option("Print summary.json.")
def demo_agent(overrides, out_dir, adapter, mode, n_events, n_images, seed, do_sweep, full_grid, resamples,
               as_json) -> None:
    """Run the photo-to-post agent on a shapes-world photo dump and measure every stage.

    Writes the dump (as `captune demo photos`), runs `captune agent run` on it with the shipped
    tiny CLIP and captioner, and prints each stage's figures against the dump's truth. key=value
    overrides apply to the agent's configuration (src/captune/demo/agent.yaml). With --sweep it
    runs 31 combinations (about a minute on 2 cores) and writes the sweep's report.
    """
    from captune.cli.agent import stage_table
    from captune.demo.agent import run_demo_agent

    log = (lambda s: None) if as_json else (lambda s: click.echo(s, err=True))
    if do_sweep or full_grid:
        _demo_sweep(out_dir, adapter, mode, n_events, n_images, seed, full_grid, resamples, overrides, as_json, log)
        return
    result = run_demo_agent(out_dir, adapter=adapter, mode=mode or ("hybrid" if adapter else None),
                            n_events=n_events, n_images=n_images, seed=seed, overrides=overrides, log=log)
    if as_json:
        echo_json(result.summary)
        return
    click.echo(stage_table(result.summary))
    click.echo(f"report: {result.out_dir / 'report.html'}")


def _demo_sweep(out_dir, adapter, mode, n_events, n_images, seed, full_grid, resamples, overrides, as_json,
                log) -> None:
    from captune.cli.agent import sweep_summary
    from captune.demo.agent import run_demo_sweep

    if mode:
        raise click.UsageError("--mode and --sweep: the sweep runs every captioner mode; leave --mode out")
    result = run_demo_sweep(out_dir, full=full_grid, adapter=adapter, n_events=n_events, n_images=n_images,
                            seed=seed, resamples=resamples, overrides=overrides, log=log)
    if as_json:
        echo_json({"rows": result.rows, "comparisons": result.comparisons})
        return
    click.echo(sweep_summary(result))


@demo.command("build-base")
@click.option("--out", default="captune-base", show_default=True, type=click.Path(file_okay=False),
              help="Folder for captioner/, clip/ and MANIFEST.json (the shipped ones live in "
                   "src/captune/demo/weights).")
@click.option("--images", "n_images", default=6000, show_default=True, type=click.IntRange(min=8),
              help="Shapes-world images to train on.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed for the world, the weights and the data order.")
@click.option("--captioner-steps", type=click.IntRange(min=1), default=None,
              help="Captioner pretraining steps (default: the shipped recipe's).")
@click.option("--clip-steps", type=click.IntRange(min=1), default=None,
              help="CLIP training steps (default: the shipped recipe's).")
@click.option("--vision-steps", type=click.IntRange(min=1), default=None,
              help="Steps of the captioner's ViT warm-up on per-patch shape labels (default: the shipped recipe's).")
@click.option("--eval-images", default=200, show_default=True, type=click.IntRange(min=8),
              help="Validation images (seed + 1): the ViT warm-up's accuracy and the checkpoint choice.")
@click.option("--heldout-images", default=1000, show_default=True, type=click.IntRange(min=8),
              help="Held-out images (seed + 2, used for nothing else) the manifest's figures are measured on.")
@json_option("Print the manifest as JSON.")
@progress_option("progress bars")
def demo_build_base(as_json: bool, **kwargs) -> None:
    """Train the shipped demo models from nothing: a BLIP-2 shapes captioner and a tiny CLIP."""
    from captune.demo.build import build_base

    manifest = build_base(**kwargs)
    if as_json:
        echo_json(manifest)
        return
    cap, clip = manifest["figures"]["captioner"], manifest["figures"]["clip"]
    click.echo(f"captioner: {cap['params']:,} params, {cap['training']['steps']} steps in "
               f"{cap['training']['seconds']:.0f} s; on {cap['heldout_images']} held-out images greedy naming "
               f"{cap['greedy']['naming']:.1%}, "
               f"colour {cap['greedy']['colour']:.1%}, shape {cap['greedy']['shape']:.1%}")
    held = clip["held_out"]
    click.echo(f"clip: {clip['params']:,} params, {clip['training']['steps']} steps in "
               f"{clip['training']['seconds']:.0f} s; image->text top-1 {held['retrieval_image_to_text_top1']:.1%} "
               f"(chance {held['retrieval_chance']:.1%}), true caption beats wrong colours "
               f"{held['true_beats_wrong_colours']:.1%}")
    click.echo(f"wrote {len(manifest['files'])} files ({sum(manifest['bytes'].values()) / 1e6:.1f} MB) and "
               f"MANIFEST.json to {kwargs['out']}")


COMMANDS = (demo,)
