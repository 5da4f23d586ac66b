"""Clean social-media captions into captions a model should learn from.

    captune data clean posts.jsonl --config configs/data/clean-instagram.yaml --out clean.jsonl

Rules, applied in this order, each switchable in ``CleanConfig``: web addresses, swipe and
"link in bio" hints, @handles (with the "thanks to" / "by" / "and" that only glued them in),
hashtags, emoji, irregular whitespace, lower case; then captions with too few or too many words
are dropped. After a removal, punctuation left hanging (" , ", ",,", a leading comma, empty
brackets) is tidied so the text still reads. Emoji are matched by code point ranges (pictographs,
dingbats, flags, keycaps, skin tones and the joiners between them): letters with accents and
non-Latin scripts are never touched, and a zero-width joiner is only removed inside an emoji.

``clean_caption`` cleans one caption, ``clean_rows`` a dataset's rows (dropped captions become
rejects with their line), ``clean_file`` reads a dataset and writes cleaned records.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from captune.config import Schema, load_config
from captune.data.readers import Reject, Row, group_rows, read_rows
from captune.data.records import write_records
from captune.errors import ConfigError
from captune.io import rejects_path, write_jsonl


class CleanConfig(Schema):
    """Caption cleaning rules (the defaults only tidy whitespace and drop empty captions)."""

    strip_urls: bool = False
    """Remove web addresses (http://..., www...., bit.ly/...)."""
    strip_hints: bool = False
    """Remove swipe and link hints: "Swipe →", "swipe left", "➡️ swipe", "link in bio" (a swipe word
    in prose, as in "a swipe of paint" or "kids slide left and right", stays)."""
    handles: Literal["keep", "strip", "unwrap"] = "keep"
    """@handles: strip (with their "thanks to"/"by"/"and" glue), unwrap (keep the name without @) or keep."""
    hashtags: Literal["keep", "strip", "strip_trailing"] = "keep"
    """#hashtags: strip all, strip_trailing (drop trailing and leading blocks, keep the word of the others) or keep."""
    strip_emoji: bool = False
    """Remove emoji (pictographs, flags, keycaps, skin tones); accents and other scripts stay."""
    collapse_whitespace: bool = True
    """Turn runs of whitespace (including line breaks and zero-width spaces) into one space."""
    lowercase: bool = False
    """Lower-case every caption."""
    min_words: int = 1
    """Drop captions with fewer words than this (after cleaning)."""
    max_words: int | None = None
    """Drop captions with more words than this (after cleaning); empty means no limit."""


_URL = re.compile(
    r"(?i)(?<![\w@])(?:https?://|www\.)[^\s<>\"']*[^\s<>\"'.,;:!?)\]]"
    r"|\b(?:bit\.ly|linktr\.ee|t\.co|tinyurl\.com|goo\.gl)/[^\s<>\"']*[^\s<>\"'.,;:!?)\]]"
)
_ARROW = r"(?:[→➡⬅←⇒⇨►▶»➜➔➝➞⟶⤵👉👈👆⏩]\ufe0f?|-+>|>>+)"
_SWIPE = (
    r"(?:swipe\b(?:\s+(?:left|right|up|through))?|(?:slide|scroll)\s+(?:left|right|through)\b)"
    r"(?:\s+(?:for|to\s+see|to\s+view)\s+(?:more|all|the\s+rest)\b"
    r"(?:\s+(?:photos?|pics?|pictures?|images?|shots?|slides?)\b)?)?"
)
_BIO = r"(?:full\s+)?(?:link|links|details|tickets|more\s+info)\s+in\s+(?:the\s+|our\s+|my\s+)?bio\b"
_HINT = re.compile(
    rf"(?i)[(\[]?[ \t]*(?:{_ARROW}[ \t]*)*(?<!\w)(?:{_SWIPE}|{_BIO})(?:[ \t]*{_ARROW})*[ \t]*[)\]]?"
)
# a swipe word is a hint only where it stands apart from the prose ("a swipe of paint" is not one):
# with an arrow, a bracket or "for more" / "in bio", or as a clause of its own
_HINT_MARK = re.compile(rf"(?i){_ARROW}|[()\[\]]|\b(?:more|all|rest|bio)\b")
_CLAUSE_START = re.compile(r"(?:^|[.!?…:;—–|•\n]|\s-)[ \t]*$")
_CLAUSE_END = re.compile(r"[ \t]*(?:$|[.!?…,;:)\]\n—–|•])")
_HANDLE = r"(?<![\w.@])@[A-Za-z0-9_](?:[A-Za-z0-9_.]*[A-Za-z0-9_])?(?:['’]s\b)?"
_CREDIT = (
    r"(?:thanks?(?:\s+(?:you|so\s+much))?(?:\s+(?:to|for))?|shout\s*-?\s*outs?(?:\s+to)?|credits?(?:\s+to)?"
    r"|courtesy(?:\s+of)?|(?:photos?|pics?|pictures?|images?|video|shot|captured|edited|styled|taken|clicked)\s+by"
    r"|(?:photos?|pics?|ph)(?=\s*:)|pc|ft\.?|feat\.?|featuring|with|w/|by|via|and|&|x|follow|cc)"
)
_HANDLES = re.compile(
    rf"(?i)(?:[,;:\-–—][ \t]*)?(?:[📸📷🎥]\ufe0f?[ \t]*:?[ \t]*)?(?:\b{_CREDIT}[ \t]*:?[ \t]*)*"
    rf"{_HANDLE}(?:[ \t]*(?:,|&|\+|/|\band\b|\bx\b)[ \t]*{_HANDLE})*"
)
_HANDLE_ONLY = re.compile(_HANDLE.replace("(?:['’]s\\b)?", ""))
_HASHTAG = r"(?<![\w&#])#\w*[^\W\d_]\w*"
_HASHTAG_RE = re.compile(_HASHTAG)
# what may stand between the hashtags of a block: blanks and line breaks (one tag a line is common)
_TRAILING_GAP = re.compile(r"[\s.,]*")
_LEADING_GAP = re.compile(r"[\s,]*")
_EMOJI_CHAR = (
    "[\U0001f000-\U0001faff\u2600-\u27bf\u2b00-\u2bff\u231a\u231b\u2328\u23cf\u23e9-\u23f3\u23f8-\u23fa"
    "\U000e0020-\U000e007f]"
)
_EMOJI_TAIL = "[\ufe0e\ufe0f\U0001f3fb-\U0001f3ff]*"
_EMOJI = re.compile(
    rf"[0-9#*]\ufe0f?\u20e3|(?:{_EMOJI_CHAR}|\S\ufe0f){_EMOJI_TAIL}(?:\u200d(?:{_EMOJI_CHAR}|\S\ufe0f){_EMOJI_TAIL})*"
    r"\u200d?|\ufe0f"
)

_TIDY = [
    (re.compile(r"\([ \t]*\)|\[[ \t]*\]"), ""),
    (re.compile(r"[ \t]+"), " "),
    (re.compile(r"[ \t]+([,.;:!?…)\]])"), r"\1"),
    (re.compile(r"([(\[])[ \t]+"), r"\1"),
    (re.compile(r"([,;:])(?:[ \t]*[,;:])+"), r"\1"),
    (re.compile(r"[,;:][ \t]*([.!?…])"), r"\1"),
    (re.compile(r"(?<!\.)\.[ \t]*\.(?!\.)"), "."),
    (re.compile(r"^(?:[\s,;:\-–—|/•·]|[.!?…]+(?=\s))+"), ""),
    (re.compile(r"[\s,;:\-–—|/•·]+$"), ""),
    (re.compile(r"[ \t]{2,}"), " "),
]


def tidy(text: str) -> str:
    """Tidy the punctuation a removal leaves behind (spaces before commas, doubled commas, ...)."""
    for pattern, repl in _TIDY:
        text = pattern.sub(repl, text)
    return text.strip()


def _removal(pattern: re.Pattern, repl: Any = "", applies: Any = None) -> Any:
    """A rule that removes ``pattern``; ``applies(text)`` false skips the regex (a fast pre-check)."""
    def rule(text: str) -> str:
        if applies is not None and not applies(text):
            return text
        new = pattern.sub(repl, text)
        return tidy(new) if new != text else text
    return rule


def _hint(m: re.Match) -> str:
    """A space for a hint that stands apart (tidied away later); a swipe word in prose stays."""
    text, hint = m.string, m.group(0)
    apart = _HINT_MARK.search(hint) or (
        _CLAUSE_START.search(text, 0, m.start()) and _CLAUSE_END.match(text, m.end()))
    return " " if apart else hint


def _contains(*needles: str):
    return lambda text: any(n in text.lower() for n in needles)


def _hashtags(mode: str):
    def rule(text: str) -> str:
        tags = list(_HASHTAG_RE.finditer(text)) if "#" in text else []
        if not tags:
            return text
        lo, hi = _hashtag_blocks(text, tags) if mode == "strip_trailing" else (0, len(text))
        parts, pos = [], lo
        for m in (m for m in tags if lo <= m.start() and m.end() <= hi):
            parts.append(text[pos : m.start()] + ("" if mode == "strip" else m.group(0)[1:]))
            pos = m.end()
        new = "".join(parts) + text[pos:hi] if lo < hi else ""
        return tidy(new) if new != text else text
    return rule


def _hashtag_blocks(text: str, tags: list[re.Match]) -> tuple[int, int]:
    """``(lo, hi)``: the text between a leading block of two or more hashtags and the trailing block."""
    hi = len(text)
    for m in reversed(tags):
        if not _TRAILING_GAP.fullmatch(text, m.end(), hi):
            break
        hi = m.start()
    lo, leading = 0, 0
    for m in tags:
        if not _LEADING_GAP.fullmatch(text, lo, m.start()):
            break
        lo, leading = m.end(), leading + 1
    return (lo if leading >= 2 else 0), hi


def _whitespace(text: str) -> str:
    return " ".join(text.replace("\u200b", " ").replace("\ufeff", " ").split())


def rules_for(cfg: CleanConfig) -> list[tuple[str, Any]]:
    """The enabled rules as ``(name, function)`` in the order they run."""
    rules = [
        ("urls", cfg.strip_urls, _removal(_URL, applies=_contains("http", "www.", "/"))),
        ("hints", cfg.strip_hints, _removal(_HINT, _hint, applies=_contains("swipe", "slide", "scroll", "bio"))),
        ("handles", cfg.handles == "strip", _removal(_HANDLES, applies=_contains("@"))),
        ("handles", cfg.handles == "unwrap", _removal(_HANDLE_ONLY, lambda m: m.group(0)[1:], _contains("@"))),
        ("hashtags", cfg.hashtags != "keep", _hashtags(cfg.hashtags)),
        ("emoji", cfg.strip_emoji, _removal(_EMOJI, " ", lambda text: not text.isascii())),  # " ": "Sun☀️Sea"
        ("whitespace", cfg.collapse_whitespace, _whitespace),
        ("lowercase", cfg.lowercase, str.lower),
    ]
    return [(name, fn) for name, on, fn in rules if on]


@dataclass
class CleanReport:
    """What cleaning did: captions seen and kept, changes per rule, drops per reason, and for each
    rule a few ``[before, after]`` pairs of the text that rule received and returned."""

    captions: int = 0
    kept: int = 0
    changed: Counter = field(default_factory=Counter)
    dropped: Counter = field(default_factory=Counter)
    examples: dict[str, list[list[str]]] = field(default_factory=dict)
    max_examples: int = 3

    def note(self, rule: str, before: str, after: str) -> None:
        self.changed[rule] += 1
        shown = self.examples.setdefault(rule, [])
        if len(shown) < self.max_examples:
            shown.append([before, after])

    def to_json(self) -> dict[str, Any]:
        return {
            "captions": self.captions,
            "kept": self.kept,
            "changed": dict(self.changed),
            "dropped": dict(self.dropped),
            "examples": self.examples,
        }


def clean_caption(text: str, cfg: CleanConfig, report: CleanReport | None = None) -> tuple[str, str | None]:
    """Clean one caption; returns ``(cleaned, drop_reason)`` where ``drop_reason`` is None if kept."""
    for name, rule in rules_for(cfg):
        new = rule(text)
        if new != text and report is not None:
            report.note(name, text, new)
        text = new
    return text, drop_reason(text, cfg)


def drop_reason(text: str, cfg: CleanConfig) -> str | None:
    words = len(text.split())
    if words == 0:
        return "empty_after_cleaning"
    if words < cfg.min_words:
        return "too_few_words"
    if cfg.max_words is not None and words > cfg.max_words:
        return "too_many_words"
    return None


def clean_rows(rows: list[Row], cfg: CleanConfig) -> tuple[list[Row], list[Reject], CleanReport]:
    """Clean every caption of every row; a dropped caption becomes a ``Reject`` with its row's line.

    A row whose captions are all dropped is gone; rows that never had captions (an image folder
    listed for captioning) pass through.
    """
    report, kept, rejects = CleanReport(), [], []
    for row in rows:
        captions = []
        for caption in row.captions:
            report.captions += 1
            cleaned, reason = clean_caption(caption, cfg, report)
            if reason is None:
                captions.append(cleaned)
                continue
            report.dropped[reason] += 1
            detail = f"{row.item}: " if row.item else ""
            rejects.append(Reject(row.source, row.line, reason, f"{detail}{caption!r} -> {cleaned!r}", row.image))
        report.kept += len(captions)
        if captions or not row.captions:
            row.captions = captions
            kept.append(row)
    return kept, rejects, report


def load_clean_config(config: CleanConfig | str | os.PathLike | None = None, rules: dict | None = None) -> CleanConfig:
    """A ``CleanConfig`` from an object, a YAML file or the defaults, with ``rules`` set on top."""
    if isinstance(config, CleanConfig):
        base = config.model_dump()
    else:
        base = load_config(CleanConfig, config).model_dump() if config is not None else {}
    given = {k: v for k, v in (rules or {}).items() if v is not None}
    try:
        return CleanConfig.model_validate({**base, **given})
    except ValueError as e:
        raise ConfigError(f"cleaning rules: {e}") from None


@dataclass
class CleanResult:
    rows: int
    records: int
    rejects: list[Reject]
    report: CleanReport
    out: Path
    rejects_path: Path

    def to_json(self) -> dict[str, Any]:
        reasons = Counter(r.reason for r in self.rejects)
        return {
            "rows": self.rows,
            "records": self.records,
            "rejected": len(self.rejects),
            "reasons": dict(reasons),
            **self.report.to_json(),
            "out": str(self.out),
            "rejects": str(self.rejects_path),
        }


def clean_file(
    input: str | os.PathLike,
    out: str | os.PathLike,
    config: CleanConfig | str | os.PathLike | None = None,
    rules: dict | None = None,
    format: str | None = None,
    image_root: str | os.PathLike | None = None,
    **reader_options: Any,
) -> CleanResult:
    """Read a dataset, clean its captions and write records to ``out`` (JSONL).

    Rows that cannot be read and dropped captions go to ``OUT.rejects.jsonl`` (written every
    time, empty when nothing was rejected, so an old one never lingers).
    """
    cfg = load_clean_config(config, rules)
    rows, rejects, _ = read_rows(input, format, image_root, **reader_options)
    n_rows = len(rows) + len(rejects)
    rows, drops, report = clean_rows(rows, cfg)
    records, conflicts = group_rows(rows)
    rejects = rejects + drops + conflicts
    out = Path(out)
    write_records(out, records)
    rejected = rejects_path(out)
    write_jsonl(rejected, (r.to_json() for r in rejects))
    return CleanResult(n_rows, len(records), rejects, report, out, rejected)
