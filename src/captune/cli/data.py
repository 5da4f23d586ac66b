"""``captune data validate|clean|split|inspect|enhance``: read, clean, check, split, describe and
enhance caption datasets.

Each command calls one function of ``captune.data`` (``validate_dataset``, ``clean_file``,
``split_file``, ``inspect_dataset``, ``enhance_file``); tests in tests/unit/data/test_data_cli.py and
tests/unit/data/test_enhance.py.
"""

from __future__ import annotations

import click

from captune.cli import echo_json, json_option, progress_option

DATA_FORMATS = (  # as captune.data.readers.FORMATS (a test checks), kept literal for a quick --help
    "jsonl", "csv", "tsv", "flickr30k", "flickr8k", "coco", "karpathy", "imagefolder",
)


@click.group()
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
@json_option("Print the counts as JSON.")
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
@json_option("Print the cleaning report as JSON.")
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
@json_option("Print split.json.")
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
@json_option("Print the statistics as JSON.")
def data_inspect(input, top, drop_stopwords, examples, as_json, format, image_root, **reader) -> None:
    """Describe INPUT (records or any raw format): counts, lengths, vocabulary, duplicates."""
    from captune.data.inspect import format_stats, inspect_dataset

    stats = inspect_dataset(input, format, image_root, top, drop_stopwords, examples, **reader)
    if as_json:
        echo_json(stats)
    else:
        click.echo(format_stats(stats))


@data.command("enhance")
@click.argument("records", type=click.Path(exists=True, dir_okay=False))
@click.option("--vocab", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Attribute vocabulary, {category: [values]} as YAML or JSON (as the attributes metric takes).")
@click.option("--clip-model", required=True,
              help="CLIP: a Hugging Face name (local cache), a folder, or shapes-clip (ships with captune).")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Enhanced records (JSONL).")
@click.option("--template", default=None,
              help="Caption template over the categories and {caption} (default: \"{colour} {material} {caption}\" "
                   "for a vocabulary of colour and material).")
@click.option("--min-margin", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Keep a category's best value only when its probability beats the runner-up's by this much.")
@click.option("--prompt", default="a photo of a {value} object", show_default=True,
              help="What CLIP scores for each value, with {value} (and {category}), e.g. \"a photo of a {value} shoe\".")
@click.option("--image-root", type=click.Path(file_okay=False), default=None,
              help="Folder relative image paths resolve against (default: the records file's folder).")
@click.option("--device", default=None, help="cpu, cuda, ... (default: CUDA when present).")
@json_option("Print the summary as JSON.")
@progress_option()
def data_enhance(records, vocab, clip_model, out, template, min_margin, prompt, image_root, device, as_json,
                 progress) -> None:
    """Add the attributes CLIP sees in each image to its captions (meta.enhanced_attributes, _scores)."""
    from captune.data.enhance import enhance_file

    summary = enhance_file(records, vocab, clip_model, out, template=template, min_margin=min_margin,
                           prompt=prompt, image_root=image_root, device=device, progress=progress)
    if as_json:
        echo_json(summary)
        return
    kept = ", ".join(f"{c} {n}" for c, n in summary["kept"].items())
    click.echo(f"{records}: {summary['records']} records, {summary['scored']} images scored -> {out}")
    click.echo(f"attributes kept (margin >= {min_margin}): {kept}")
    if summary["unreadable"]:
        click.echo(f"{len(summary['unreadable'])} images could not be read (captions unchanged): "
                   + ", ".join(summary["unreadable"][:5]))


COMMANDS = (data,)
