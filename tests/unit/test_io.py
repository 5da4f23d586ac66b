import json

import pytest

from captune.errors import DataError
from captune.io import JsonlAppender, atomic_write, iter_jsonl, read_jsonl, write_jsonl


def test_atomic_write_keeps_old_file_on_failure(tmp_path):
    p = tmp_path / "a.txt"
    p.write_text("old")
    with pytest.raises(RuntimeError), atomic_write(p) as f:
        f.write("new")
        raise RuntimeError("boom")
    assert p.read_text() == "old"
    assert [x.name for x in tmp_path.iterdir()] == ["a.txt"]


def test_jsonl_roundtrip_and_bad_line(tmp_path):
    p = tmp_path / "x.jsonl"
    write_jsonl(p, [{"a": 1}, {"b": "é"}])
    assert read_jsonl(p) == [{"a": 1}, {"b": "é"}]
    p.write_text('{"a": 1}\n[1, 2]\n')
    with pytest.raises(DataError, match="x.jsonl: line 2: expected a JSON object"):
        read_jsonl(p)


def test_appender_cuts_partial_line(tmp_path):
    p = tmp_path / "log.jsonl"
    p.write_text(json.dumps({"i": 0}) + "\n" + '{"i": 1')
    with JsonlAppender(p) as log:
        log.write({"i": 2})
    assert [o["i"] for _, o in iter_jsonl(p)] == [0, 2]


def test_partial_last_line_can_be_skipped(tmp_path):
    p = tmp_path / "log.jsonl"
    p.write_text('{"i": 0}\n{"i": 1')
    assert [o for _, o in iter_jsonl(p, skip_partial_last=True)] == [{"i": 0}]


def test_line_separator_inside_a_caption_survives(tmp_path):
    p = tmp_path / "x.jsonl"
    write_jsonl(p, [{"caption": "a\u2028b\x85c"}, {"caption": "d"}])
    assert [o["caption"] for o in read_jsonl(p)] == ["a\u2028b\x85c", "d"]


def test_file_sha256_reads_files_larger_than_one_block(tmp_path):
    import hashlib

    from captune.io import file_sha256

    content = bytes(range(256)) * 5000  # 1.28 MB: two blocks of the 1 MiB reader
    (tmp_path / "w.bin").write_bytes(content)
    assert file_sha256(tmp_path / "w.bin") == hashlib.sha256(content).hexdigest()
