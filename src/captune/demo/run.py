"""``captune demo``: the whole job, end to end, on the embedded default or your own data.

    captune demo --out runs/demo                                   # shapes world, 2-core CPU, minutes
    captune demo --model blip2-opt-2.7b --data records.jsonl --out runs/mine   # a real checkpoint

Steps, each a library call whose files land in ``OUT``:

1. data: generate the shapes world in the club's house style (``data/world``), or take
   ``--data``; validate it (``data/checked``: records, rejects) and split it by image
   (``data/splits``, 70/10/20, stratified by event), near-duplicate shots kept in one split;
2. fine-tune: LoRA on the base captioner with validation metrics during training (``run/``);
3. evaluate the base and the fine-tuned model on the test split (``run/eval/base``,
   ``run/eval/finetuned``, the latter also under several decodings);
4. compare them with paired bootstrap intervals and write the report (``report.html``,
   ``report.md``) and the model card (``run/checkpoints/best/README.md``);
5. ``summary.json``: ``{"base": {metric: value}, "finetuned": {metric: value}, "report": path, ...}``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from captune.errors import CaptuneError

DEMO_MODEL = "shapes-blip2-opt"
DEMO_IMAGES = 1000  # 700 to train on, 200 to test: intervals tight enough to tell a real gain
DEMO_STEPS = 800
DEMO_MAX_NEW_TOKENS = 48  # house-style captions run to 40 tokens of the shipped tokenizer
SUMMARY_METRICS = ("bleu_4", "cider", "rouge_l", "meteor", "clipscore", "attr_accuracy")
EVAL_METRICS = ["bleu_1", "bleu_2", "bleu_3", "bleu_4", "meteor", "rouge_l", "cider", "distinct_1", "distinct_2",
                "self_bleu", "vocab_size", "mean_length", "attr_precision", "attr_recall", "attr_accuracy"]


def run_demo(
    out: str | Path = "runs/demo",
    model: str | None = None,
    data: str | Path | None = None,
    n_images: int = DEMO_IMAGES,
    steps: int | None = None,
    seed: int = 0,
    clip_model: str | None = None,
    progress: bool | None = None,
    echo: Callable[[str], None] = print,
    overrides: Sequence[str] = (),
    review: bool = False,
) -> dict[str, Any]:
    """Run the demo into ``out``; returns the summary also written to ``out/summary.json``.

    ``review``: also create a blind review study of the base against the fine-tuned captions on
    the test images (``out/review``, see ``demo_review_study``) and echo its invite links.

    ``overrides``: fine-tuning ``key=value`` settings applied after the demo's own (for a quicker
    recipe, as in the tests: ``["finetune.vision=frozen", "train.batch_size=8"]``).
    """
    out = Path(out)
    if (out / "run" / "checkpoints" / "last").exists():
        raise CaptuneError(f"{out} already holds a demo run; choose another --out or remove it")
    if (model is None) != (data is None):
        raise CaptuneError("give both --model and --data to run on your own data (or neither for the shapes world)")
    embedded = model is None
    if embedded:
        from captune.demo.shipped import quiet_transformers

        with quiet_transformers(), demo_threads():  # no "Loading weights" bars between the steps
            return _run(out, None, None, n_images, steps, seed, clip_model, progress, echo, overrides, review)
    return _run(out, model, data, n_images, steps, seed, clip_model, progress, echo, overrides, review)


def free_cores() -> int:
    """Cores this process may use that other processes are not already keeping busy, at least 1:
    busy by the 1-minute load average or, as that lags a process just started, by the processes
    runnable now besides this one (Linux's ``/proc/loadavg``)."""
    cores = len(os.sched_getaffinity(0))
    busy = max(round(os.getloadavg()[0]), _runnable_others())
    return max(1, min(cores, cores - busy))


def _runnable_others() -> int:
    """Processes runnable at this moment other than this one; 0 where ``/proc/loadavg`` is absent."""
    try:
        runnable = Path("/proc/loadavg").read_text().split()[3].split("/")[0]
    except (OSError, IndexError):
        return 0
    return max(0, int(runnable) - 1)


@contextmanager
def demo_threads():
    """Torch threads for the embedded demo: one per free core, unless ``OMP_NUM_THREADS`` says.

    The shipped models' matrices are small: when another process keeps a core busy, a second
    thread waits on it at every operation (on 2 cores with one busy process, 100 training steps
    took 49 s on 2 threads and 31 s on 1; ``benchmarks/RESULTS.md``). Restored afterwards.
    """
    import torch

    before = torch.get_num_threads()
    if not os.environ.get("OMP_NUM_THREADS"):
        torch.set_num_threads(min(before, free_cores()))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _run(out: Path, model, data, n_images, steps, seed, clip_model, progress, echo, overrides,
         review: bool = False) -> dict[str, Any]:
    from captune.io import write_json

    embedded = model is None
    t0 = time.time()
    records = _prepare_data(out, data, n_images, seed, echo)
    if embedded and clip_model is None:
        from captune.demo.shipped import shipped_path

        clip_model = str(shipped_path("clip"))
    splits = _split(out, records, embedded, seed, echo)
    base = model or DEMO_MODEL
    run_dir = out / "run"
    _finetune(run_dir, base, splits, embedded, steps, seed, progress, echo, overrides)
    evals = _evaluate(run_dir, base, splits["test"], clip_model, embedded, progress, echo)
    echo("writing the report")
    from captune.report import build_report

    written = build_report([run_dir], out=out, seed=seed, model_card=True)
    summary = _summary(evals, written, out, time.time() - t0)
    if review:
        summary["review"] = demo_review_study(out, seed, echo)
    write_json(out / "summary.json", summary)
    return summary


def demo_review_study(out: Path, seed: int, echo: Callable[[str], None]) -> dict[str, str]:
    """A pairwise study of ``out/run/eval/base`` against ``finetuned`` on the test images in
    ``out/review`` with raters rater1 and rater2; echoes the invite links (never written to disk:
    the study keeps only their hashes) and returns the study folder and its serve command."""
    from captune.review.store import create_study, invite_link

    evals = out / "run" / "eval"
    made = create_study(out / "review", {"base": evals / "base", "finetuned": evals / "finetuned"},
                        pairwise=True, raters=["rater1", "rater2"], seed=seed)
    serve = f"captune review serve {out / 'review'}"
    echo(f"review study: {made['items']} test images, base vs fine-tuned, captions shown blind -> {out / 'review'}")
    for name, token in [*made["raters"].items(), ("admin", made["admin"])]:
        echo(f"  {name:<8} {invite_link(token)}")
    echo(f"  serve it: {serve}")
    return {"study": str(out / "review"), "serve": serve}


def _prepare_data(out: Path, data, n_images: int, seed: int, echo) -> Path:
    from captune.data.validate import validate_dataset

    if data is None:
        from captune.demo.world import generate

        echo(f"generating {n_images} shapes-world images in the club's house style")
        # A seed apart from the ones the shipped base model was trained on: these scenes are new to it.
        data = generate(out / "data" / "world", n_images=n_images, seed=1000 + seed, style="house").files["house"]
    echo(f"validating {data}")
    report = validate_dataset(data, out / "data" / "checked")
    if report.failed:
        raise CaptuneError(f"{data}: no usable records (see {out / 'data' / 'checked' / 'rejects.jsonl'})")
    if report.rejects:
        echo(f"  {len(report.rejects)} rows rejected: {dict(report.reasons)}")
    return out / "data" / "checked" / "records.jsonl"


def _split(out: Path, records: Path, embedded: bool, seed: int, echo) -> dict[str, Path]:
    """Split by image, keeping near-duplicates together: the world's ``near_duplicate_of`` re-shoots
    and anything the perceptual hash finds (a re-shoot in test would be seen in training)."""
    from captune.data.near_duplicates import DEFAULT_THRESHOLD
    from captune.data.split import split_file

    result = split_file(records, out / "data" / "splits", "0.7,0.1,0.2", seed, "event" if embedded else None,
                        hash_threshold=DEFAULT_THRESHOLD)
    grouping = result.grouping.to_json()
    echo("split: " + ", ".join(f"{k} {len(v)}" for k, v in result.splits.items()) + " images; "
         f"{grouping['grouped_units']} groups of near-duplicates kept together")
    return {name: out / "data" / "splits" / f"{name}.jsonl" for name in ("train", "val", "test")}


def _finetune(run_dir: Path, base: str, splits, embedded: bool, steps, seed: int, progress, echo,
              overrides: Sequence[str] = ()) -> None:
    from captune.config import load_config
    from captune.train.config import TrainConfig
    from captune.train.loop import finetune

    common = [f"model.name={base}", f"data.train={splits['train']}", f"data.val={splits['val']}",
              f"output_dir={run_dir}", f"train.seed={seed}", "eval.metrics=[bleu_4,rouge_l,cider]",
              "eval.monitor=cider+bleu_4"]
    if embedded:
        # The shipped base is small and CPU-friendly: a short, high learning-rate LoRA run on all
        # three parts. The ViT adapts too: its features were warmed up on objects, and naming the
        # event means seeing the venue (with a frozen ViT the model names one event for all).
        # No LoRA dropout: on matrices this small it took a tenth of the time; validation every
        # 100 steps.
        settings = ["finetune.r=16", "finetune.alpha=32", "finetune.targets=all_linear", "finetune.qformer=lora",
                    "finetune.vision=lora", "finetune.dropout=0",
                    f"train.max_steps={steps or DEMO_STEPS}", "train.batch_size=16", "train.lr=2e-3",
                    "train.warmup_ratio=0.05", "eval.every_steps=100", "eval.subset=30", "eval.batch_size=30",
                    "eval.decoding.strategy=greedy", f"eval.decoding.max_new_tokens={DEMO_MAX_NEW_TOKENS}",
                    "data.max_caption_tokens=40"]
    else:
        import torch

        settings = [f"train.max_steps={steps or 300}", "train.batch_size=8", "train.lr=1e-4",
                    "train.warmup_ratio=0.05", "eval.every_steps=100"]
        if torch.cuda.is_available():
            settings += ["model.dtype=bfloat16", "train.precision=bf16"]
    cfg = load_config(TrainConfig, None, common + settings + list(overrides))
    echo(f"fine-tuning {base} with LoRA for {cfg.train.max_steps} steps -> {run_dir}")
    summary = finetune(cfg, progress=progress)
    echo(f"  {summary['trainable']}")
    echo(f"  best {summary['monitor']} = {summary['best_score']:.4f} at step {summary['best_step']}")


def _evaluate(run_dir: Path, base: str, test: Path, clip_model, embedded: bool, progress, echo) -> dict[str, dict]:
    from captune.evaluate import evaluate
    from captune.generate import decoding_preset

    options: dict[str, Any] = {}
    metrics = list(EVAL_METRICS)
    if embedded:
        from captune.demo.world import ATTRIBUTE_VOCAB

        options["attribute_vocab"] = ATTRIBUTE_VOCAB
    else:
        metrics = [m for m in metrics if not m.startswith("attr_")]
    if clip_model:
        metrics += ["clipscore", "refclipscore"]
    length = {"max_new_tokens": DEMO_MAX_NEW_TOKENS} if embedded else {}
    decoding = decoding_preset("greedy" if embedded else "beam", **length)
    compared = {name: decoding_preset(name, **length) for name in ("beam", "top_k", "top_p")}
    results = {}
    for name, kwargs in (("base", {"model": base}),
                         ("finetuned", {"adapter": str(run_dir / "checkpoints" / "best"), "decodings": compared})):
        echo(f"evaluating the {'base' if name == 'base' else 'fine-tuned'} model on {test}")
        results[name] = evaluate(test, run_dir / "eval" / name, decoding=decoding, metrics=metrics,
                                 clip_model=clip_model, batch_size=32, progress=progress, **kwargs, **options)
    return results


def _summary(evals: dict[str, dict], written: dict, out: Path, seconds: float) -> dict[str, Any]:
    from captune.evaluate import compare

    pair = compare([out / "run" / "eval" / "base", out / "run" / "eval" / "finetuned"])
    metrics = pair["metrics"]
    return {
        "base": {k: v for k, v in evals["base"]["metrics"].items() if v is not None},
        "finetuned": {k: v for k, v in evals["finetuned"]["metrics"].items() if v is not None},
        "compare": {k: metrics[k] for k in SUMMARY_METRICS if k in metrics},
        "report": str(Path(written["html"]).resolve()),
        "report_md": str(Path(written["markdown"]).resolve()),
        "seconds": round(seconds, 1),
    }


def summary_table(summary: dict[str, Any]) -> str:
    """The short table ``captune demo`` prints."""
    rows = [f"{'metric':<14}{'base':>9}{'fine-tuned':>12}{'delta':>9}   95% interval of the delta"]
    for name, m in summary["compare"].items():
        ci = (f"[{round(m['ci_low'], 3) or 0.0:+.3f}, {round(m['ci_high'], 3) or 0.0:+.3f}]"
              if m.get("ci_low") is not None else "(no interval)")
        delta = round(m["delta"], 3) or 0.0  # no "-0.000"
        rows.append(f"{name:<14}{m['a']:>9.3f}{m['b']:>12.3f}{delta:>+9.3f}   {ci}")
    return "\n".join(rows)
