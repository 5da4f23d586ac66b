import json

from captune.data.inspect import dataset_stats, format_stats, inspect_dataset
from captune.data.records import CaptionRecord


def test_dataset_stats_counts_and_distributions():
    records = [
        CaptionRecord("a", "/a.jpg", ["A dog runs on the beach", "The dog plays"], {"event": "Trip", "labels": ["dog"]}),
        CaptionRecord("b", "/b.jpg", ["Group photo.", "A dog runs on the beach!"], {"event": "Trip", "labels": ["dog", "people"]}),
        CaptionRecord("c", "/c.jpg", ["group photo"], {"event": "Fest"}),
        CaptionRecord("d", "/d.jpg", [], {}),
    ]
    s = dataset_stats(records, top=3, examples=2)
    assert (s["images"], s["captions"], s["images_without_captions"]) == (4, 5, 1)
    assert s["captions_per_image"] == {"min": 0, "mean": 1.25, "median": 1.5, "max": 2, "histogram": {0: 1, 1: 1, 2: 2}}
    assert s["caption_words"] == {"min": 2, "mean": 3.8, "median": 3, "p95": 6.0, "max": 6}
    assert s["vocabulary"] == 9  # a dog runs on the beach plays group photo
    assert s["top_words"][:2] == [("dog", 3), ("the", 3)] or s["top_words"][:2] == [("the", 3), ("dog", 3)]
    assert s["duplicate_captions"] == {
        "captions": 2, "images": 3, "top": [["A dog runs on the beach", 2], ["Group photo.", 2]]}
    assert (s["events"], s["labels"]) == ({"Trip": 2, "Fest": 1}, {"dog": 2, "people": 1})
    assert s["examples"] == [{"image_id": "a", "captions": 2, "caption": "A dog runs on the beach"},
                             {"image_id": "b", "captions": 2, "caption": "Group photo."}]


def test_stopwords_can_be_dropped():
    records = [CaptionRecord("a", "/a.jpg", ["the dog and the cat", "a dog"], {})]
    s = dataset_stats(records, drop_stopwords=True)
    assert s["top_words"] == [("dog", 2), ("cat", 1)]


def test_inspect_raw_file_and_text_report(tmp_path):
    path = tmp_path / "posts.jsonl"
    path.write_text(json.dumps({"image": "x/1.jpg", "caption": "Stage lights", "event": "Fest"}) + "\nnot json\n")
    stats = inspect_dataset(path)
    assert (stats["format"], stats["rows"], stats["rejected"], stats["reasons"]) == ("jsonl", 2, 1, {"malformed_json": 1})
    text = format_stats(stats)
    assert "images 1 (0 without captions), captions 1" in text
    assert "events: Fest 1" in text
    assert "x/1.jpg" in text and "Stage lights" in text
    json.dumps(stats)  # the statistics are JSON-serialisable
