"""Number formatting and the plain-text comparison table (``captune compare``)."""

from __future__ import annotations

from typing import Any

METRIC_HELP = {
    "bleu_1": "BLEU-1: share of the caption's words found in a reference (clipped), with a brevity penalty.",
    "bleu_2": "BLEU-2: like BLEU-1 over words and word pairs (geometric mean).",
    "bleu_3": "BLEU-3: like BLEU-2, up to three-word phrases.",
    "bleu_4": "BLEU-4: matching phrases of up to four words with the references; the standard caption BLEU.",
    "meteor": "METEOR: word matches with stems and synonyms, weighted towards recall, penalising word order.",
    "rouge_l": "ROUGE-L: longest common word subsequence with the references (F-measure, beta 1.2).",
    "cider": "CIDEr-D: agreement with the references on phrases weighted by how rare they are (x10).",
    "spice": "SPICE: agreement of objects, attributes and relations parsed from caption and references.",
    "clipscore": "CLIPScore: how well the caption matches the image itself, by a CLIP model (no references).",
    "refclipscore": "RefCLIPScore: CLIPScore combined with similarity to the references.",
    "clip_win_rate": "CLIP win rate: share of images where CLIP prefers the caption to the best reference.",
    "bertscore_f1": "BERTScore F1: token-by-token semantic similarity to the closest reference.",
    "bertscore_p": "BERTScore precision: how much of the caption is supported by a reference.",
    "bertscore_r": "BERTScore recall: how much of the closest reference the caption covers.",
    "sentence_cosine": "Sentence cosine: sentence-embedding similarity to the closest reference.",
    "attr_precision": "Attribute precision: share of the attributes the caption states that the references state.",
    "attr_recall": "Attribute recall: share of the references' attributes the caption states.",
    "attr_accuracy": "Attribute accuracy: per category, whether the caption's values match the references.",
    "distinct_1": "Distinct-1: different words / all words over the captions (higher: more varied).",
    "distinct_2": "Distinct-2: different word pairs / all word pairs (higher: more varied).",
    "self_bleu": "Self-BLEU: BLEU of each caption against the others (lower: captions differ more).",
    "vocab_size": "Vocabulary: number of different words used in all captions.",
    "mean_length": "Mean length: words per caption.",
    "val_loss": "Validation loss: cross-entropy of the reference captions (lower is better).",
}

LABELS = {
    "bleu_1": "BLEU-1",
    "bleu_2": "BLEU-2",
    "bleu_3": "BLEU-3",
    "bleu_4": "BLEU-4",
    "meteor": "METEOR",
    "rouge_l": "ROUGE-L",
    "cider": "CIDEr",
    "spice": "SPICE",
    "clipscore": "CLIPScore",
    "refclipscore": "RefCLIPScore",
    "clip_win_rate": "CLIP win rate",
    "bertscore_f1": "BERTScore F1",
    "bertscore_p": "BERTScore P",
    "bertscore_r": "BERTScore R",
    "sentence_cosine": "Sentence cosine",
    "attr_precision": "Attribute precision",
    "attr_recall": "Attribute recall",
    "attr_accuracy": "Attribute accuracy",
    "distinct_1": "Distinct-1",
    "distinct_2": "Distinct-2",
    "self_bleu": "Self-BLEU",
    "vocab_size": "Vocabulary",
    "mean_length": "Mean length",
    "val_loss": "Validation loss",
}


def label(metric: str) -> str:
    return LABELS.get(metric, metric)


def num(value: float | None, digits: int = 4) -> str:
    """A value for a table: counts as integers, noise-level values (BLEU's 1e-18 when nothing
    matches) as 0, small ones in scientific notation."""
    if value is None:
        return "–"
    if isinstance(value, int) or abs(value) >= 1000 or (abs(value) >= 2 and float(value).is_integer()):
        return f"{value:,.0f}"
    if abs(value) < 1e-9:
        return f"{0:.{digits}f}"
    if abs(value) < 10**-digits:
        return f"{value:.1e}"
    return f"{value:,.{digits}f}"


def signed(value: float | None, digits: int = 4) -> str:
    if value is None:
        return "–"
    text = num(abs(value), digits)
    if not any(ch in "123456789" for ch in text.split("e")[0]):  # shows as zero
        return "±" + text
    return ("+" if value > 0 else "−") + text


def percent(row: dict[str, Any]) -> str:
    if row.get("rel_delta") is None:
        return "n/a (A ≈ 0)" if "near_zero_baseline" in row.get("flags", []) else "–"
    return f"{'+' if row['rel_delta'] >= 0 else '−'}{abs(row['rel_delta']):.1f}%"


def interval(row: dict[str, Any], digits: int = 4) -> str:
    if row.get("ci_low") is None:
        return "no interval"
    return f"[{signed(row['ci_low'], digits)}, {signed(row['ci_high'], digits)}]"


def p_value(p: float | None) -> str:
    if p is None:
        return "–"
    return f"{p:.3f}" if p >= 0.001 else "<0.001"


def verdict(row: dict[str, Any]) -> str:
    """ "better", "worse", "no clear difference" or "" (no interval) from B's point of view."""
    if row.get("significant") is None:
        return ""
    if not row["significant"]:
        return "no clear difference"
    if row.get("better") is None:
        return "higher" if row["delta"] > 0 else "lower"
    up = row["delta"] > 0
    return "better" if up == (row["better"] == "higher") else "worse"


def format_comparison(pair: dict[str, Any]) -> str:
    """A plain-text table: metric, A, B, delta, relative, interval, p, verdict."""
    head = (
        f"A = {pair['a']['name']} ({pair['a']['dir']}), B = {pair['b']['name']} ({pair['b']['dir']}), "
        f"{pair['images']} images, {pair['resamples']} resamples"
    )
    cols = ["metric", "A", "B", "B - A", "relative", "95% interval", "p", ""]
    rows = [
        [
            label(m) + (" †" if "per_image_mean" in r["flags"] else ""),
            num(r["a"]),
            num(r["b"]),
            signed(r["delta"]),
            percent(r),
            interval(r),
            p_value(r["p_value"]),
            verdict(r),
        ]
        for m, r in pair["metrics"].items()
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(cols, *rows)]
    lines = [head, "  ".join(c.ljust(w) for c, w in zip(cols, widths))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in rows]
    lines.append("interval: " + pair["interval"] + "; p: " + pair["test"])
    if pair.get("per_image_mean"):
        lines.append("†: compared as the mean of per-image scores (its corpus value is aggregated otherwise)")
    return "\n".join(lines)
