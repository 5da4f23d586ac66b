"""``captune caption``: caption a folder or a records file with a base model or a fine-tuned
checkpoint (``captune.generate.caption_images``); reruns skip images already done.
"""

from __future__ import annotations

import click

from captune.cli import DTYPE_CHOICES, echo_json, json_option, progress_option

DECODINGS = ("greedy", "beam", "top_k", "top_p", "temperature")  # as captune.generate.PRESETS (a test checks)


def captioner_options(f):
    """The options of every command that runs a captioner (caption, evaluate), spelled alike."""
    options = [
        click.option("--model", default=None,
                     help="Base model: name (captune models list), Hugging Face id or folder."),
        click.option("--adapter", default=None, type=click.Path(exists=True, file_okay=False),
                     help="Fine-tuned checkpoint folder (its base model and prompt are used unless given)."),
        click.option("--decoding", default="beam", show_default=True, type=click.Choice(DECODINGS),
                     help="Decoding preset."),
        click.option("--prompt", default=None,
                     help="Prompt template (default: the one the checkpoint was trained with)."),
        click.option("--batch-size", default=8, show_default=True, help="Images per batch."),
        click.option("--image-root", default=None,
                     help="Folder that relative image paths in the records resolve against."),
        click.option("--dtype", default="auto", show_default=True, type=click.Choice(DTYPE_CHOICES),
                     help="Weights dtype; auto: bfloat16 on a CUDA GPU that has it natively, else float32."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


@click.command()
@click.option("--input", "input_", required=True, type=click.Path(exists=True),
              help="A folder of images or a records JSONL file.")
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="Predictions JSONL (appended, resumable; a file written with another model, adapter, prompt, "
                   "dtype, decoding or clean-up is refused). Images that cannot be read are listed in its sibling "
                   "OUT_STEM.rejects.jsonl.")
@captioner_options
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
@click.option("--clean", "clean_config", default=None, type=click.Path(exists=True, dir_okay=False),
              help="Caption clean-up rules (YAML, as for `captune data clean`); default strips @handles, "
                   "hashtags and links.")
@click.option("--raw", is_flag=True, help="Keep the generated text as it is (no clean-up).")
@click.option("--strict", is_flag=True, help="Exit with status 1 when any image could not be read (the others "
                                             "are captioned all the same).")
@json_option()
@progress_option()
@click.pass_context
def caption(ctx: click.Context, model, adapter, input_, out, image_root, decoding, prompt, batch_size, dtype,
            clean_config, raw, strict, as_json, progress, **settings) -> None:
    """Caption images with a base model or a fine-tuned checkpoint; reruns skip images already done.

    A rerun into the same --out reuses its captions only if they were made with the same model
    and adapter weights, prompt, dtype, decoding and clean-up (otherwise it stops and says what
    differs), and loads no model when every image is done.

    Under `accelerate launch --num_processes N -m captune caption ...` the N processes share the
    images, each writing OUT.parts/rankK.jsonl; the main process then writes OUT, in the input's
    order, each image once. A rerun after a kill, with any N, captions only what is missing.

    An image that cannot be opened or decoded (a corrupt, empty or truncated file, a macOS ._
    file) does not stop the run: it is listed in OUT's sibling *.rejects.jsonl (captions.jsonl ->
    captions.rejects.jsonl: image_id, image, reason, detail), each once, and a warning says how
    many. A rerun tries them again and rewrites that file to what still fails (removes it when
    nothing does). Exit status 0, or 1 when no image could be read, or with --strict when any
    could not.
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
    if summary is None:  # another process than the main one under accelerate launch: the main one reports
        return
    if as_json:
        echo_json(summary)
    else:
        click.echo(f"captioned {summary['captioned']} images ({summary['skipped']} already done) "
                   f"with {summary['decoding']} -> {summary['out']}")
    bad = summary["unreadable"]
    if bad:
        click.echo(f"warning: {bad} image{'s' if bad > 1 else ''} could not be read; listed in "
                   f"{summary['rejects']} (a rerun tries them again)", err=True)
    if bad and (strict or bad == summary["images"]):
        ctx.exit(1)


COMMANDS = (caption,)
