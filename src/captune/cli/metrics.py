"""``captune metrics``: score predicted captions against references (``captune.metrics.score_files``).

Nothing here imports torch: ``captune metrics --help`` and the text metrics start without it.
Tests in tests/unit/metrics/test_score.py.
"""

from __future__ import annotations

import contextlib
import gc

import click

from captune.cli import echo_json, json_option, request_quick_exit, unavailable_line


@click.command("metrics")
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
@json_option("Print one JSON object {metric: value}.")
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
    with _gc_paused():
        scores = score_files(predictions, references, metric_names, tokenizer=tokenizer, per_item=per_item,
                             **options)
    if as_json:
        echo_json(scores.to_json())
    else:
        _print_scores(scores)
    request_quick_exit()


@contextlib.contextmanager
def _gc_paused():
    """No cyclic garbage collection while scoring: it makes a few hundred thousand small lists and
    tuples and no cycles, and the collector's passes over them took 13-26 ms of a 5,000-image run."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _print_scores(scores) -> None:
    """One line per corpus score (integers without decimals), then what could not run and the notes."""
    width = max([len(k) for k in list(scores.corpus) + list(scores.unavailable)] + [6])
    for name, value in scores.corpus.items():
        shown = f"{value:.0f}" if float(value).is_integer() and abs(value) >= 1 else f"{value:.4f}"
        click.echo(f"{name:<{width}}  {shown}")
    if scores.unavailable:
        click.echo(unavailable_line(scores.unavailable))
    for key, value in scores.info.items():
        click.echo(f"# {key}: {value}")


COMMANDS = (metrics_command,)
