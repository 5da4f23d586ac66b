"""``captune evaluate`` (caption a test set, score it, write OUT/eval.json: ``captune.evaluate.evaluate``)
and ``captune compare`` (evaluation folders against the first, with intervals: ``captune.evaluate.compare``).

Tests in tests/unit/evaluate/test_evaluate.py and test_compare.py.
"""

from __future__ import annotations

import click

from captune.cli import csv_list, echo_json, json_option, progress_option, unavailable_line
from captune.cli.caption import captioner_options


@click.command("evaluate")
@click.option("--data", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Records JSONL with reference captions (e.g. data/splits/test.jsonl).")
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Folder for predictions.jsonl and eval.json (a rerun reuses the captions there if the model, "
                   "adapter, prompt, dtype and decoding are the same, and refuses the folder otherwise).")
@captioner_options
@click.option("--predictions", default=None, type=click.Path(exists=True, dir_okay=False),
              help="Evaluate captions already written ({\"image_id\", \"caption\"} lines) instead of a model.")
@click.option("--decodings", default=None,
              help="Also compare these presets side by side, e.g. beam,top_k,top_p (features computed once).")
@click.option("--metrics", default=None,
              help="Comma-separated metrics (default: those of BLEU-1..4, METEOR, ROUGE-L, CIDEr, SPICE and "
                   "diversity that can run here, and CLIPScore/RefCLIPScore with --clip-model).")
@click.option("--clip-model", default=None, help="CLIP model (name or folder) for CLIPScore and hallucination checks.")
@click.option("--bertscore-model", default=None, help="Model name or folder for BERTScore (with --metrics bertscore).")
@click.option("--sentence-model", default=None,
              help="Sentence-embedding model name or folder (with --metrics sentence_cosine).")
@click.option("--attributes", default=None, type=click.Path(exists=True, dir_okay=False),
              help="Attribute vocabulary {category: [values]}, YAML or JSON (with --metrics attributes).")
@json_option("Print the metrics and error counts as JSON.")
@progress_option()
def evaluate_cmd(data, out, model, adapter, predictions, decoding, decodings, metrics, clip_model, prompt,
                 batch_size, image_root, dtype, bertscore_model, sentence_model, attributes, as_json,
                 progress) -> None:
    """Caption a test set (or read captions), score them and write OUT/eval.json.

    Under `accelerate launch --num_processes N -m captune evaluate ...` the N processes share the
    captioning; the main process scores once and writes eval.json.
    """
    from captune.evaluate import evaluate
    from captune.evaluate.evaluation import evaluation_summary

    result = evaluate(data, out, model=model, adapter=adapter, predictions=predictions, decoding=decoding,
                      decodings=csv_list(decodings) or (), metrics=csv_list(metrics), clip_model=clip_model,
                      prompt=prompt, batch_size=batch_size, image_root=image_root, dtype=dtype, progress=progress,
                      **_metric_options(bertscore_model, sentence_model, attributes))
    if result is None:  # another process than the main one under accelerate launch: the main one scores
        return
    summary = evaluation_summary(result, out)
    if as_json:
        echo_json(summary)
        return
    _print_evaluation(result, summary)


def _metric_options(bertscore_model, sentence_model, attributes) -> dict:
    """The model-based and attribute metrics' options given on the command line (as `captune metrics`)."""
    given = {"bertscore_model": bertscore_model, "sentence_model": sentence_model, "attribute_vocab": attributes}
    return {k: v for k, v in given.items() if v is not None}


def _print_evaluation(result: dict, summary: dict) -> None:
    """The human-readable form of an evaluation: metrics, unavailable ones, error counts, decodings."""
    from captune.report.text import num

    click.echo(f"{summary['images']} images -> {summary['out']}/eval.json")
    for name, value in result["metrics"].items():
        if value is not None:
            click.echo(f"  {name:<14} {num(value)}")
    if result["unavailable"]:
        click.echo(unavailable_line(result["unavailable"]))
    click.echo("errors: " + ", ".join(f"{k} {v}" for k, v in summary["errors"].items()))
    for row in result.get("decodings") or []:
        values = ", ".join(f"{k} {num(v, 3)}" for k, v in row["metrics"].items() if v is not None)
        click.echo(f"  {row['label']:<22} {values}")


@click.command("compare")
@click.argument("dirs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--resamples", default=1000, show_default=True, type=click.IntRange(min=1),
              help="Bootstrap resamples and permutation rounds.")
@click.option("--seed", default=0, show_default=True, help="Seed of the resampling.")
@click.option("--metrics", default=None, help="Comma-separated metrics to compare (default: all in both).")
@json_option("Print the comparison as JSON.")
def compare_cmd(dirs, resamples, seed, metrics, as_json) -> None:
    """Compare evaluation folders (A B [C ...]): each against the first, with 95% intervals and p-values."""
    from captune.evaluate import compare
    from captune.report.text import format_comparison

    result = compare(dirs, resamples=resamples, seed=seed, metrics=csv_list(metrics))
    if as_json:
        echo_json(result)
        return
    for pair in result.get("comparisons", [result]):
        click.echo(format_comparison(pair))


COMMANDS = (evaluate_cmd, compare_cmd)
