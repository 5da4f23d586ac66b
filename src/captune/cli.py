"""The ``captune`` command line: each command parses its options, calls one library function
and prints the result (``--json`` for machine-readable output). Heavy imports stay inside the
commands so ``captune --help`` is instant.
"""

from __future__ import annotations

import json
import sys

import click

from captune import __version__
from captune.demo.run import DEMO_IMAGES, DEMO_STEPS
from captune.errors import CaptuneError

DTYPE_CHOICES = ("auto", "float32", "bfloat16", "float16")  # as captune.models.loading (kept out: it imports torch)


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


def unavailable_line(unavailable: dict[str, str]) -> str:
    """All metrics that cannot run here on one line, those with the same reason named together."""
    by_reason: dict[str, list[str]] = {}
    for name, reason in unavailable.items():
        by_reason.setdefault(reason, []).append(name)
    named = [f"{', '.join(names)} ({reason})" for reason, names in by_reason.items()]
    return "unavailable here: " + "; ".join(named)


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
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="Predictions JSONL (appended, resumable; a file written with another model, adapter, prompt, "
                   "dtype, decoding or clean-up is refused).")
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
@click.option("--seed", type=int, help="Sampling seed (a caption depends on it and on the image id only).")
@click.option("--prompt", default=None, help="Prompt template (default: the one the checkpoint was trained with).")
@click.option("--batch-size", default=8, show_default=True, help="Images per batch.")
@click.option("--dtype", default="auto", show_default=True, type=click.Choice(DTYPE_CHOICES),
              help="Weights dtype; auto: bfloat16 on a CUDA GPU that has it natively, else float32.")
@click.option("--clean", "clean_config", default=None, type=click.Path(exists=True, dir_okay=False),
              help="Caption clean-up rules (YAML, as for `captune data clean`); default strips @handles, "
                   "hashtags and links.")
@click.option("--raw", is_flag=True, help="Keep the generated text as it is (no clean-up).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--progress/--no-progress", default=None, help="Show a progress bar (default: when on a terminal).")
def caption(model, adapter, input_, out, image_root, decoding, prompt, batch_size, dtype, clean_config, raw,
            as_json, progress, **settings) -> None:
    """Caption images with a base model or a fine-tuned checkpoint; reruns skip images already done.

    A rerun into the same --out reuses its captions only if they were made with the same model
    and adapter weights, prompt, dtype, decoding and clean-up (otherwise it stops and says what
    differs), and loads no model when every image is done.
    """
    from captune.generate import caption_images, decoding_preset

    dec = decoding_preset(decoding, **settings)
    post = False if raw else None
    if clean_config:
        from captune.data.clean import load_clean_config

        post = load_clean_config(clean_config, {})
    summary = caption_images(input_, out, model=model, adapter=adapter, decoding=dec, prompt=prompt,
                             batch_size=batch_size, image_root=image_root, dtype=dtype, progress=progress,
                             postprocess=post)
    if as_json:
        echo_json(summary)
        return
    click.echo(f"captioned {summary['captioned']} images ({summary['skipped']} already done) "
               f"with {summary['decoding']} -> {summary['out']}")
# --- end caption commands ---


# --- demo commands ---
@cli.group("demo", invoke_without_command=True)
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
@click.option("--json", "as_json", is_flag=True, help="Print summary.json instead of the table.")
@click.option("--progress/--no-progress", default=None, help="Show progress bars (default: when on a terminal).")
@click.pass_context
def demo(ctx: click.Context, out, model, data, n_images, steps, seed, clip_model, as_json, progress) -> None:
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
                       clip_model=clip_model, progress=progress, echo=echo)
    if as_json:
        echo_json(summary)
        return
    click.echo("")
    click.echo(summary_table(summary))
    click.echo(f"\nreport: {summary['report']}  ({summary['seconds']:.0f} s)")


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
@click.option("--vision-steps", type=click.IntRange(min=1), default=None,
              help="Steps of the captioner's ViT warm-up on per-patch shape labels (default: the shipped recipe's).")
@click.option("--eval-images", default=200, show_default=True, type=click.IntRange(min=8),
              help="Validation images (seed + 1): the ViT warm-up's accuracy and the checkpoint choice.")
@click.option("--heldout-images", default=1000, show_default=True, type=click.IntRange(min=8),
              help="Held-out images (seed + 2, used for nothing else) the manifest's figures are measured on.")
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
# --- end demo commands ---

# --- data commands ---
DATA_FORMATS = ("jsonl", "csv", "tsv", "flickr30k", "flickr8k", "coco", "karpathy", "imagefolder")


@cli.group()
def data() -> None:
    """Read, clean, validate, split and inspect caption datasets."""


def _reader_options(f):
    """The options every dataset-reading command shares."""
    options = [
        click.option("--format", "format", type=click.Choice(DATA_FORMATS), default=None,
                     help="Input format (default: detected from the name and first line)."),
        click.option("--image-root", type=click.Path(file_okay=False), default=None,
                     help="Folder relative image paths resolve against (default: the input's folder)."),
        click.option("--separator", default=None, help="CSV separator, e.g. ',' or '| ' (Flickr30k)."),
        click.option("--image-column", default=None, help="Column or key with the image path."),
        click.option("--caption-column", default=None, help="Column or key with the caption."),
        click.option("--header/--no-header", default=None,
                     help="Whether the CSV's first line names the columns (default: detected)."),
        click.option("--split", default=None, help="Karpathy split files: keep only this split."),
        click.option("--restval-as", default=None,
                     help="Karpathy split files: the split 'restval' counts as (default train)."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


@data.command("validate")
@click.argument("input", type=click.Path(exists=True))
@_reader_options
@click.option("--clean", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Cleaning rules (YAML, e.g. configs/data/clean-instagram.yaml).")
@click.option("--max-pixels", type=click.IntRange(min=1), default=None,
              help="Reject images with more pixels than this (default 89,478,485).")
@click.option("--strict", is_flag=True, help="Exit non-zero when any row is rejected.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Folder for records, rejects and config.")
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
@click.pass_context
def data_validate(ctx: click.Context, input, out, clean, max_pixels, strict, as_json, **reader) -> None:
    """Check INPUT row by row and image by image; write usable records and the rejects."""
    from captune.data.validate import validate_dataset

    extra = {"max_pixels": max_pixels} if max_pixels is not None else {}
    report = validate_dataset(input, out, clean=clean, strict=strict, **extra, **reader)
    if as_json:
        echo_json(report.to_json())
    else:
        counts = report.to_json()
        click.echo(f"{input}: {counts['rows']} rows -> {counts['records']} records, {counts['rejected']} rejected")
        for reason, n in counts["reasons"].items():
            click.echo(f"  {reason:<22} {n}")
        click.echo(f"wrote {out}/records.jsonl, rejects.jsonl, config.yaml")
    if report.failed:
        ctx.exit(1)


@data.command("clean")
@click.argument("input", type=click.Path(exists=True))
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Cleaned records (JSONL).")
@click.option("--config", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Cleaning rules (YAML); the flags below override it.")
@click.option("--strip-urls/--keep-urls", default=None, help="Remove web addresses.")
@click.option("--strip-hints/--keep-hints", default=None, help="Remove 'Swipe →' and 'link in bio' hints.")
@click.option("--handles", type=click.Choice(["keep", "strip", "unwrap"]), default=None, help="What to do with @handles.")
@click.option("--hashtags", type=click.Choice(["keep", "strip", "strip_trailing"]), default=None,
              help="What to do with #hashtags.")
@click.option("--strip-emoji/--keep-emoji", default=None, help="Remove emoji.")
@click.option("--collapse-whitespace/--keep-whitespace", default=None, help="Turn whitespace runs into one space.")
@click.option("--lowercase/--keep-case", default=None, help="Lower-case the captions.")
@click.option("--min-words", type=click.IntRange(min=0), default=None, help="Drop captions with fewer words.")
@click.option("--max-words", type=click.IntRange(min=1), default=None, help="Drop captions with more words.")
@_reader_options
@click.option("--json", "as_json", is_flag=True, help="Print the cleaning report as JSON.")
def data_clean(input, out, config, as_json, format, image_root, **options) -> None:
    """Clean the captions of INPUT and write them as records to OUT."""
    from captune.data.clean import CleanConfig, clean_file

    rules = {k: options.pop(k) for k in list(options) if k in CleanConfig.model_fields}
    result = clean_file(input, out, config, rules, format, image_root, **options)
    if as_json:
        echo_json(result.to_json())
        return
    summary = result.to_json()
    click.echo(f"{input}: {summary['captions']} captions, {summary['kept']} kept -> {out} ({summary['records']} records)")
    click.echo("changed: " + (", ".join(f"{k} {v}" for k, v in summary["changed"].items()) or "nothing"))
    if summary["dropped"]:
        click.echo("dropped: " + ", ".join(f"{k} {v}" for k, v in summary["dropped"].items()))
    for rule, pairs in summary["examples"].items():
        for before, after in pairs[:2]:
            click.echo(f"  {rule}: {before!r}\n  {' ' * len(rule)}  -> {after!r}")
    click.echo(f"{summary['rejected']} rejected -> {summary['rejects']}")


@data.command("split")
@click.argument("records", type=click.Path(exists=True, dir_okay=False))
@click.option("--ratios", default="0.8,0.1,0.1", show_default=True,
              help="train,val[,test] fractions summing to 1.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the image order.")
@click.option("--stratify", default=None, help="Metadata field to stratify by (e.g. event).")
@click.option("--group-near-duplicates", is_flag=True,
              help="Also keep images whose perceptual hashes are close in one split (bursts, re-encodes).")
@click.option("--hash-threshold", type=click.IntRange(0, 256), default=None,
              help="Bits of 256 two near-duplicates may differ in (default 48; implies --group-near-duplicates).")
@click.option("--max-group-share", type=click.FloatRange(0, 1), default=0.1, show_default=True,
              help="Refuse a near-duplicate group holding more than this share of the images (and more than 10).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Folder for the split files.")
@click.option("--json", "as_json", is_flag=True, help="Print split.json.")
def data_split(records, ratios, seed, stratify, group_near_duplicates, hash_threshold, max_group_share, out,
               as_json) -> None:
    """Split RECORDS by image into train/val(/test) files, deterministically.

    Records sharing an image file, a meta.group, or linked by meta.near_duplicate_of (an image
    id) always stay together.
    """
    from captune.data.near_duplicates import DEFAULT_THRESHOLD
    from captune.data.split import split_file

    if group_near_duplicates and hash_threshold is None:
        hash_threshold = DEFAULT_THRESHOLD
    result = split_file(records, out, ratios, seed, stratify, hash_threshold, max_group_share)
    summary = result.to_json()
    if as_json:
        echo_json(summary)
        return
    for name, n in summary["counts"].items():
        click.echo(f"{name:<6} {n:>7} images {summary['captions'][name]:>8} captions -> {out}/{name}.jsonl")
    grouping = summary["grouping"]
    if grouping["near_duplicates"]:
        found = grouping["near_duplicates"]
        click.echo(f"{found['groups']} near-duplicate groups at {found['threshold']} bits (largest {found['largest']} "
                   f"images); {grouping['units']} units kept whole, the largest {grouping['largest_unit']} images")


@data.command("inspect")
@click.argument("input", type=click.Path(exists=True))
@_reader_options
@click.option("--top", type=click.IntRange(min=1), default=15, show_default=True, help="How many common words to list.")
@click.option("--drop-stopwords", is_flag=True, help="Leave English stopwords out of the common words.")
@click.option("--examples", type=click.IntRange(min=0), default=5, show_default=True, help="Example rows to show.")
@click.option("--json", "as_json", is_flag=True, help="Print the statistics as JSON.")
def data_inspect(input, top, drop_stopwords, examples, as_json, format, image_root, **reader) -> None:
    """Describe INPUT (records or any raw format): counts, lengths, vocabulary, duplicates."""
    from captune.data.inspect import format_stats, inspect_dataset

    stats = inspect_dataset(input, format, image_root, top, drop_stopwords, examples, **reader)
    if as_json:
        echo_json(stats)
    else:
        click.echo(format_stats(stats))


# --- end data commands ---

# --- metrics commands ---
@cli.command("metrics")
@click.option("--predictions", "-p", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Predictions JSONL: one {\"image_id\", \"caption\"} per line.")
@click.option("--references", "-r", required=True, type=click.Path(exists=True, dir_okay=False),
              help="References JSONL: {\"image_id\", \"captions\": [...]} or caption records with \"image\".")
@click.option("--metrics", "-m", "metric_names", default=None,
              help="Comma-separated metrics (e.g. bleu_4,cider,meteor); default: those of the COCO set and "
                   "diversity that can run here (METEOR needs Java; SPICE also the CoreNLP jars).")
@click.option("--tokenizer", type=click.Choice(["python", "java"]), default="python", show_default=True,
              help="PTB tokenizer: the Python port (no Java needed) or pycocoevalcap's jar.")
@click.option("--per-item", type=click.Path(dir_okay=False), default=None,
              help="Write per-image scores to this JSONL file.")
@click.option("--clip-model", default=None, help="CLIP model name or local path (clipscore, refclipscore, clip_win_rate).")
@click.option("--bertscore-model", default=None, help="Model name or local path for BERTScore.")
@click.option("--bertscore-layer", type=int, default=None, help="Hidden layer used by BERTScore.")
@click.option("--sentence-model", default=None, help="Sentence-embedding model name or local path.")
@click.option("--attributes", "attributes_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Attribute vocabulary JSON for attribute metrics.")
@click.option("--train-captions", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Training captions (text, one per line, or JSONL) for novel_fraction.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object {metric: value}.")
def metrics_command(predictions, references, metric_names, tokenizer, per_item, clip_model, bertscore_model,
                    bertscore_layer, sentence_model, attributes_path, train_captions, as_json):
    """Score predicted captions against references (BLEU, METEOR, ROUGE-L, CIDEr, SPICE as pycocoevalcap)."""
    from captune.metrics import load_train_captions, score_files
    from captune.metrics.files import read_json_option

    options = {"clip_model": clip_model, "bertscore_model": bertscore_model, "bertscore_layer": bertscore_layer,
               "sentence_model": sentence_model}
    if attributes_path:
        options["attribute_vocab"] = read_json_option(attributes_path, "attribute vocabulary")
    if train_captions:
        options["train_captions"] = load_train_captions(train_captions)
    options = {k: v for k, v in options.items() if v is not None}
    scores = score_files(predictions, references, metric_names, tokenizer=tokenizer, per_item=per_item, **options)
    if as_json:
        echo_json(scores.to_json())
        return
    width = max([len(k) for k in list(scores.corpus) + list(scores.unavailable)] + [6])
    for name, value in scores.corpus.items():
        shown = f"{value:.0f}" if float(value).is_integer() and abs(value) >= 1 else f"{value:.4f}"
        click.echo(f"{name:<{width}}  {shown}")
    if scores.unavailable:
        click.echo(unavailable_line(scores.unavailable))
    for key, value in scores.info.items():
        click.echo(f"# {key}: {value}")
# --- end metrics commands ---


# --- report commands ---
def _csv(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


@cli.command("evaluate")
@click.option("--data", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Records JSONL with reference captions (e.g. data/splits/test.jsonl).")
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Folder for predictions.jsonl and eval.json (a rerun reuses the captions there if the model, "
                   "adapter, prompt, dtype and decoding are the same, and refuses the folder otherwise).")
@click.option("--model", default=None, help="Base model: name (captune models list), Hugging Face id or folder.")
@click.option("--adapter", default=None, type=click.Path(exists=True, file_okay=False),
              help="Fine-tuned checkpoint folder (its base model and prompt are used unless given).")
@click.option("--predictions", default=None, type=click.Path(exists=True, dir_okay=False),
              help="Evaluate captions already written ({\"image_id\", \"caption\"} lines) instead of a model.")
@click.option("--decoding", default="beam", show_default=True,
              type=click.Choice(["greedy", "beam", "top_k", "top_p", "temperature"]), help="Decoding preset.")
@click.option("--decodings", default=None,
              help="Also compare these presets side by side, e.g. beam,top_k,top_p (features computed once).")
@click.option("--metrics", default=None,
              help="Comma-separated metrics (default: those of BLEU-1..4, METEOR, ROUGE-L, CIDEr, SPICE and "
                   "diversity that can run here, and CLIPScore/RefCLIPScore with --clip-model).")
@click.option("--clip-model", default=None, help="CLIP model (name or folder) for CLIPScore and hallucination checks.")
@click.option("--prompt", default=None, help="Prompt template (default: the one the checkpoint was trained with).")
@click.option("--batch-size", default=8, show_default=True, help="Images per batch.")
@click.option("--image-root", default=None, help="Folder that relative image paths in the records resolve against.")
@click.option("--dtype", default="auto", show_default=True, type=click.Choice(DTYPE_CHOICES),
              help="Weights dtype; auto: bfloat16 on a CUDA GPU that has it natively, else float32.")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics and error counts as JSON.")
@click.option("--progress/--no-progress", default=None, help="Show a progress bar (default: when on a terminal).")
def evaluate_cmd(data, out, model, adapter, predictions, decoding, decodings, metrics, clip_model, prompt,
                 batch_size, image_root, dtype, as_json, progress) -> None:
    """Caption a test set (or read captions), score them and write OUT/eval.json."""
    from captune.evaluate import evaluate
    from captune.report.text import num

    result = evaluate(data, out, model=model, adapter=adapter, predictions=predictions, decoding=decoding,
                      decodings=_csv(decodings) or (), metrics=_csv(metrics), clip_model=clip_model, prompt=prompt,
                      batch_size=batch_size, image_root=image_root, dtype=dtype, progress=progress)
    summary = {"out": out, "images": result["data"]["images"], "metrics": result["metrics"],
               "unavailable": result["unavailable"], "errors": result["errors"]["counts"]}
    if result.get("decodings"):
        summary["decodings"] = {row["name"]: row["metrics"] for row in result["decodings"]}
    if as_json:
        echo_json(summary)
        return
    click.echo(f"{summary['images']} images -> {out}/eval.json")
    for name, value in result["metrics"].items():
        if value is not None:
            click.echo(f"  {name:<14} {num(value)}")
    if result["unavailable"]:
        click.echo(unavailable_line(result["unavailable"]))
    click.echo("errors: " + ", ".join(f"{k} {v}" for k, v in summary["errors"].items()))
    for row in result.get("decodings") or []:
        values = ", ".join(f"{k} {num(v, 3)}" for k, v in row["metrics"].items() if v is not None)
        click.echo(f"  {row['label']:<22} {values}")


@cli.command("compare")
@click.argument("dirs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--resamples", default=1000, show_default=True, type=click.IntRange(min=1),
              help="Bootstrap resamples and permutation rounds.")
@click.option("--seed", default=0, show_default=True, help="Seed of the resampling.")
@click.option("--metrics", default=None, help="Comma-separated metrics to compare (default: all in both).")
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
def compare_cmd(dirs, resamples, seed, metrics, as_json) -> None:
    """Compare evaluation folders (A B [C ...]): each against the first, with 95% intervals and p-values."""
    from captune.evaluate import compare
    from captune.report.text import format_comparison

    result = compare(dirs, resamples=resamples, seed=seed, metrics=_csv(metrics))
    if as_json:
        echo_json(result)
        return
    for pair in result.get("comparisons", [result]):
        click.echo(format_comparison(pair))


@cli.command("report")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--out", default=None, type=click.Path(file_okay=False),
              help="Folder for report.html, report.md and report_files/ (default: the run folder).")
@click.option("--resamples", default=1000, show_default=True, type=click.IntRange(min=1),
              help="Bootstrap resamples and permutation rounds for the comparisons.")
@click.option("--seed", default=0, show_default=True, help="Seed of the resampling and of the example sample.")
@click.option("--examples", default=8, show_default=True, type=click.IntRange(min=0),
              help="Images in the qualitative grid.")
@click.option("--ratings", default=None, type=click.Path(exists=True, dir_okay=False),
              help="Human ratings JSONL ({\"image_id\", \"model\", \"rating\"} per line).")
@click.option("--model-card", is_flag=True,
              help="Also write a Hugging Face model card (README.md) into the run's checkpoints/best/.")
@click.option("--json", "as_json", is_flag=True, help="Print the written paths as JSON.")
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
# --- end report commands ---


def main() -> None:
    import warnings

    # peft asks transformers a deprecated question on every wrap; the answer is right, the warning noise.
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
    cli(prog_name="captune")


if __name__ == "__main__":
    sys.exit(main())
