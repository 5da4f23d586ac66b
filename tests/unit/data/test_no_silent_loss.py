"""Data preparation never changes or loses a caption silently: each case here once did."""

import json

from captune.data.clean import CleanConfig, clean_caption
from captune.data.readers import read_dataset


def clean(text, cfg):
    return clean_caption(text, cfg)[0]


def test_hashtag_blocks_on_their_own_lines_are_blocks():
    cfg = CleanConfig(hashtags="strip_trailing")
    assert clean("Great shot of the stage\n#concert\n#live", cfg) == "Great shot of the stage"
    assert clean("#tbt\n#throwback\nOur first meetup", cfg) == "Our first meetup"
    assert clean("Night walk\r\n\r\n#city #lights", cfg) == "Night walk"
    # a hashtag inside the text still keeps its word
    assert clean("The #live show\n#music", cfg) == "The live show"


def test_csv_row_with_more_fields_than_the_header_is_rejected_not_cut(tmp_path):
    path = tmp_path / "posts.csv"
    path.write_text('image,caption,event\na.jpg,a dog, running,club\nb.jpg,"a cat, asleep",club\nc.jpg,a bird,club,,\n')
    result = read_dataset(path)
    records = {r.image_id: r for r in result.records}
    assert "a.jpg" not in records
    assert records["b.jpg"].captions == ["a cat, asleep"]
    assert records["c.jpg"].captions == ["a bird"]  # empty trailing fields are harmless
    assert [(r.line, r.reason) for r in result.rejects] == [(2, "malformed_row")]
    assert "expected 3 columns, found 4" in result.rejects[0].detail
    assert result.rows == 3


def test_coco_image_id_listed_twice_with_another_file_is_a_reject(tmp_path):
    doc = {"images": [{"id": 1, "file_name": "a.jpg"}, {"id": 1, "file_name": "b.jpg"},
                      {"id": 2, "file_name": "c.jpg"}, {"id": 2, "file_name": "c.jpg"}],
           "annotations": [{"image_id": 1, "caption": "A dog."}, {"image_id": 2, "caption": "A cat."}]}
    path = tmp_path / "captions.json"
    path.write_text(json.dumps(doc))
    result = read_dataset(path, image_root=tmp_path)
    records = {r.image_id: r for r in result.records}
    assert records["1"].image == str(tmp_path / "a.jpg")
    assert [(r.reason, r.image) for r in result.rejects] == [("conflicting_image", str(tmp_path / "b.jpg"))]
    assert "images[1]" in result.rejects[0].detail and "images[0]" in result.rejects[0].detail


def test_unclosed_csv_quote_does_not_swallow_the_rows_after_it(tmp_path):
    path = tmp_path / "posts.csv"
    path.write_text('image,caption\na.jpg,"Best night ever\nb.jpg,A cat on a mat\n\nc.jpg,"A dog\nasleep"\n'
                    'd.jpg,A bird\n')
    result = read_dataset(path)
    records = {r.image_id: r for r in result.records}
    assert [(r.line, r.reason) for r in result.rejects] == [(2, "malformed_row")]
    assert "line 2" in result.rejects[0].detail and "line 3" in result.rejects[0].detail
    assert records["b.jpg"].captions == ["A cat on a mat"]
    assert records["b.jpg"].meta["source"]["lines"] == [3]
    assert records["c.jpg"].captions == ["A dog\nasleep"]  # a quoted line break is still a caption's own
    assert records["c.jpg"].meta["source"]["lines"] == [5]
    assert records["d.jpg"].meta["source"]["lines"] == [7]
    assert result.rows == 4


def test_swipe_words_in_prose_are_not_hints_and_hints_leave_words_apart():
    cfg = CleanConfig(strip_hints=True)
    for prose in ["A swipe of red paint across the canvas", "Card swipe machine at the entrance",
                  "Kids slide left and right on the ice"]:
        assert clean(prose, cfg) == prose
    assert clean("Golden hour. Swipe → More at the club", cfg) == "Golden hour. More at the club"
    assert clean("Sunset (swipe left)", cfg) == "Sunset"
    assert clean("Great night! Swipe left", cfg) == "Great night!"
    assert clean("Live at the hall - swipe left", cfg) == "Live at the hall"
    assert clean("Swipe for more\nThe band on stage", cfg) == "The band on stage"


def test_emoji_between_words_leave_the_words_apart():
    cfg = CleanConfig(strip_emoji=True)
    assert clean("Sun☀️Sea🌊Sand", cfg) == "Sun Sea Sand"
    assert clean("Coffee☕, then work 👩‍💻.", cfg) == "Coffee, then work."
    assert clean("Café ☕ in Zürich 🌸", cfg) == "Café in Zürich"
