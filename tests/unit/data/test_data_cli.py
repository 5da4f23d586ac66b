import json
from pathlib import Path

import yaml
from click.testing import CliRunner

from captune.cli import cli
from captune.cli.data import DATA_FORMATS
from captune.data.readers import FORMATS

INSTAGRAM = str(Path(__file__).parents[3] / "configs" / "data" / "clean-instagram.yaml")


def run(*args):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    return result


def posts(tmp_path, images, missing=True):
    images.rgb("eventX/IMG_0012.jpg")
    images.rgb("eventX/IMG_0013.jpg")
    rows = [
        {"image": "eventX/IMG_0012.jpg", "event": "IITG Orientation 2025", "labels": ["stage", "audience"],
         "caption": "Highlights from IITG Orientation — stage vibes & cheering crowd. Swipe →"},
        {"image": "eventX/IMG_0013.jpg", "event": "IITG Orientation 2025", "caption": "Crowd cheering at the main stage 🎉"},
    ]
    if missing:
        rows.append({"image": "eventX/IMG_0099.jpg", "event": "IITG Orientation 2025", "caption": "Lost photo of the band"})
    path = tmp_path / "posts.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows) + "{broken\n", encoding="utf-8")
    return path


def test_cli_formats_match_the_readers():
    assert set(DATA_FORMATS) == set(FORMATS)


def test_validate_json_contract_and_files(tmp_path, images):
    src = posts(tmp_path, images)
    out = tmp_path / "checked"
    result = run("data", "validate", src, "--clean", INSTAGRAM, "--out", out, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "rows": 4, "records": 2, "rejected": 2, "reasons": {"malformed_json": 1, "missing_image": 1}}
    records = [json.loads(x) for x in (out / "records.jsonl").read_text().splitlines()]
    assert [r["captions"] for r in records] == [
        ["Highlights from IITG Orientation — stage vibes & cheering crowd."], ["Crowd cheering at the main stage"]]
    assert set(records[0]) == {"image_id", "image", "captions", "meta"}
    rejects = [json.loads(x) for x in (out / "rejects.jsonl").read_text().splitlines()]
    assert [(r["line"], r["reason"]) for r in rejects] == [(3, "missing_image"), (4, "malformed_json")]
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert cfg["input"] == str(src) and cfg["clean"]["strip_hints"] is True


def test_validate_exit_status(tmp_path, images):
    src = posts(tmp_path, images)
    human = run("data", "validate", src, "--out", tmp_path / "a")
    assert human.exit_code == 0 and "4 rows -> 2 records, 2 rejected" in human.output
    strict = run("data", "validate", src, "--out", tmp_path / "b", "--strict", "--json")
    assert strict.exit_code == 1 and json.loads(strict.stdout)["rejected"] == 2
    (tmp_path / "none.jsonl").write_text('{"image": "nope.jpg", "caption": "x"}\n')
    empty = run("data", "validate", tmp_path / "none.jsonl", "--out", tmp_path / "c")
    assert empty.exit_code == 1


def test_validate_errors_at_run_time_exit_1(tmp_path):
    (tmp_path / "d.jsonl").write_text("{}\n")
    result = run("data", "validate", tmp_path / "d.jsonl", "--separator", ";", "--out", tmp_path / "o")
    assert result.exit_code == 1 and "error: option 'separator' does not apply to format 'jsonl'" in result.output


def test_clean_command(tmp_path, images):
    src = posts(tmp_path, images, missing=False)
    out = tmp_path / "clean.jsonl"
    result = run("data", "clean", src, "--config", INSTAGRAM, "--lowercase", "--out", out, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["rows"], report["records"], report["rejected"]) == (3, 2, 1)
    assert report["changed"] == {"hints": 1, "emoji": 1, "lowercase": 2}
    assert report["rejects"] == str(tmp_path / "clean.rejects.jsonl")
    assert json.loads(out.read_text().splitlines()[1])["captions"] == ["crowd cheering at the main stage"]
    human = run("data", "clean", src, "--strip-emoji", "--out", out)
    assert "changed: emoji 1" in human.output and "-> 'Crowd cheering at the main stage'" in human.output


def test_split_command(tmp_path, images):
    src = posts(tmp_path, images, missing=False)
    run("data", "validate", src, "--out", tmp_path / "checked")
    result = run("data", "split", tmp_path / "checked" / "records.jsonl", "--ratios", "0.5,0.5", "--seed", "1",
                 "--out", tmp_path / "splits", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["counts"] == {"train": 1, "val": 1} and summary["seed"] == 1
    assert sorted(p.name for p in (tmp_path / "splits").iterdir()) == ["split.json", "train.jsonl", "val.jsonl"]
    assert json.loads((tmp_path / "splits" / "split.json").read_text()) == summary
    bad = run("data", "split", tmp_path / "checked" / "records.jsonl", "--ratios", "0.5,0.4", "--out", tmp_path / "x")
    assert bad.exit_code == 1 and "must sum to 1" in bad.output


def test_inspect_command(tmp_path, images):
    src = posts(tmp_path, images)
    result = run("data", "inspect", src, "--json")
    assert result.exit_code == 0, result.output
    stats = json.loads(result.stdout)
    assert (stats["images"], stats["captions"], stats["rejected"]) == (3, 3, 1)
    assert stats["events"] == {"IITG Orientation 2025": 3}
    human = run("data", "inspect", src, "--examples", "1")
    assert "eventX/IMG_0012.jpg" in human.output and "eventX/IMG_0013.jpg" not in human.output
