"""Error analysis: what is wrong with each generated caption, counted over a test set.

    from captune.evaluate.error_analysis import analyze_errors
    analysis = analyze_errors(captions, references, images, clip_model="openai/clip-vit-base-patch32")
    analysis.counts          # {"omission": 41, "unsupported": 17, ...}
    analysis.per_image[0]    # {"omission": ["square"], "unsupported": ["star"]}

Flags (``FLAGS`` has the one-line explanations shown in reports). Words are compared in lower
case, reduced to a singular form; content words are words that are not English stop words.
References use some words to describe the image and others for style ("Moments from ...",
"a picture of ..."). ``reference_agreement`` tells them apart over the whole set: where an
image's references use a descriptive word, most of them do (every reference of an image with a
red circle says "red"); a style word is used by a few references of many images. Only
descriptive reference words (agreement above ``AGREEMENT``, one half) raise omissions or make a
caption's word unsupported.

- ``repetition``: a word twice in a row, or a three-word phrase used twice.
- ``omission``: a descriptive word used by at least three quarters of the image's references
  (``OMISSION_SHARE``; four of five) is missing.
- ``unsupported``: a content word that none of the image's references uses, and that is either
  descriptive in other images' references or in no reference of the set at all.
- ``hallucination`` (needs a CLIP model): an unsupported word that CLIP also rates as weakly
  present: its image similarity ("a photo of {word}") is below the median similarity of the
  references' content words for the same image.
- ``too_short`` / ``too_long``: fewer words than the 5th percentile, or more than the 95th
  percentile, of all reference captions' lengths in the set.
- ``handle``, ``hashtag``, ``url``: a leaked @handle, #hashtag or link (the patterns the
  caption clean-up removes).
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from captune.data.clean import _HANDLE_ONLY, _HASHTAG_RE, _URL  # the patterns clean-up removes
from captune.metrics.attributes import singular

FLAGS = {
    "repetition": "repeats a word or a three-word phrase",
    "omission": "misses a descriptive word that three quarters of the references use",
    "unsupported": "uses a content word that no reference uses",
    "hallucination": "an unsupported word that CLIP also finds weakly present in the image",
    "too_short": "shorter than 95% of the reference captions",
    "too_long": "longer than 95% of the reference captions",
    "handle": "contains an @handle",
    "hashtag": "contains a #hashtag",
    "url": "contains a link",
}
NAMES = {
    "repetition": "repeated words or phrases",
    "omission": "missing key content words",
    "unsupported": "words no reference uses",
    "hallucination": "words CLIP does not see in the image",
    "too_short": "too few words",
    "too_long": "too many words",
    "handle": "leaked @handles",
    "hashtag": "leaked #hashtags",
    "url": "leaked links",
}
"""Each flag as a noun phrase ("captions with ...")."""
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
AGREEMENT = 0.5
"""A reference word describes the image when its ``reference_agreement`` is above this."""
OMISSION_SHARE = 0.75
"""An omission is a descriptive word that at least this share of the image's references uses."""


@dataclass
class ErrorAnalysis:
    per_image: list[dict[str, list[str]]]
    """Per caption: flag -> evidence (the words or phrases that raised it)."""
    counts: dict[str, int]
    """Captions carrying each flag (every flag listed, 0 included, in ``FLAGS`` order)."""
    length_range: tuple[float, float]
    """Reference lengths (words) at the 5th and 95th percentiles."""
    checked: list[str] = field(default_factory=list)
    """Flags that were checked (hallucination only with a CLIP model)."""

    def to_json(self) -> dict[str, Any]:
        n = len(self.per_image)
        return {
            "counts": self.counts,
            "shares": {k: (v / n if n else 0.0) for k, v in self.counts.items()},
            "checked": self.checked,
            "length_range": list(self.length_range),
            "clean": sum(1 for f in self.per_image if not f),
            "images": n,
        }


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def content_words(text: str) -> list[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return [singular(w) for w in words(text) if w not in ENGLISH_STOP_WORDS and not w.isdigit()]


def repetitions(text: str) -> list[str]:
    ws = words(text)
    found = [f"{a} {b}" for a, b in itertools.pairwise(ws) if a == b]
    trigrams = Counter(zip(ws, ws[1:], ws[2:]))
    found += [" ".join(g) for g, c in trigrams.items() if c > 1]
    return list(dict.fromkeys(found))


def leaks(text: str) -> dict[str, list[str]]:
    found = {
        "handle": _HANDLE_ONLY.findall(text),
        "hashtag": _HASHTAG_RE.findall(text),
        "url": [m.group(0) for m in _URL.finditer(text)],
    }
    return {k: v for k, v in found.items() if v}


def caption_flags(
    caption: str,
    references: Sequence[str],
    length_range: tuple[float, float],
    agreement: dict[str, float] | None = None,
) -> dict[str, list[str]]:
    """Flags of one caption against its references (everything but ``hallucination``).

    ``agreement`` is ``reference_agreement`` over the whole set (default: over these references).
    """
    flags: dict[str, list[str]] = {}
    if rep := repetitions(caption):
        flags["repetition"] = rep
    agreement = reference_agreement([references]) if agreement is None else agreement
    mine = set(content_words(caption))
    ref_sets = [set(content_words(r)) for r in references]
    if ref_sets:
        share = Counter(w for s in ref_sets for w in s)
        agreed = {w for w, a in agreement.items() if a > AGREEMENT}
        most = sorted(w for w, c in share.items() if c >= OMISSION_SHARE * len(ref_sets) and w in agreed)
        if missing := [w for w in most if w not in mine]:
            flags["omission"] = missing
        if extra := sorted(w for w in mine - set(share) if w in agreed or w not in agreement):
            flags["unsupported"] = extra
    n = len(words(caption))
    if n < length_range[0]:
        flags["too_short"] = [f"{n} words"]
    elif n > length_range[1]:
        flags["too_long"] = [f"{n} words"]
    return flags | leaks(caption)


def reference_agreement(references: Sequence[Sequence[str]]) -> dict[str, float]:
    """Per content word of the references: over the images whose references use it, the mean
    share of the image's references that do.

    Words that describe the image score high: where the image has a red circle, every reference
    says "red". Words of style ("moments", "picture of") are used at random and score low. A
    list of references given twice counts once.
    """
    shares: dict[str, list[float]] = {}
    for refs in {tuple(r): r for r in references}.values():  # an image listed twice counts once
        sets = [set(content_words(r)) for r in refs]
        for w, c in Counter(w for s in sets for w in s).items():
            shares.setdefault(w, []).append(c / len(sets))
    return {w: float(np.mean(v)) for w, v in shares.items()}


def reference_length_range(references: Sequence[Sequence[str]]) -> tuple[float, float]:
    lengths = [len(words(r)) for refs in references for r in refs]
    if not lengths:
        return (0.0, float("inf"))
    low, high = np.percentile(lengths, [5, 95])
    return float(low), float(high)


def analyze_errors(
    captions: Sequence[str],
    references: Sequence[Sequence[str]],
    images: Sequence[str] | None = None,
    clip_model: str | None = None,
    **clip_options: Any,
) -> ErrorAnalysis:
    """Flag every caption; with ``images`` and ``clip_model``, also check unsupported words with CLIP."""
    span = reference_length_range(references)
    agreement = reference_agreement(references)
    per_image = [caption_flags(c, r, span, agreement) for c, r in zip(captions, references)]
    checked = [f for f in FLAGS if f != "hallucination"]
    if clip_model and images is not None:
        _clip_check(per_image, references, images, clip_model, **clip_options)
        checked.append("hallucination")
    counts = {f: sum(1 for flags in per_image if f in flags) for f in FLAGS if f in checked}
    return ErrorAnalysis(per_image, counts, span, checked)


def _clip_check(per_image, references, images, clip_model, **options) -> None:
    from captune.metrics import MetricResources

    with MetricResources() as own:  # one CLIP model for every image (the caller's, when given)
        options.setdefault("resources", own)
        for i, flags in enumerate(per_image):
            _clip_flag(flags, references[i], images[i], clip_model, options)


def _clip_flag(flags: dict, references: Sequence[str], image, clip_model, options: dict) -> None:
    """Mark as hallucinated the unsupported words CLIP finds less in the image than the references' words."""
    from captune.metrics.clipscore import clip_similarity

    extra = flags.get("unsupported")
    ref_words = sorted({w for r in references for w in content_words(r)})
    if not extra or not ref_words:
        return
    sims = clip_similarity([image], [f"a photo of {w}" for w in extra + ref_words], clip_model, **options)[0]
    bar = float(np.median(sims[len(extra) :]))
    weak = [w for w, s in zip(extra, sims[: len(extra)]) if s < bar]
    if weak:
        flags["hallucination"] = weak


def extremes(values: Sequence[float | None], k: int = 3) -> dict[str, list[int]]:
    """Indices of the ``k`` lowest and highest values (None left out): ``{"worst", "best"}``."""
    scored = [(v, i) for i, v in enumerate(values) if v is not None]
    ordered = [i for _, i in sorted(scored)]
    return {"worst": ordered[:k], "best": ordered[::-1][:k]}


def sample_ids(image_ids: Sequence[str], k: int, seed: int = 0) -> list[str]:
    """A fixed random sample of ``k`` image ids: the same ids, seed and k give the same sample,
    whatever the order the ids come in."""
    ordered = sorted(set(image_ids))
    rng = np.random.default_rng(seed)
    return [ordered[i] for i in sorted(rng.choice(len(ordered), size=min(k, len(ordered)), replace=False))]
