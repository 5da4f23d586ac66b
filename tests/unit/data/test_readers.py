import json
import os

import pytest

from captune.data.readers import detect_format, read_dataset
from captune.data.records import CaptionRecord, write_records
from captune.errors import DataError

CLUB = [
    {"image": "eventX/IMG_0012.jpg", "event": "IITG Orientation 2025", "labels": ["stage", "audience"],
     "caption": "Highlights from IITG Orientation — stage vibes & cheering crowd. Swipe →"},
    {"image": "eventX/IMG_0013.jpg", "event": "IITG Orientation 2025", "labels": ["crowd"], "caption": "Crowd at dusk"},
    {"image": "./eventX/IMG_0012.jpg", "event": "IITG Orientation 2025", "labels": ["stage", "lights"],
     "caption": "The main stage lit up"},
    {"image": "eventX/IMG_0012.jpg", "caption": "The main stage lit up"},
]


def write_lines(path, lines, newline="\n", bom=False):
    data = newline.join(lines) + newline
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data.encode("utf-8"))
    return path


def by_id(result):
    return {r.image_id: r for r in result.records}


# --- JSON Lines ---------------------------------------------------------------------------


@pytest.mark.parametrize("newline, bom", [("\n", False), ("\r\n", True)])
def test_jsonl_groups_rows_per_image(tmp_path, newline, bom):
    path = write_lines(tmp_path / "posts.jsonl", [json.dumps(o, ensure_ascii=False) for o in CLUB], newline, bom)
    result = read_dataset(path)
    assert (result.format, result.rows, result.rejects) == ("jsonl", 4, [])
    recs = by_id(result)
    assert list(recs) == ["eventX/IMG_0012.jpg", "eventX/IMG_0013.jpg"]
    r = recs["eventX/IMG_0012.jpg"]
    assert r.captions == [CLUB[0]["caption"], "The main stage lit up"]  # duplicate row collapsed
    assert r.image == os.path.join(str(tmp_path), "eventX", "IMG_0012.jpg")
    assert r.event == "IITG Orientation 2025"
    assert r.labels == ["stage", "audience", "lights"]
    assert r.meta["source"] == {"file": str(path), "lines": [1, 3, 4]}


def test_jsonl_unicode_captions_and_line_separators_survive(tmp_path):
    caps = ["Café ☕ in Zürich", "東京の夜 🌃", "first\u2028second", "नमस्ते"]
    rows = [json.dumps({"image": "a.jpg", "caption": c}, ensure_ascii=False) for c in caps]
    result = read_dataset(write_lines(tmp_path / "u.jsonl", rows))
    assert result.records[0].captions == caps
    assert result.records[0].meta["source"]["lines"] == [1, 2, 3, 4]


def test_jsonl_captions_lists_and_custom_keys(tmp_path):
    rows = [
        json.dumps({"photo": "a.jpg", "alt": ["one", "two"], "camera": "X100"}),
        json.dumps({"photo": "a.jpg", "alt": "three", "camera": "X100"}),
    ]
    result = read_dataset(write_lines(tmp_path / "d.jsonl", rows), image_column="photo", caption_column="alt")
    (r,) = result.records
    assert (r.captions, r.attributes) == (["one", "two", "three"], {"camera": "X100"})


def test_jsonl_conflicting_metadata_is_kept(tmp_path):
    rows = [json.dumps({"image": "a.jpg", "caption": "x", "event": "A"}),
            json.dumps({"image": "a.jpg", "caption": "y", "event": "B"})]
    (r,) = read_dataset(write_lines(tmp_path / "d.jsonl", rows)).records
    assert (r.event, r.meta["conflicts"]) == ("A", {"event": ["A", "B"]})


def test_jsonl_bad_lines_are_rejected_with_line_numbers(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(
        b'{"image": "a.jpg", "caption": "fine"}\n'
        b'{"image": "b.jpg", "caption": \n'
        b'{"image": "c.jpg", "caption": "caf\xe9 latin-1"}\n'
        b'\n'
        b'{"image": "d.jpg"}\n'
        b'{"caption": "no image"}\n'
        b'["a list"]\n'
        b'{"image": "e.jpg", "caption": "   "}\n'
        b'{"image": "f.jpg", "caption": 3}\n'
    )
    result = read_dataset(path)
    got = [(r.line, r.reason) for r in result.rejects]
    assert got == [
        (2, "malformed_json"), (3, "undecodable_bytes"), (5, "missing_caption"), (6, "missing_field"),
        (7, "malformed_row"), (8, "missing_caption"), (9, "malformed_row"),
    ]
    assert [r.image_id for r in result.records] == ["a.jpg"]
    assert result.rows == 8  # the blank line is not a row


def test_captune_records_round_trip(tmp_path):
    recs = [CaptionRecord("img-1", str(tmp_path / "x" / "1.jpg"), ["a", "b"], {"event": "E", "labels": ["l"]})]
    write_records(tmp_path / "records.jsonl", recs)
    (r,) = read_dataset(tmp_path / "records.jsonl").records
    assert (r.image_id, r.image, r.captions, r.event, r.labels) == ("img-1", recs[0].image, ["a", "b"], "E", ["l"])


def test_same_id_for_two_files_is_a_conflict(tmp_path):
    rows = [json.dumps({"image_id": "k", "image": "a.jpg", "caption": "x"}),
            json.dumps({"image_id": "k", "image": "b.jpg", "caption": "y"})]
    result = read_dataset(write_lines(tmp_path / "d.jsonl", rows))
    assert [(r.line, r.reason) for r in result.rejects] == [(2, "conflicting_image")]
    assert result.records[0].captions == ["x"]


def test_image_root_and_absolute_paths(tmp_path):
    root = tmp_path / "photos"
    rows = [json.dumps({"image": "a.jpg", "caption": "x"}),
            json.dumps({"image": str(root / "sub" / "b.jpg"), "caption": "y"}),
            json.dumps({"image": "/elsewhere/c.jpg", "caption": "z"})]
    result = read_dataset(write_lines(tmp_path / "d.jsonl", rows), image_root=root)
    assert [(r.image_id, r.image) for r in result.records] == [
        ("a.jpg", str(root / "a.jpg")), ("sub/b.jpg", str(root / "sub" / "b.jpg")),
        ("/elsewhere/c.jpg", "/elsewhere/c.jpg"),
    ]


# --- CSV / TSV / Flickr30k -----------------------------------------------------------------


def test_csv_quoted_separators_newlines_crlf_and_bom(tmp_path):
    path = tmp_path / "captions.csv"
    text = (
        'file,text,event\r\n'
        '"a.jpg","A dog, a ball, and a park",Picnic\r\n'
        '"b.jpg","Two lines\r\nin one caption",Picnic\r\n'
        'c.jpg,"She said ""cheese""",\r\n'
        'a.jpg,"A dog, a ball, and a park",Picnic\r\n'
        'd.jpg\r\n'
    )
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    result = read_dataset(path, image_column="file", caption_column="text")
    recs = by_id(result)
    assert recs["a.jpg"].captions == ["A dog, a ball, and a park"]
    assert recs["a.jpg"].meta["source"]["lines"] == [2, 6]  # the quoted newline spans lines 3-4
    assert recs["b.jpg"].captions == ["Two lines\r\nin one caption"]
    assert recs["c.jpg"].captions == ['She said "cheese"']
    assert recs["a.jpg"].event == "Picnic" and recs["c.jpg"].event is None
    assert [(r.line, r.reason) for r in result.rejects] == [(7, "malformed_row")]


def test_csv_without_header_is_detected(tmp_path):
    path = write_lines(tmp_path / "plain.csv", ["x.jpg,A red kite", "y.jpg,A blue kite", "x.jpg,Kite over the sea"])
    result = read_dataset(path)
    assert [(r.image_id, r.captions) for r in result.records] == [
        ("x.jpg", ["A red kite", "Kite over the sea"]), ("y.jpg", ["A blue kite"])]


def test_separator_is_sniffed_from_the_first_field(tmp_path):
    path = write_lines(tmp_path / "pipes.csv", ["a.jpg,A sign that says | open |", "b.jpg,Closed"])
    assert [r.captions for r in read_dataset(path).records] == [["A sign that says | open |"], ["Closed"]]
    path = write_lines(tmp_path / "f30k.txt", ["10002456.jpg| 0| Men, in hard hats , work .", "10002456.jpg| 1| Men ."])
    result = read_dataset(path)
    assert (result.format, result.records[0].captions) == ("flickr30k", ["Men, in hard hats , work .", "Men ."])


def test_columns_that_do_not_fit_are_a_clear_error(tmp_path):
    path = write_lines(tmp_path / "one.csv", ["a.jpg", "b.jpg"])
    with pytest.raises(DataError, match="do not fit the first row's 1 columns"):
        read_dataset(path)
    path = write_lines(tmp_path / "two.csv", ["a.jpg,x", "b.jpg,y"])
    with pytest.raises(DataError, match="caption column 5"):
        read_dataset(path, caption_column="5")


def test_csv_header_option_and_missing_column(tmp_path):
    path = write_lines(tmp_path / "t.csv", ["photo,words", "x.jpg,hello there"])
    with pytest.raises(DataError, match="no image column.*photo, words.*--image-column"):
        read_dataset(path)
    result = read_dataset(path, header=False)
    assert [r.image_id for r in result.records] == ["photo", "x.jpg"]


def test_tsv(tmp_path):
    path = write_lines(tmp_path / "d.tsv", ["image\tcaption", "a.jpg\tA cat, asleep", "b.jpg\tA dog"])
    assert [r.captions for r in read_dataset(path).records] == [["A cat, asleep"], ["A dog"]]


FLICKR30K = [
    "image_name| comment_number| comment",
    "1000092795.jpg| 0| Two young guys with shaggy hair look at their hands while hanging out in the yard .",
    '1000092795.jpg| 1| Two friends enjoy time spent together , one says "hi" .',
    "1000092795.jpg| 2| A caption with a | pipe in it .",
    "2199200615.jpg| 4 A dog runs across the grass .",
    "10002456.jpg| 0| Several men in hard hats are operating a giant pulley system .",
]


def test_flickr30k_layout_is_detected(tmp_path):
    result = read_dataset(write_lines(tmp_path / "results.csv", FLICKR30K, "\r\n"))
    assert result.format == "flickr30k"
    recs = by_id(result)
    assert recs["1000092795.jpg"].captions[1:] == [
        'Two friends enjoy time spent together , one says "hi" .', "A caption with a | pipe in it ."]
    assert recs["1000092795.jpg"].meta.keys() == {"source"}  # comment_number is the caption order
    assert [(r.line, r.reason) for r in result.rejects] == [(5, "malformed_row")]
    assert result.rows == 5


def test_flickr30k_with_explicit_separator_and_no_header(tmp_path):
    path = write_lines(tmp_path / "results.txt", FLICKR30K[1:2] + FLICKR30K[5:])
    result = read_dataset(path, format="csv", separator="| ", header=False)
    assert [(r.image_id, len(r.captions)) for r in result.records] == [("1000092795.jpg", 1), ("10002456.jpg", 1)]


def test_bad_separator_is_a_clear_error(tmp_path):
    path = write_lines(tmp_path / "d.csv", ["a.jpg::x"])
    with pytest.raises(DataError, match="expected one character"):
        read_dataset(path, separator="::")


# --- Flickr8k token file -------------------------------------------------------------------


def test_flickr8k_tokens(tmp_path):
    lines = [
        "1000268201_693b08cb0e.jpg#0\tA child in a pink dress is climbing up a set of stairs in an entry way .",
        "1000268201_693b08cb0e.jpg#1\tA girl going into a wooden building .",
        "1000268201_693b08cb0e.jpg#1\tA girl going into a wooden building .",
        "1001773457_577c3a7d70.jpg#0\tA black dog and a spotted dog are fighting",
        "broken line without a tab",
        "1001773457_577c3a7d70.jpg#1\t ",
    ]
    path = write_lines(tmp_path / "Flickr8k.token.txt", lines, "\r\n")
    result = read_dataset(path, image_root=tmp_path / "Flicker8k_Dataset")
    assert result.format == "flickr8k"
    recs = by_id(result)
    assert list(recs) == ["1000268201_693b08cb0e.jpg", "1001773457_577c3a7d70.jpg"]
    assert len(recs["1000268201_693b08cb0e.jpg"].captions) == 2
    assert recs["1000268201_693b08cb0e.jpg"].captions[0].startswith("A child in a pink dress")
    assert recs["1001773457_577c3a7d70.jpg"].image == str(tmp_path / "Flicker8k_Dataset" / "1001773457_577c3a7d70.jpg")
    assert [(r.line, r.reason) for r in result.rejects] == [(5, "malformed_row"), (6, "missing_caption")]


# --- COCO and Karpathy ----------------------------------------------------------------------


def test_coco_captions(tmp_path):
    doc = {
        "images": [{"id": 9, "file_name": "val2014/COCO_val2014_000000000009.jpg"},
                   {"id": 25, "file_name": "val2014/COCO_val2014_000000000025.jpg"},
                   {"id": 30, "file_name": "val2014/COCO_val2014_000000000030.jpg"},
                   {"file_name": "no-id.jpg"}],
        "annotations": [{"id": 1, "image_id": 9, "caption": "Closeup of bins of food."},
                        {"id": 2, "image_id": 25, "caption": "A giraffe eating food from a tree."},
                        {"id": 3, "image_id": 9, "caption": "Closeup of bins of food. "},
                        {"id": 4, "image_id": 77, "caption": "orphan"},
                        {"id": 5, "image_id": 25}],
    }
    path = tmp_path / "annotations" / "captions_val2014.json"
    path.parent.mkdir()
    path.write_text(json.dumps(doc))
    result = read_dataset(path, image_root=tmp_path)
    assert result.format == "coco"
    recs = by_id(result)
    assert list(recs) == ["9", "25", "30"]
    assert recs["9"].captions == ["Closeup of bins of food."]
    assert recs["9"].image == str(tmp_path / "val2014" / "COCO_val2014_000000000009.jpg")
    assert recs["9"].meta["source"] == {"file": str(path), "items": ["annotations[0]", "annotations[2]"]}
    assert recs["30"].captions == []  # listed without annotations: a record to caption
    assert sorted(r.reason for r in result.rejects) == ["missing_caption", "missing_field", "unknown_image_id"]
    assert result.rows == 7  # 5 annotations, 1 image without any, 1 broken image entry


def karpathy_doc():
    def image(i, split, sents, cocoid=None):
        im = {"filepath": "val2014", "filename": f"COCO_{i}.jpg", "imgid": i, "split": split,
              "sentences": [{"raw": s, "tokens": s.lower().split()} for s in sents]}
        if cocoid is not None:
            im["cocoid"] = cocoid
        return im

    return {"dataset": "coco", "images": [
        image(0, "train", ["A man riding a horse."], 391895),
        image(1, "restval", ["A plate of food.", "Food on a plate."], 522418),
        image(2, "val", ["Two dogs."], 184613),
        image(3, "test", ["A bus."], 318219),
        {"filename": "nosplit.jpg", "sentences": []},
    ]}


def test_karpathy_split_file(tmp_path):
    path = tmp_path / "dataset_coco.json"
    path.write_text(json.dumps(karpathy_doc()))
    result = read_dataset(path)
    assert result.format == "karpathy"
    recs = by_id(result)
    assert [(k, r.meta.get("split")) for k, r in recs.items()] == [
        ("391895", "train"), ("522418", "train"), ("184613", "val"), ("318219", "test"), ("nosplit.jpg", None)]
    assert recs["522418"].captions == ["A plate of food.", "Food on a plate."]
    assert recs["522418"].image == str(tmp_path / "val2014" / "COCO_1.jpg")
    assert recs["522418"].meta["source"]["items"] == ["images[1].sentences[0]", "images[1].sentences[1]"]


def test_karpathy_split_filter_and_restval(tmp_path):
    path = tmp_path / "dataset_coco.json"
    path.write_text(json.dumps(karpathy_doc()))
    assert [r.image_id for r in read_dataset(path, split="train").records] == ["391895", "522418"]
    assert [r.image_id for r in read_dataset(path, split="train", restval_as="restval").records] == ["391895"]
    assert [r.image_id for r in read_dataset(path, split="restval", restval_as="restval").records] == ["522418"]
    assert read_dataset(path, split="test").rows == 1


def test_karpathy_flickr_style_uses_file_names(tmp_path):
    doc = {"images": [{"filename": "1000268201_693b08cb0e.jpg", "split": "train",
                       "sentences": [{"raw": "A child in a pink dress"}]}], "dataset": "flickr8k"}
    path = tmp_path / "dataset_flickr8k.json"
    path.write_text(json.dumps(doc))
    assert [r.image_id for r in read_dataset(path).records] == ["1000268201_693b08cb0e.jpg"]


# --- image folders ---------------------------------------------------------------------------


def test_imagefolder_with_metadata(tmp_path, images):
    root = tmp_path / "ds"
    images.rgb("ds/a.png"), images.rgb("ds/b.png"), images.rgb("ds/unlisted.png"), images.rgb("ds/night/c.png")
    (root / "metadata.jsonl").write_text(
        json.dumps({"file_name": "a.png", "text": "A blue square", "event": "Demo"}) + "\n"
        + json.dumps({"file_name": "b.png", "text": "Another blue square"}) + "\n"
    )
    (root / "night" / "metadata.csv").write_text('file_name,caption\nc.png,"Blue, at night"\n')
    result = read_dataset(root)
    assert result.format == "imagefolder"
    assert [(r.image_id, r.captions) for r in result.records] == [
        ("a.png", ["A blue square"]), ("b.png", ["Another blue square"]), ("night/c.png", ["Blue, at night"])]
    assert result.records[2].image == str(root / "night" / "c.png")
    assert result.records[0].event == "Demo"


def test_imagefolder_without_metadata_lists_images_to_caption(tmp_path, images):
    images.rgb("ds/b.jpg"), images.rgb("ds/a.png"), images.rgb("ds/sub/c.webp"), images.raw("ds/notes.txt", b"x")
    result = read_dataset(tmp_path / "ds")
    assert [(r.image_id, r.captions) for r in result.records] == [("a.png", []), ("b.jpg", []), ("sub/c.webp", [])]


# --- detection and options -------------------------------------------------------------------


def test_detect_format(tmp_path):
    cases = {
        "a.jsonl": '{"image": "x.jpg", "caption": "y"}\n',
        "a.txt": '{"image": "x.jpg", "caption": "y"}\n',
        "b.csv": "image,caption\nx.jpg,y\n",
        "c.tsv": "image\tcaption\n",
        "d.txt": "x.jpg#0\tA caption\n",
        "e.txt": "image_name| comment_number| comment\n",
        "f.json": json.dumps({"images": [], "annotations": []}),
        "g.json": json.dumps(karpathy_doc()),
    }
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
    got = {name: detect_format(tmp_path / name) for name in cases}
    assert got == {"a.jsonl": "jsonl", "a.txt": "jsonl", "b.csv": "csv", "c.tsv": "tsv", "d.txt": "flickr8k",
                   "e.txt": "flickr30k", "f.json": "coco", "g.json": "karpathy"}
    assert detect_format(tmp_path) == "imagefolder"


def test_unusable_sources_raise_data_error(tmp_path):
    (tmp_path / "x.json").write_text('{"images": [')
    with pytest.raises(DataError, match=r"x\.json: line 1, column 13: not valid JSON"):
        read_dataset(tmp_path / "x.json")
    with pytest.raises(DataError, match="no such file"):
        read_dataset(tmp_path / "missing.jsonl")
    (tmp_path / "d.jsonl").write_text("{}\n")
    with pytest.raises(DataError, match="'separator' does not apply to format 'jsonl'"):
        read_dataset(tmp_path / "d.jsonl", separator=",")
    with pytest.raises(DataError, match="unknown format 'parquet'"):
        read_dataset(tmp_path / "d.jsonl", format="parquet")
    with pytest.raises(DataError, match="colour"):
        read_dataset(tmp_path / "d.jsonl", colour="red")


def test_folder_and_file_formats_are_not_mixed_up(tmp_path):
    (tmp_path / "d.jsonl").write_text("{}\n")
    with pytest.raises(DataError, match="is a file; format 'imagefolder' reads folders"):
        read_dataset(tmp_path / "d.jsonl", format="imagefolder")
    with pytest.raises(DataError, match="is a folder; format 'jsonl' reads files"):
        read_dataset(tmp_path, format="jsonl")
