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


def _jsonl_as_json_loads_reads_it(path, skip_partial_last=False):
    """The plain reading ``iter_jsonl`` must match: ``json.loads`` line by line."""
    lines = path.read_text(encoding="utf-8-sig").split("\n")
    lines = [line + "\n" for line in lines[:-1]] + ([lines[-1]] if lines[-1] else [])
    out = []
    for i, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            if skip_partial_last and i == len(lines) and not line.endswith("\n"):
                break
            return out, f"line {i}: not valid JSON ({e.msg})"
        if not isinstance(obj, dict):
            return out, f"line {i}: expected a JSON object, got {type(obj).__name__}"
        out.append((i, obj))
    return out, None


@pytest.mark.parametrize("skip_partial_last", [False, True])
@pytest.mark.parametrize("text", [
    '{"a": 1}\n\n   \n{"b": [1, {"c": null}]}\n',
    '{"a": 1}\r\n{"b": 2}\r\n',
    '  \t{"a": 1}  \n',
    '{"a": 1}\n\u00a0\n\u2003 \n{"b": 2}',  # lines of non-JSON blanks are skipped
    '{"a": 1}\n\u00a0{"b": 2}\n',  # ... but not blanks json.loads refuses around a value
    '{"a": 1} \u00a0\n',
    '{"a": 1}, {"b": 2}\n',  # two values on a line
    '{"a": 1} x\n',
    '{"a": "\u2028\x85"}\n{"a": "\\ud800"}\n{"a": NaN, "a": Infinity}\n',
    '{"a": "tab\there"}\n',  # a raw control character inside a string
    '{"a": "\\x"}\n',
    '1\n',
    '"text"\n',
    '[{"a": 1}]\n',
    '{"a": 1}\n\ufeff{"b": 2}\n',  # a BOM inside the file
    '\ufeff{"a": 1}\n',  # ... and at its start (utf-8-sig drops it)
    '{"a": 1}\n{"a": 2',  # a cut-off last line
    '{"a": 1}\n{"a": 2}',  # a complete last line without its newline
    '{"a": 1}\n[1',
    '',
    '\n\n',
])
def test_jsonl_reads_every_line_as_json_loads_does(tmp_path, text, skip_partial_last):
    p = tmp_path / "x.jsonl"
    p.write_bytes(text.encode("utf-8"))
    expected, error = _jsonl_as_json_loads_reads_it(p, skip_partial_last)
    got = []
    if error is None:
        got.extend(iter_jsonl(p, skip_partial_last))
    else:
        with pytest.raises(DataError) as e:
            got.extend(iter_jsonl(p, skip_partial_last))
        assert str(e.value) == f"{p}: {error}"
    assert repr(got) == repr(expected)  # repr: NaN compares unequal to itself
