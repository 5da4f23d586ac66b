"""Attribute precision/recall/accuracy: does the caption state the right colours, materials, ...?

    from captune.metrics.attributes import attributes, extract_attributes
    vocab = {"colour": ["red", "navy blue"], "material": ["leather", "rubber"]}
    extract_attributes("Navy-blue leather boots", vocab)   # {"colour": {"navy blue"}, "material": {"leather"}}
    attributes(predictions, references, attribute_vocab=vocab)  # or a JSON/YAML file path

Extraction rule. Text and vocabulary values are lowercased and split into tokens of letters and
digits (any other character separates tokens, so "navy-blue" matches "navy blue"). Each token is
reduced to a singular form ("-ies" -> "-y"; "-ches/-shes/-sses/-xes/-zes" drop "es"; otherwise a
final "s" is dropped unless the word ends in "ss", "us" or "is"; words of 3 letters or fewer are
kept), on both sides, so "shoes" matches "shoe". Scanning left to right, the longest vocabulary
phrase starting at a token wins and its tokens are consumed ("navy blue" is not also "blue"); a
phrase listed under several categories counts for each. Negation is not understood ("not red"
states red). Results use the vocabulary's own spelling of the value.

Per item, with P the (category, value) pairs the caption states and R the union over its
references:
- precision |P & R| / |P|, defined when the caption states at least one attribute;
- recall |P & R| / |R|, defined when the references state at least one;
- accuracy: for each category the references mention, the caption is right when it states at
  least one value of that category and every value it states there is among the references'
  values for it (omitting the category or adding another value is wrong); the item's accuracy
  is the share of such categories it gets right, defined when the references mention any.
attr_precision / attr_recall / attr_accuracy are the means over the items where each is defined;
an undefined per-item value is left out of that item's dict. ``info`` counts the items left out.
``attr_map`` and ``attr_mar``, the names of earlier versions, are aliases of attr_precision and
attr_recall: asking for one gives the other (a plain mean of per-item precision, not a mean average
precision).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from captune.errors import ConfigError
from captune.metrics.base import MetricResult, MetricUnavailable, register

Vocab = Mapping[str, list[str]]
_TOKEN = re.compile(r"[a-z0-9]+")


def extract_attributes(text: str, vocab: Vocab | AttributeMatcher) -> dict[str, set[str]]:
    """The vocabulary values ``text`` states, by category (categories with none are absent)."""
    matcher = vocab if isinstance(vocab, AttributeMatcher) else AttributeMatcher(vocab)
    return matcher.extract(text)


class AttributeMatcher:
    """A compiled vocabulary: phrases indexed by their first token, for repeated extraction."""

    def __init__(self, vocab: Vocab) -> None:
        self.vocab = {cat: list(values) for cat, values in vocab.items()}
        self._phrases: dict[str, list[tuple[tuple[str, ...], str, str]]] = {}
        for category, values in self.vocab.items():
            for value in values:
                tokens = tuple(tokenize(value))
                if tokens:
                    self._phrases.setdefault(tokens[0], []).append((tokens, category, value))

    def extract(self, text: str) -> dict[str, set[str]]:
        tokens, found, i = tokenize(text), {}, 0
        while i < len(tokens):
            matches = [
                m for m in self._phrases.get(tokens[i], []) if tuple(tokens[i : i + len(m[0])]) == m[0]
            ]
            if not matches:
                i += 1
                continue
            longest = max(len(m[0]) for m in matches)
            for phrase, category, value in matches:
                if len(phrase) == longest:
                    found.setdefault(category, set()).add(value)
            i += longest
        return found


def tokenize(text: str) -> list[str]:
    """Lowercase letter/digit tokens reduced to a singular form (see the module docstring)."""
    return [singular(t) for t in _TOKEN.findall(text.lower())]


def singular(token: str) -> str:
    if len(token) <= 3:
        return token
    if token.endswith("ies"):
        return token[:-3] + "y"
    if token.endswith(("ches", "shes", "sses", "xes", "zes")):
        return token[:-2]
    if token.endswith("s") and not token.endswith(("ss", "us", "is")):
        return token[:-1]
    return token


def load_vocab(vocab: Vocab | str | Path) -> dict[str, list[str]]:
    """A vocabulary given inline or as a JSON/YAML file mapping category -> list of values."""
    source = "attribute_vocab"
    if isinstance(vocab, (str, Path)):
        source = str(vocab)
        try:
            text = Path(vocab).read_text(encoding="utf-8")
        except OSError as err:
            raise ConfigError(f"cannot read the attribute vocabulary {vocab}: {err.strerror or err}") from err
        vocab = _parse(text, source)
    if not isinstance(vocab, Mapping) or not vocab:
        raise ConfigError(
            f"{source}: expected a mapping of category -> list of values, e.g. {{colour: [red, blue]}}"
        )
    for category, values in vocab.items():
        if not isinstance(values, list) or not all(isinstance(v, str) and v.strip() for v in values):
            raise ConfigError(f"{source}: category {category!r} must map to a list of non-empty strings")
    return {str(c): list(v) for c, v in vocab.items()}


OUTPUTS = ("attr_precision", "attr_recall", "attr_accuracy")


@register("attributes", outputs=OUTPUTS, aliases={"attr_map": "attr_precision", "attr_mar": "attr_recall"})
def attributes(
    predictions: list[str],
    references: list[list[str]],
    images: list[str | Path] | None = None,
    **options: Any,
) -> MetricResult:
    """Attribute precision, recall and per-category accuracy (option: attribute_vocab)."""
    if not options.get("attribute_vocab"):
        raise MetricUnavailable(
            "no attribute vocabulary configured: pass --attribute-vocab FILE "
            "(JSON or YAML mapping each category to its values, e.g. {colour: [red, blue]})"
        )
    matcher = AttributeMatcher(load_vocab(options["attribute_vocab"]))
    per_item = []
    for pred, refs in zip(predictions, references):
        stated = matcher.extract(pred)
        expected: dict[str, set[str]] = {}
        for ref in refs:
            for category, values in matcher.extract(ref).items():
                expected.setdefault(category, set()).update(values)
        per_item.append(item_scores(stated, expected))
    if not any("attr_recall" in item for item in per_item):
        raise MetricUnavailable(
            "no reference caption states a value of the attribute vocabulary "
            f"(categories: {', '.join(matcher.vocab)}): check attribute_vocab against the references"
        )
    corpus = {}
    for name in OUTPUTS:
        values = [item[name] for item in per_item if name in item]
        if values:
            corpus[name] = float(np.mean(values))
    return MetricResult(corpus, per_item, {"attributes": _describe(matcher, per_item)})


def item_scores(stated: dict[str, set[str]], expected: dict[str, set[str]]) -> dict[str, float]:
    """Precision, recall and accuracy of one caption (keys absent where undefined)."""
    pred = {(c, v) for c, values in stated.items() for v in values}
    ref = {(c, v) for c, values in expected.items() for v in values}
    out: dict[str, float] = {}
    if pred:
        out["attr_precision"] = len(pred & ref) / len(pred)
    if ref:
        out["attr_recall"] = len(pred & ref) / len(ref)
        right = [bool(stated.get(c)) and stated[c] <= values for c, values in expected.items()]
        out["attr_accuracy"] = sum(right) / len(right)
    return out


def _parse(text: str, source: str) -> Any:
    import yaml

    try:
        return json.loads(text) if source.endswith(".json") else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as err:
        raise ConfigError(f"cannot parse the attribute vocabulary {source}: {err}") from err


def _describe(matcher: AttributeMatcher, per_item: list[dict[str, float]]) -> str:
    n_values = sum(len(v) for v in matcher.vocab.values())
    no_pred = sum("attr_precision" not in it for it in per_item)
    no_ref = sum("attr_recall" not in it for it in per_item)
    return (
        f"categories={','.join(matcher.vocab)} values={n_values}; "
        f"{no_pred} of {len(per_item)} captions state no attribute (left out of attr_precision); "
        f"{no_ref} items have no reference attribute (left out of attr_recall, attr_accuracy)"
    )
