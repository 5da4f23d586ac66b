"""Instagram's limits: every break is reported, and fit_caption enforces the text limits with notes."""

from __future__ import annotations

import random

import pytest

from captune.agent.limits import (
    HASHTAG,
    MAX_CAPTION_CHARS,
    MENTION,
    check_post,
    fit_caption,
    posted_text,
)

GOOD = {"width": 1080, "height": 1350, "bytes": 400_000, "format": "JPEG"}


def tags(n: int, prefix: str = "tag") -> list[str]:
    return [f"#{prefix}{i}" for i in range(n)]


def test_a_post_within_every_limit_has_no_problems():
    assert check_post("Highlights from Spring Fair.", tags(30), [GOOD] * 10) == []
    assert check_post("One photo.", [], [GOOD]) == []


def test_31_hashtags_are_flagged_counting_those_in_the_caption():
    assert check_post("x", tags(31), [GOOD]) == ["31 hashtags (Instagram allows 30)"]
    assert check_post("Fun at #fair", tags(30), [GOOD]) == ["31 hashtags (Instagram allows 30)"]


def test_2201_characters_are_flagged_counting_the_hashtags_as_posted():
    assert check_post("a" * 2200, [], [GOOD]) == []
    assert check_post("a" * 2201, [], [GOOD]) == ["caption with hashtags is 2,201 characters (Instagram allows 2,200)"]
    # 2,190 + blank line (2) + "#abcdefghi" (10) = 2,202
    assert len(posted_text("a" * 2190, ["#abcdefghi"])) == 2202
    assert check_post("a" * 2190, ["#abcdefghi"], [GOOD])[0].startswith("caption with hashtags is 2,202")


def test_21_mentions_are_flagged():
    caption = " ".join(f"@user{i}" for i in range(21))
    assert check_post(caption, [], [GOOD]) == ["21 @mentions (Instagram allows 20)"]
    assert check_post(caption.rsplit(" ", 1)[0], [], [GOOD]) == []
    assert check_post("write to club@example.org", [], [GOOD]) == []  # an e-mail address is no mention


@pytest.mark.parametrize("n, problem", [(0, "no images (a post needs 1, a carousel 2-10)"),
                                        (11, "11 images (a carousel holds 2-10)")])
def test_image_counts_outside_1_to_10_are_flagged(n, problem):
    assert check_post("x", [], [GOOD] * n) == [problem]


def test_each_image_is_checked():
    images = [GOOD, {**GOOD, "format": "PNG"}, {**GOOD, "bytes": 9_000_000}, {"width": 1000, "height": 2000,
              "bytes": 1, "format": "JPEG"}, {"width": 1500, "height": 1000, "bytes": 1, "format": "JPEG"},
              {"width": 300, "height": 300, "bytes": 1, "format": "JPEG"}]
    assert check_post("x", [], images) == [
        "image 2: format PNG (Instagram takes JPEG)",
        "image 3: 9,000,000 bytes (Instagram allows 8,388,608)",
        "image 4: aspect 0.50:1 (1000x2000) outside 0.8:1 to 1.91:1",
        "image 5: width 1500 px outside 320-1440",
        "image 6: width 300 px outside 320-1440",
    ]


def test_a_hashtag_that_is_not_one_word_is_flagged():
    assert check_post("x", ["#two words"], [GOOD]) == ["hashtag '#two words' is not a single #word"]


def test_hashtags_in_scripts_with_combining_marks_are_single_words():
    """Devanagari and Thai words carry vowel signs (Unicode marks), which Python's \\w leaves out."""
    for tag in ("#नमस्ते", "#ดอกไม้", "#café", "#東京"):
        assert check_post("x", [tag], [GOOD]) == [], tag
        assert HASHTAG.findall(f"Fair {tag} night") == [tag]
    assert len(HASHTAG.findall(" ".join(["#नमस्ते"] * 31))) == 31


def test_fit_caption_dedupes_case_insensitively_and_caps_hashtags():
    raw = ["#Fair", "#fair", "#Night", "#FAIR"] + tags(40)
    text, kept, notes = fit_caption("Hello.", raw, max_hashtags=50)
    assert text == "Hello."
    assert kept == ["#Fair", "#Night"] + tags(28)
    assert notes == ["dropped 2 duplicate hashtag(s)",
                     "kept 30 of 42 hashtags (at most 30 here; Instagram allows 30 with those in the caption)"]
    assert fit_caption("Hello.", raw, max_hashtags=15)[1] == ["#Fair", "#Night"] + tags(13)
    # hashtags in the caption count against the 30
    assert len(fit_caption("#a #b #c #d #e", tags(30), 30)[1]) == 25


def test_fit_caption_trims_at_a_word_boundary_with_an_ellipsis():
    words = [f"word{i}" for i in range(600)]
    caption = " ".join(words)  # 4,089 characters
    text, kept, notes = fit_caption(caption, tags(10), 15)
    assert kept == tags(10)
    posted = posted_text(text, kept)
    assert len(posted) <= MAX_CAPTION_CHARS and len(posted) > MAX_CAPTION_CHARS - 10
    assert text.endswith("…") and caption.startswith(text[:-1]) and caption[len(text) - 1] == " "
    assert len(notes) == 1 and notes[0].startswith(f"trimmed the caption from {len(caption):,} to {len(text):,}")


def test_fit_caption_removes_mentions_past_the_20th():
    caption = " ".join(f"@user{i}" for i in range(25))
    text, _, notes = fit_caption(caption, [], 15)
    assert len(MENTION.findall(text)) == 20 and "user24" in text
    assert notes == ["removed the @ of 5 @mention(s) past Instagram's 20"]


def test_fit_caption_changes_nothing_silently_and_nothing_that_fits():
    assert fit_caption("Moments from the fair.", ["#A", "#B"], 15) == ("Moments from the fair.", ["#A", "#B"], [])


def test_fit_caption_output_never_breaks_the_text_limits():
    rng = random.Random(0)
    pool = [f"#t{i}" for i in range(60)] + [f"#{'x' * rng.randint(1, 120)}" for _ in range(20)]
    for _ in range(200):
        caption = " ".join(rng.choice(["word", "@who", "#hash", "a" * rng.randint(1, 300), "é"])
                           for _ in range(rng.randint(0, 400)))
        raw = [rng.choice(pool) for _ in range(rng.randint(0, 80))]
        text, kept, notes = fit_caption(caption, raw, rng.randint(0, 30))
        assert [p for p in check_post(text, kept, [GOOD]) if "image" not in p] == []
        assert (text, kept) == (caption, raw) or notes  # every change is reported
        assert len(HASHTAG.findall(posted_text(text, kept))) <= 30
