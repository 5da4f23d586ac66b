"""Caption metrics: one entry point over every registered metric.

    from captune.metrics import score
    corpus, per_item = score(predictions, references)          # the default COCO set
    scores = score(preds, refs, metrics=["bleu_4", "cider"])    # just these
    scores.unavailable  # {"spice": "SPICE needs the Stanford CoreNLP 3.6.0 jars ..."}

``score`` PTB-tokenizes once for all metrics that want tokenized text (as COCO evaluation does:
references as one batch, predictions as another), runs each requested metric group once, merges
the per-item values (one dict per prediction) and reports metrics that cannot run here as
unavailable with the reason, never as 0. What metrics keep between calls (loaded models,
embeddings, tokenizer caches, the METEOR process) lives in a ``MetricResources`` that the caller
owns and closes; without one, ``score`` makes its own and closes it before returning. ``score_files`` does the same from a predictions JSONL
and a references JSONL joined by ``image_id`` (``load_predictions``, ``load_references``,
``align``), and is what ``captune metrics`` runs.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from itertools import accumulate
from typing import Any

from captune.errors import ConfigError, DataError, ModelNotFoundError
from captune.metrics import diversity
from captune.metrics.base import (
    MetricResult,
    MetricSpec,
    MetricUnavailable,
    Scores,
    canonical,
    registered,
    spec_for,
)
from captune.metrics.files import (
    Aligned,
    Predictions,
    References,
    align,
    load_predictions,
    load_references,
    load_train_captions,
    score_files,
)
from captune.metrics.ptb import tokenize
from captune.metrics.resources import MetricResources

# The default set where everything is installed; ``default_metrics()`` is the part that can run here.
DEFAULT_METRICS = ("bleu_1", "bleu_2", "bleu_3", "bleu_4", "meteor", "rouge_l", "cider", "spice",
                   *diversity.OUTPUTS)
# The default metrics that need more than Python: their module's ``check()`` raises
# MetricUnavailable with the reason.
_CHECKED = ("meteor", "spice")
# The module (``captune.metrics.<module>``) that registers each metric group, output and alias. A
# metric's module is imported when the metric is asked for, so scoring BLEU imports neither the
# model-based metrics nor what they import (tests/unit/metrics/test_imports.py checks this table
# against the registry).
METRIC_MODULES = {
    "attributes": ("attributes", "attr_precision", "attr_recall", "attr_accuracy", "attr_map", "attr_mar"),
    "bertscore": ("bertscore", "bertscore_p", "bertscore_r", "bertscore_f1"),
    "bleu": ("bleu", "bleu_1", "bleu_2", "bleu_3", "bleu_4"),
    "cider": ("cider",),
    "clipscore": ("clipscore", "refclipscore", "clip_win_rate"),
    "diversity": ("diversity", *diversity.OUTPUTS, "novelty", "novel_fraction"),
    "meteor": ("meteor",),
    "perplexity": ("perplexity",),
    "rouge": ("rouge", "rouge_l"),
    "sentence": ("sentence_cosine",),
    "spice": ("spice",),
}
_MODULE_OF = {name: module for module, names in METRIC_MODULES.items() for name in names}


def _load(name: str) -> None:
    """Import the module that registers metric ``name`` (nothing for an unknown name)."""
    if name in _MODULE_OF:
        importlib.import_module(f"captune.metrics.{_MODULE_OF[name]}")


def load_all() -> None:
    """Import every metric module (what ``known_metrics`` and the registry's checks need)."""
    for module in METRIC_MODULES:
        importlib.import_module(f"captune.metrics.{module}")

__all__ = [
    "DEFAULT_METRICS",
    "Aligned",
    "MetricResources",
    "MetricResult",
    "MetricUnavailable",
    "Predictions",
    "References",
    "Scores",
    "align",
    "default_metrics",
    "known_metrics",
    "load_all",
    "load_predictions",
    "load_references",
    "load_train_captions",
    "score",
    "score_files",
    "tokenize",
]


def default_metrics() -> tuple[list[str], dict[str, str]]:
    """``DEFAULT_METRICS`` that can run here, and the others with the reason (METEOR needs Java,
    SPICE also the Stanford CoreNLP jars). Checks files and PATH only; starts nothing."""
    names, left_out = [], {}
    for name in DEFAULT_METRICS:
        try:
            if name in _CHECKED:
                importlib.import_module(f"captune.metrics.{name}").check()
            names.append(name)
        except MetricUnavailable as e:
            left_out[name] = str(e)
    return names, left_out


def known_metrics() -> list[str]:
    """Every metric name ``score`` accepts (output names; a group name means all its outputs)."""
    load_all()
    return sorted({o for s in registered().values() for o in s.outputs})


def _requested(metrics: Sequence[str] | str | None, options: dict) -> dict[str, list[str]]:
    """Requested outputs grouped by metric group, in the order asked."""
    if metrics is None:
        metrics = default_metrics()[0] + (["novel_fraction"] if options.get("train_captions") else [])
    elif isinstance(metrics, str):
        metrics = [m.strip() for m in metrics.split(",") if m.strip()]
    groups: dict[str, list[str]] = {}
    for name in metrics:
        _load(name)
        name = canonical(name)
        try:
            spec = spec_for(name)
        except KeyError as e:
            raise ConfigError(f"unknown metric {name!r}; known metrics: {', '.join(known_metrics())}") from e
        outputs = list(spec.outputs) if name == spec.name and name not in spec.outputs else [name]
        groups.setdefault(spec.name, [])
        groups[spec.name] += [o for o in outputs if o not in groups[spec.name]]
    return groups


def _tokenized(predictions, references, backend: str, resources) -> tuple[list[str], list[list[str]]]:
    flat = tokenize([r for refs in references for r in refs], backend=backend, resources=resources)
    ends = list(accumulate(map(len, references)))
    refs_tok = list(map(flat.__getitem__, map(slice, [0, *ends[:-1]], ends)))
    return tokenize(list(predictions), backend=backend, resources=resources), refs_tok


def score(
    predictions: Sequence[str],
    references: Sequence[Sequence[str]],
    images: Sequence[str] | None = None,
    metrics: Sequence[str] | str | None = None,
    *,
    tokenizer: str = "python",
    resources: MetricResources | None = None,
    **options: Any,
) -> Scores:
    """Score ``predictions`` (one caption per image) against ``references`` (captions per image).

    ``metrics``: output names (``bleu_4``, ``cider``...) or group names (``bleu``); None for the
    default set that can run here (``default_metrics()``: BLEU-1..4, METEOR with Java, ROUGE-L,
    CIDEr, SPICE with Java and the CoreNLP jars, diversity; ``novel_fraction`` too when
    ``train_captions`` is given; the defaults left out are in ``unavailable``). Model-based
    metrics run only when asked for. ``tokenizer``:
    ``"python"`` or ``"java"`` (pycocoevalcap's jar). ``options`` go to every metric (e.g.
    ``clip_model``, ``bertscore_model``, ``train_captions``). Returns ``Scores``: unpacks as
    ``(corpus, per_item)``, with ``unavailable`` (metric -> reason) and ``info``. ``resources``:
    models and caches to reuse across calls (the caller closes it); None: made and closed here.
    """
    if resources is None:
        with MetricResources() as own:
            return score(predictions, references, images, metrics, tokenizer=tokenizer, resources=own, **options)
    predictions, references = list(predictions), [r if type(r) is list else list(r) for r in references]
    if not predictions:
        raise DataError("no predictions to score")
    if len(references) != len(predictions) or (images is not None and len(images) != len(predictions)):
        raise DataError(f"{len(predictions)} predictions, {len(references)} reference lists"
                        + ("" if images is None else f", {len(images)} images") + ": they must be parallel")
    groups = _requested(metrics, options)
    specs = registered()
    corpus: dict[str, float] = {}
    per_item: list[dict[str, Any]] = []  # made on the first result
    unavailable: dict[str, str] = default_metrics()[1] if metrics is None else {}
    info: dict[str, str] = {}
    tokens: tuple | MetricUnavailable | None = None
    for name, outputs in groups.items():
        spec = specs[name]
        try:
            if spec.tokenized:
                if tokens is None:
                    tokens = _try(lambda: _tokenized(predictions, references, tokenizer, resources))
                if isinstance(tokens, MetricUnavailable):
                    raise tokens
            result = _run(spec, tokens if spec.tokenized else (predictions, references), images,
                          {**options, "tokenizer": tokenizer, "resources": resources})
        except (MetricUnavailable, ModelNotFoundError) as e:
            unavailable.update({o: str(e) for o in outputs})
            continue
        corpus.update({o: result.corpus[o] for o in outputs if o in result.corpus})
        unavailable.update({o: f"{name} did not report {o}" for o in outputs if o not in result.corpus})
        per_item = _merge(per_item, result.per_item, outputs, set(spec.outputs) <= set(outputs), len(predictions))
        info.update(result.info)
    return Scores(corpus, per_item or [{} for _ in predictions], unavailable, info)


def _merge(per_item: list[dict], items: list[dict], outputs: list[str], whole: bool, n: int) -> list[dict]:
    """``per_item`` with ``items`` merged in (only ``outputs`` unless ``whole``), made on first use."""
    if not per_item and whole and len(items) == n:
        return list(map(dict, items))  # copies: a metric's own dicts stay its own
    per_item = per_item or [{} for _ in range(n)]
    if whole:
        list(map(dict.update, per_item, items))
    else:
        for merged, item in zip(per_item, items):
            merged.update({k: v for k, v in item.items() if k in outputs})
    return per_item


def _try(fn):
    try:
        return fn()
    except MetricUnavailable as e:
        return MetricUnavailable(f"PTB tokenization unavailable: {e}")


def _run(spec: MetricSpec, data, images, options: dict) -> MetricResult:
    predictions, references = data
    if spec.needs_images and images is None:
        raise MetricUnavailable(f"{spec.name} needs the images (give image paths: a references file "
                                "with an 'image' field)")
    return spec.fn(predictions, references, images=images, **options)
