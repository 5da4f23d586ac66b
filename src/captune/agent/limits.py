"""Instagram's limits on a post, checked (``check_post``) and enforced on captions (``fit_caption``).

    text, hashtags, notes = fit_caption(caption, hashtags, max_hashtags=15)
    problems = check_post(text, hashtags, [{"width": 1080, "height": 1350, "bytes": 412_000, "format": "JPEG"}])

What is counted is the text that would be posted (``posted_text``): the caption, a blank line,
then the hashtags separated by spaces. Characters are Unicode code points (``len``). Hashtags
are counted over that whole text, so a ``#word`` inside the caption counts too; @mentions
likewise. The limits are those of the Instagram Graph API's content publishing documentation.
"""

from __future__ import annotations

import re

import regex

MAX_CAPTION_CHARS = 2200
MAX_HASHTAGS = 30
MAX_MENTIONS = 20
MIN_CAROUSEL, MAX_CAROUSEL = 2, 10
"""A post of one image is a single-image post; 2 to 10 make a carousel."""
MAX_IMAGE_BYTES = 8 * 1024 * 1024
MIN_ASPECT, MAX_ASPECT = 0.8, 1.91
"""Width:height from 4:5 to 1.91:1."""
MIN_WIDTH, MAX_WIDTH = 320, 1440
FORMATS = ("JPEG",)
ELLIPSIS = "…"

HASHTAG = regex.compile(r"(?<![\w#&])#[\w\p{M}]+")
"""A #word: letters, digits, _ and marks (the vowel signs of Devanagari or Thai, which ``re``'s \\w leaves out)."""
MENTION = re.compile(r"(?<![\w@])@[\w.]+")
_SEPARATOR = "\n\n"


def posted_text(caption: str, hashtags: list[str]) -> str:
    """The text that would be posted: the caption, a blank line, the hashtags (what ``caption.txt`` holds)."""
    tags = " ".join(hashtags)
    if not tags:
        return caption
    return f"{caption}{_SEPARATOR}{tags}" if caption else tags


def check_post(caption: str, hashtags: list[str], images: list[dict]) -> list[str]:
    """Every Instagram limit the post breaks, one sentence each (empty: ready to publish).

    ``images`` are ``{"width", "height", "bytes", "format"}`` of the files to be posted.
    """
    problems = text_problems(posted_text(caption, hashtags))
    problems += [f"hashtag {t!r} is not a single #word" for t in hashtags if not HASHTAG.fullmatch(t)]
    if not images:
        problems.append("no images (a post needs 1, a carousel 2-10)")
    elif len(images) > MAX_CAROUSEL:
        problems.append(f"{len(images)} images (a carousel holds {MIN_CAROUSEL}-{MAX_CAROUSEL})")
    for i, image in enumerate(images, 1):
        problems += [f"image {i}: {p}" for p in _image_problems(image)]
    return problems


def text_problems(text: str) -> list[str]:
    """The limits the text to be posted (caption and hashtags, as ``caption.txt`` holds it) breaks."""
    problems = []
    if len(text) > MAX_CAPTION_CHARS:
        problems.append(f"caption with hashtags is {len(text):,} characters (Instagram allows {MAX_CAPTION_CHARS:,})")
    n_tags, n_mentions = len(HASHTAG.findall(text)), len(MENTION.findall(text))
    if n_tags > MAX_HASHTAGS:
        problems.append(f"{n_tags} hashtags (Instagram allows {MAX_HASHTAGS})")
    if n_mentions > MAX_MENTIONS:
        problems.append(f"{n_mentions} @mentions (Instagram allows {MAX_MENTIONS})")
    return problems


def _image_problems(image: dict) -> list[str]:
    w, h, size, fmt = image["width"], image["height"], image["bytes"], image["format"]
    out = []
    if fmt not in FORMATS:
        out.append(f"format {fmt} (Instagram takes JPEG)")
    if size > MAX_IMAGE_BYTES:
        out.append(f"{size:,} bytes (Instagram allows {MAX_IMAGE_BYTES:,})")
    if not MIN_ASPECT <= w / h <= MAX_ASPECT:
        out.append(f"aspect {w / h:.2f}:1 ({w}x{h}) outside {MIN_ASPECT}:1 to {MAX_ASPECT}:1")
    if not MIN_WIDTH <= w <= MAX_WIDTH:
        out.append(f"width {w} px outside {MIN_WIDTH}-{MAX_WIDTH}")
    return out


def fit_caption(caption: str, hashtags: list[str], max_hashtags: int = MAX_HASHTAGS) -> tuple[str, list[str], list[str]]:
    """``(caption, hashtags, notes)`` within the text limits, and a note for everything changed.

    Hashtags are deduplicated case-insensitively (first spelling kept) and capped at
    ``min(max_hashtags, 30 - hashtags already in the caption)``; @mentions past the 20th lose
    their ``@``; a caption that would make the posted text longer than 2,200 characters is cut
    at a word boundary and ends with "…" (hashtags are dropped from the end first only when they
    alone leave no room for the caption).
    """
    notes: list[str] = []
    tags = _dedupe(hashtags, notes)
    caption = _cap_mentions(caption, notes)
    tags = _cap_hashtags(tags, min(max_hashtags, MAX_HASHTAGS - len(HASHTAG.findall(caption))), notes)
    tags = _room_for_caption(caption, tags, notes)
    return _trim(caption, tags, notes), tags, notes


def _dedupe(hashtags: list[str], notes: list[str]) -> list[str]:
    seen: dict[str, str] = {}
    for tag in hashtags:
        seen.setdefault(tag.casefold(), tag)
    kept = list(seen.values())
    if len(kept) < len(hashtags):
        notes.append(f"dropped {len(hashtags) - len(kept)} duplicate hashtag(s)")
    return kept


def _cap_mentions(caption: str, notes: list[str]) -> str:
    mentions = list(MENTION.finditer(caption))
    if len(mentions) <= MAX_MENTIONS:
        return caption
    for m in reversed(mentions[MAX_MENTIONS:]):
        caption = caption[:m.start()] + caption[m.start() + 1:]
    notes.append(f"removed the @ of {len(mentions) - MAX_MENTIONS} @mention(s) past Instagram's {MAX_MENTIONS}")
    return caption


def _cap_hashtags(tags: list[str], cap: int, notes: list[str]) -> list[str]:
    cap = max(cap, 0)
    if len(tags) > cap:
        notes.append(f"kept {cap} of {len(tags)} hashtags (at most {cap} here; Instagram allows {MAX_HASHTAGS} "
                     "with those in the caption)")
    return tags[:cap]


def _room_for_caption(caption: str, tags: list[str], notes: list[str]) -> list[str]:
    """Drop hashtags from the end until they leave room for the caption's first word and "…"."""
    first_word = len(caption.split(maxsplit=1)[0]) + len(ELLIPSIS) if caption.strip() else 0
    kept = list(tags)
    while kept and len(posted_text(caption[:first_word], kept)) > MAX_CAPTION_CHARS:
        kept.pop()
    if len(kept) < len(tags):
        notes.append(f"dropped {len(tags) - len(kept)} hashtag(s) to keep the text within {MAX_CAPTION_CHARS:,} "
                     "characters")
    return kept


def _trim(caption: str, tags: list[str], notes: list[str]) -> str:
    total = len(posted_text(caption, tags))
    if total <= MAX_CAPTION_CHARS:
        return caption
    budget = MAX_CAPTION_CHARS - (total - len(caption)) - len(ELLIPSIS)
    cut = caption[:budget + 1]
    space = cut.rfind(" ")
    cut = cut[:space] if space > 0 else caption[:budget]
    text = cut.rstrip(" ,;:-—") + ELLIPSIS
    notes.append(f"trimmed the caption from {len(caption):,} to {len(text):,} characters at a word boundary "
                 f"(with hashtags it was {total:,}; Instagram allows {MAX_CAPTION_CHARS:,})")
    return text
