import json

import pytest
import yaml

from captune.data.clean import CleanConfig
from captune.data.validate import validate_dataset

CLEAN = CleanConfig(strip_hints=True, handles="strip", hashtags="strip_trailing", strip_emoji=True)


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def corpus(tmp_path, images):
    """A JSON Lines dataset whose every line is either good or broken in one known way."""
    good = {
        "good.png": images.rgb("img/good.png"),
        "cmyk.jpg": images.cmyk_jpeg("img/cmyk.jpg"),
        "palette.png": images.palette_png_with_transparency("img/palette.png"),
        "la.png": images.la_png("img/la.png"),
        "deep.png": images.png16("img/deep.png"),
        "rotated.jpg": images.exif_rotated_jpeg("img/rotated.jpg"),
    }
    images.raw("img/empty.jpg", b"")
    images.truncated("img/cut.png", "PNG")
    images.truncated("img/cut.jpg", "JPEG")
    images.raw("img/notes.jpg", b"not a photo at all\n")
    images.bomb("img/bomb.png", 50_000, 50_000)

    def row(image, caption="A photo of a thing"):
        return json.dumps({"image": f"img/{image}", "caption": caption, "event": "Fest"}, ensure_ascii=False).encode()

    lines = [
        row("good.png", "Blue square on stage. Swipe →"),      # 1
        row("good.png", "Another blue square"),                 # 2
        row("cmyk.jpg"), row("palette.png"), row("la.png"),     # 3-5
        row("deep.png"), row("rotated.jpg"),                    # 6-7
        row("empty.jpg"),                                        # 8  empty_file
        row("cut.png"),                                          # 9  truncated_image
        row("cut.jpg"),                                          # 10 truncated_image
        row("notes.jpg"),                                        # 11 not_an_image
        row("bomb.png"),                                         # 12 too_many_pixels
        row("missing.jpg"),                                      # 13 missing_image
        b'{"image": "img/good.png", "caption": "unterminated',   # 14 malformed_json
        b'{"image": "img/good.png", "caption": "caf\xe9"}',      # 15 undecodable_bytes
        b'{"image": "img/la.png"}',                              # 16 missing_caption
        row("cmyk.jpg", "✨🔥 #vibes #fest"),                   # 17 empty_after_cleaning
        row("empty.jpg", "Second caption of a broken image"),  # 18 empty_file again
        row("good.png", "Thanks to @ana and @bo 🎉"),           # 19 empty_after_cleaning
    ]
    path = tmp_path / "posts.jsonl"
    path.write_bytes(b"\r\n".join(lines) + b"\r\n")
    return path, good


EXPECTED_REJECTS = [
    (8, "empty_file"), (9, "truncated_image"), (10, "truncated_image"), (11, "not_an_image"),
    (12, "too_many_pixels"), (13, "missing_image"), (14, "malformed_json"), (15, "undecodable_bytes"),
    (16, "missing_caption"), (17, "empty_after_cleaning"), (18, "empty_file"), (19, "empty_after_cleaning"),
]


def test_every_bad_row_is_rejected_with_reason_and_line(tmp_path, corpus):
    path, good = corpus
    out = tmp_path / "checked"
    report = validate_dataset(path, out, clean=CLEAN)
    rejects = read_jsonl(out / "rejects.jsonl")
    assert [(r["line"], r["reason"]) for r in rejects] == EXPECTED_REJECTS
    assert all(r["source"] == str(path) for r in rejects)
    assert rejects[5]["image"] == str(tmp_path / "img" / "missing.jpg")
    assert "not found" in rejects[5]["detail"]

    records = {r["image_id"]: r for r in read_jsonl(out / "records.jsonl")}
    assert sorted(records) == sorted(f"img/{name}" for name in good)
    assert records["img/good.png"]["captions"] == ["Blue square on stage.", "Another blue square"]
    assert records["img/good.png"]["image"] == str(good["good.png"])
    assert records["img/good.png"]["meta"]["source"]["lines"] == [1, 2]

    kept_rows = sum(len(r["meta"]["source"]["lines"]) for r in records.values())
    assert kept_rows + len(rejects) == report.rows == 19
    assert report.to_json() == {
        "rows": 19, "records": 6, "rejected": 12,
        "reasons": {"empty_file": 2, "truncated_image": 2, "empty_after_cleaning": 2, "not_an_image": 1,
                    "too_many_pixels": 1, "missing_image": 1, "malformed_json": 1, "undecodable_bytes": 1,
                    "missing_caption": 1},
    }
    assert json.loads((out / "summary.json").read_text()) == report.to_json()
    assert not report.failed


def test_config_yaml_holds_inputs_and_cleaning(tmp_path, corpus):
    path, _ = corpus
    validate_dataset(path, tmp_path / "out", clean=CLEAN, max_pixels=10**6)
    cfg = yaml.safe_load((tmp_path / "out" / "config.yaml").read_text())
    assert (cfg["input"], cfg["format"], cfg["image_root"], cfg["max_pixels"]) == (
        str(path), "jsonl", str(tmp_path), 10**6)
    assert cfg["clean"]["handles"] == "strip" and cfg["clean"]["strip_emoji"] is True


def test_without_cleaning_captions_are_kept_as_read(tmp_path, corpus):
    path, _ = corpus
    report = validate_dataset(path, tmp_path / "out")
    assert "empty_after_cleaning" not in report.reasons
    good = next(r for r in report.records if r.image_id == "img/good.png")
    assert good.captions[0] == "Blue square on stage. Swipe →"


def test_strict_and_nothing_usable_fail(tmp_path, images):
    images.rgb("a.png")
    path = tmp_path / "d.jsonl"
    path.write_text('{"image": "a.png", "caption": "ok"}\n{"image": "gone.png", "caption": "x"}\n')
    assert not validate_dataset(path, tmp_path / "o1").failed
    assert validate_dataset(path, tmp_path / "o2", strict=True).failed
    path.write_text('{"image": "gone.png", "caption": "x"}\n')
    assert validate_dataset(path, tmp_path / "o3").failed


@pytest.mark.parametrize(
    "name, text, line",
    [
        ("d.csv", "image,caption\r\nhere.png,A square\r\ngone.png,\"Listed, but missing\"\r\n", 3),
        ("Flickr8k.token.txt", "here.png#0\tA square\ngone.png#0\tListed but missing\n", 2),
        ("results.csv", "image_name| comment_number| comment\nhere.png| 0| A square\ngone.png| 0| Missing\n", 3),
    ],
)
def test_listed_but_missing_image_is_rejected_in_every_line_format(tmp_path, images, name, text, line):
    images.rgb("here.png")
    (tmp_path / name).write_text(text)
    report = validate_dataset(tmp_path / name, tmp_path / "out")
    assert [(r.line, r.reason, r.image) for r in report.rejects] == [
        (line, "missing_image", str(tmp_path / "gone.png"))]
    assert [r.image_id for r in report.records] == ["here.png"]


def test_coco_missing_image_rejects_each_annotation(tmp_path, images):
    images.rgb("val/1.png")
    doc = {"images": [{"id": 1, "file_name": "val/1.png"}, {"id": 2, "file_name": "val/2.png"}],
           "annotations": [{"image_id": 1, "caption": "A"}, {"image_id": 2, "caption": "B"},
                           {"image_id": 2, "caption": "C"}]}
    (tmp_path / "captions.json").write_text(json.dumps(doc))
    report = validate_dataset(tmp_path / "captions.json", tmp_path / "out")
    assert [(r.line, r.reason, r.detail.split(":")[0]) for r in report.rejects] == [
        (None, "missing_image", "annotations[1]"), (None, "missing_image", "annotations[2]")]
    assert report.to_json()["records"] == 1
