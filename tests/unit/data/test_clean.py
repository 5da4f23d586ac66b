import json
from pathlib import Path

import pytest

from captune.config import load_config
from captune.data.clean import CleanConfig, clean_caption, clean_file, tidy
from captune.errors import ConfigError

INSTAGRAM = Path(__file__).parents[3] / "configs" / "data" / "clean-instagram.yaml"
ALL = CleanConfig(strip_urls=True, strip_hints=True, handles="strip", hashtags="strip_trailing", strip_emoji=True)


def clean(text, cfg=ALL):
    return clean_caption(text, cfg)[0]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Highlights from IITG Orientation — stage vibes & cheering crowd. Swipe →",
         "Highlights from IITG Orientation — stage vibes & cheering crowd."),
        ("➡️ swipe for more photos! Golden hour at the ghats", "Golden hour at the ghats"),
        ("Sunset over the lake (swipe left)", "Sunset over the lake"),
        ("Swipe right to see more → Dancers on stage", "Dancers on stage"),
        ("Tickets: link in bio 👆", "Tickets"),
        ("A kid goes down the slide", "A kid goes down the slide"),
    ],
)
def test_hints(text, expected):
    assert clean(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Great shoot today, thanks to @ana and @bo!", "Great shoot today!"),
        ("Dinner with @ana and @bo at the lake", "Dinner at the lake"),
        ("📸: @ana_photo | Concert night", "Concert night"),
        ("Group photo @ana, @bo & @cy.", "Group photo."),
        ("Mail ana@example.com for prints", "Mail ana@example.com for prints"),
    ],
)
def test_handles_leave_readable_text(text, expected):
    assert clean(text) == expected


def test_unwrapped_handles_keep_the_names():
    assert clean("thanks to @ana and @bo", CleanConfig(handles="unwrap")) == "thanks to ana and bo"


@pytest.mark.parametrize(
    "mode, expected",
    [
        ("strip_trailing", "Golden hour at the beach today"),
        ("strip", "Golden hour at the today"),
        ("keep", "#tbt #throwback Golden hour at the #beach today #sunset #nofilter"),
    ],
)
def test_hashtags(mode, expected):
    text = "#tbt #throwback Golden hour at the #beach today #sunset #nofilter"
    assert clean(text, CleanConfig(hashtags=mode)) == expected


def test_number_sign_is_not_a_hashtag():
    assert clean("We are #1 fans", CleanConfig(hashtags="strip")) == "We are #1 fans"


def test_urls():
    assert clean("Full album: https://example.com/a?id=3. More at www.club.org/pics!") == "Full album. More at!"
    assert clean("see bit.ly/3xYz for details") == "see for details"


def test_emoji_removal_keeps_accents_and_scripts():
    text = "Café ☕ in Zürich — ночь, 東京 🌸, नमस्ते 🙏🏽, 👨‍👩‍👧 family ❤️ 1️⃣ 🇮🇳 🏳️‍🌈 ❤️‍🔥 sí"
    assert clean(text) == "Café in Zürich — ночь, 東京, नमस्ते, family sí"
    decomposed = "Cafe\u0301 ma\u0303e"  # combining accents
    assert clean(decomposed) == decomposed
    joiners = "क्\u200dष and ന്\u200d stay"  # zero-width joiners inside Indic words
    assert clean(joiners + " 🙂") == joiners


def test_whitespace_and_lowercase():
    cfg = CleanConfig(lowercase=True)
    assert clean("  Two\u00a0dogs\n\tplaying\u200b  in\u2028the SNOW ", cfg) == "two dogs playing in the snow"
    assert clean("a  b", CleanConfig(collapse_whitespace=False)) == "a  b"


def test_word_limits_drop_captions():
    cfg = CleanConfig(min_words=3, max_words=5, strip_emoji=True)
    assert clean_caption("Vibes ✨", cfg) == ("Vibes", "too_few_words")
    assert clean_caption("one two three four five six", cfg)[1] == "too_many_words"
    assert clean_caption("✨🔥", cfg) == ("", "empty_after_cleaning")
    assert clean_caption("a dog runs", cfg) == ("a dog runs", None)


def test_tidy():
    assert tidy("Hi , there ,, friend ( ) .") == "Hi, there, friend."
    assert tidy(", — and so on -") == "and so on"


def test_instagram_preset_loads_and_starts_with_its_command():
    first = INSTAGRAM.read_text().splitlines()[0]
    assert first == "# captune data clean posts.jsonl --config configs/data/clean-instagram.yaml --out clean.jsonl"
    cfg = load_config(CleanConfig, INSTAGRAM)
    assert (cfg.handles, cfg.hashtags, cfg.strip_emoji, cfg.min_words) == ("strip", "strip_trailing", True, 3)


def test_clean_file_reports_per_rule_and_writes_rejects(tmp_path):
    rows = [
        {"image": "a.jpg", "caption": "Great night on stage, thanks to @ana and @bo! #iitg #fest"},
        {"image": "a.jpg", "caption": "Highlights from the fest. Swipe →"},
        {"image": "b.jpg", "caption": "Vibes ✨"},
        {"image": "c.jpg", "caption": "Crowd cheering at the main stage 🎉"},
    ]
    src = tmp_path / "posts.jsonl"
    src.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    result = clean_file(src, tmp_path / "clean.jsonl", INSTAGRAM, {"lowercase": True})
    report = result.to_json()
    assert report["changed"] == {"hints": 1, "handles": 1, "hashtags": 1, "emoji": 2, "lowercase": 4}
    assert report["dropped"] == {"too_few_words": 1}
    assert report["examples"]["handles"][0] == [rows[0]["caption"], "Great night on stage! #iitg #fest"]
    written = [json.loads(x) for x in (tmp_path / "clean.jsonl").read_text().splitlines()]
    assert [(r["image_id"], r["captions"]) for r in written] == [
        ("a.jpg", ["great night on stage!", "highlights from the fest."]),
        ("c.jpg", ["crowd cheering at the main stage"]),
    ]
    rejects = [json.loads(x) for x in (tmp_path / "clean.rejects.jsonl").read_text().splitlines()]
    assert [(r["line"], r["reason"]) for r in rejects] == [(3, "too_few_words")]


def test_unknown_rule_is_a_config_error(tmp_path):
    bad = tmp_path / "c.yaml"
    bad.write_text("strip_emojis: true\n")
    with pytest.raises(ConfigError, match="strip_emojis: unknown key"):
        load_config(CleanConfig, bad)


def test_hashtag_blocks_take_their_separators_with_them():
    assert clean("Sunset. #a, #b.", CleanConfig(hashtags="strip")) == "Sunset."
    assert clean("Sunset. #a, #b.", CleanConfig(hashtags="strip_trailing")) == "Sunset."
    assert clean("#a #b", CleanConfig(hashtags="strip_trailing")) == ""
    assert clean("Wait... what", CleanConfig(hashtags="strip")) == "Wait... what"
