import pytest

from captune.data.records import CaptionRecord, read_records, write_records
from captune.errors import DataError


def test_round_trip_keeps_line_separators_inside_captions(tmp_path):
    recs = [CaptionRecord("a", "/a.jpg", ["one\u2028two", "three\x85four"], {"event": "É"})]
    write_records(tmp_path / "r.jsonl", recs)
    assert read_records(tmp_path / "r.jsonl") == recs


def test_bad_records_name_file_and_line(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text('{"image_id": "a", "image": "/a.jpg", "captions": []}\n{"image_id": "b"}\n')
    with pytest.raises(DataError, match=r"r\.jsonl:2: missing key 'image'"):
        read_records(path)
    path.write_bytes(b'{"image_id": "\xff"}\n')
    with pytest.raises(DataError, match=r"r\.jsonl:1: not valid UTF-8"):
        read_records(path)
