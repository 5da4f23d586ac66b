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


# --- metrics commands ---
@cli.command("metrics")
@click.option("--predictions", "-p", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Predictions JSONL: one {\"image_id\", \"caption\"} per line.")
@click.option("--references", "-r", required=True, type=click.Path(exists=True, dir_okay=False),
              help="References JSONL: {\"image_id\", \"captions\": [...]} or caption records with \"image\".")
@click.option("--metrics", "-m", "metric_names", default=None,
              help="Comma-separated metrics (e.g. bleu_4,cider,meteor); default: the COCO set plus diversity.")
@click.option("--tokenizer", type=click.Choice(["python", "java"]), default="python", show_default=True,
              help="PTB tokenizer: the Python port (no Java needed) or pycocoevalcap's jar.")
@click.option("--per-item", type=click.Path(dir_okay=False), default=None,
              help="Write per-image scores to this JSONL file.")
@click.option("--clip-model", default=None, help="CLIP model name or local path (clip_score, ref_clip_score).")
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
    for name, reason in scores.unavailable.items():
        click.echo(f"{name:<{width}}  unavailable: {reason}")
    for key, value in scores.info.items():
        click.echo(f"# {key}: {value}")
# --- end metrics commands ---


def main() -> None:
    cli(prog_name="captune")


if __name__ == "__main__":
    sys.exit(main())
