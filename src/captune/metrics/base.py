"""The metric interface and registry.

A metric is a function registered under a group name with the output names it produces:

    @register("rouge", outputs=("rouge_l",), tokenized=True)
    def rouge(predictions, references, images=None, **options) -> MetricResult: ...

``predictions`` is a list of strings, ``references`` a parallel list of lists of strings,
``images`` a parallel list of image paths (or None). ``tokenized=True`` metrics receive
PTB-tokenized text, as COCO evaluation does. ``options`` carries settings such as
``clip_model`` or ``bertscore_model``; a metric takes what it needs and ignores the rest.
A metric that cannot run here raises ``MetricUnavailable`` with the reason; ``score`` reports
it as unavailable (never as 0). ``aliases`` maps former output names to current ones
(``attr_map`` -> ``attr_precision``): asking for an alias gives the current output.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class MetricUnavailable(Exception):
    """The metric cannot run here; the message says why and what would make it run."""


@dataclass
class MetricResult:
    corpus: dict[str, float]
    """Corpus-level value per output name."""
    per_item: list[dict[str, float]] = field(default_factory=list)
    """One dict per prediction (empty when the metric has no per-item value)."""
    info: dict[str, str] = field(default_factory=dict)
    """Configuration strings to report next to the numbers (e.g. the BERTScore hash)."""


@dataclass(frozen=True)
class MetricSpec:
    name: str
    outputs: tuple[str, ...]
    fn: Callable[..., MetricResult]
    needs_images: bool = False
    tokenized: bool = False


_REGISTRY: dict[str, MetricSpec] = {}
_ALIASES: dict[str, str] = {}


def register(
    name: str,
    outputs: tuple[str, ...],
    *,
    needs_images: bool = False,
    tokenized: bool = False,
    aliases: dict[str, str] | None = None,
) -> Callable[[Callable[..., MetricResult]], Callable[..., MetricResult]]:
    def deco(fn: Callable[..., MetricResult]) -> Callable[..., MetricResult]:
        _REGISTRY[name] = MetricSpec(name, tuple(outputs), fn, needs_images, tokenized)
        _ALIASES.update(aliases or {})
        return fn

    return deco


def canonical(name: str) -> str:
    """The current output name of ``name`` (``attr_map`` -> ``attr_precision``); others unchanged."""
    return _ALIASES.get(name, name)


def registered() -> dict[str, MetricSpec]:
    """Metric groups registered so far, by name (a metric module registers its groups when it is
    imported; ``captune.metrics.load_all()`` imports them all)."""
    return dict(_REGISTRY)


def spec_for(output: str) -> MetricSpec:
    """The metric group that produces ``output`` (an output name such as ``bleu_4``, or an alias)."""
    output = canonical(output)
    for spec in _REGISTRY.values():
        if output in spec.outputs or output == spec.name:
            return spec
    names = sorted(o for s in _REGISTRY.values() for o in s.outputs)
    raise KeyError(f"unknown metric {output!r}; known metrics: {', '.join(names)}")


class Scores(tuple):
    """``(corpus, per_item)`` as returned by ``score``, with ``unavailable`` and ``info`` attached.

    Unpacks as a pair; ``unavailable`` maps a requested metric that could not run to the reason.
    """

    corpus: dict[str, float]
    per_item: list[dict[str, Any]]
    unavailable: dict[str, str]
    info: dict[str, str]

    def __new__(cls, corpus, per_item, unavailable=None, info=None):
        self = super().__new__(cls, (corpus, per_item))
        self.corpus, self.per_item = corpus, per_item
        self.unavailable = dict(unavailable or {})
        self.info = dict(info or {})
        return self

    def to_json(self) -> dict[str, Any]:
        """``{metric: value}``; unavailable metrics are ``null`` with reasons under ``unavailable``."""
        out: dict[str, Any] = dict(self.corpus)
        for name in self.unavailable:
            out[name] = None
        if self.unavailable:
            out["unavailable"] = dict(self.unavailable)
        return out
