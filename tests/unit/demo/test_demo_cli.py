import json

from click.testing import CliRunner

from captune.cli import cli
from captune.data.records import read_records


def test_demo_help_lists_the_subcommands_and_defaults():
    result = CliRunner().invoke(cli, ["demo", "--help"])
    assert result.exit_code == 0
    assert "Usage" in result.output and "world" in result.output and "build-base" in result.output
    assert "default 800" in result.output


def test_demo_world_json_writes_the_files(tmp_path):
    out = tmp_path / "w"
    result = CliRunner().invoke(cli, ["demo", "world", "--out", str(out), "--images", "24", "--seed", "2",
                                      "--events", "3", "--refs", "2", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["images"] == 24 and len(summary["events"]) == 3
    assert summary["captions"] == {"plain": 48, "house": 48}
    assert len(list((out / "images").glob("*.png"))) == 24
    assert len(read_records(out / "house.jsonl")) == 24
    assert summary["examples"][0]["house"] == read_records(out / "house.jsonl")[0].captions[0]


def test_demo_world_text_summary_and_errors(tmp_path):
    runner = CliRunner()
    result = runner.invoke(cli, ["demo", "world", "--out", str(tmp_path), "--images", "10", "--style", "plain",
                                 "--size", "48"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("wrote 10 images")
    assert "plain: a" in result.output and "house:" not in result.output
    assert not (tmp_path / "house.jsonl").exists()
    bad = runner.invoke(cli, ["demo", "world", "--out", str(tmp_path / "x"), "--images", "10", "--events", "9"])
    assert bad.exit_code == 1 and "error: n_events=9" in bad.output
