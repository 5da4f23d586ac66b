"""``captune review create`` / ``add-rater`` / ``export`` as a user types them."""

import json

from click.testing import CliRunner
from study_helpers import write_systems

from captune.cli import cli
from captune.review import Study


def test_create_prints_each_invite_once_and_add_rater_adds_one(tmp_path):
    systems = write_systems(tmp_path / "src", 5)
    args = [x for name, path in systems.items() for x in ("--system", f"{name}={path}")]
    runner = CliRunner()
    out = runner.invoke(cli, ["review", "create", str(tmp_path / "s"), *args, "--raters", "alice", "--items", "4"])
    assert out.exit_code == 0, out.output
    assert "4 items" in out.output and out.output.count("http://127.0.0.1:8000/login#token=") == 2
    token = out.output.split("alice")[1].split("#token=")[1].split()[0]
    study = Study(tmp_path / "s")
    assert study.login(token)[0].rater == "alice"
    added = runner.invoke(cli, ["review", "add-rater", str(tmp_path / "s"), "bob", "--json"])
    assert added.exit_code == 0 and study.login(json.loads(added.output)["token"])[0].rater == "bob"
    again = runner.invoke(cli, ["review", "create", str(tmp_path / "s"), *args])
    assert again.exit_code == 1 and "exists" in again.stderr
    bad = runner.invoke(cli, ["review", "create", str(tmp_path / "t"), "--system", "nopath"])
    assert bad.exit_code == 1 and "NAME=PATH" in bad.stderr
    empty = runner.invoke(cli, ["review", "export", str(tmp_path / "s"), "--out", str(tmp_path / "r.jsonl")])
    assert empty.exit_code == 0 and "wrote 0 lines" in empty.output
