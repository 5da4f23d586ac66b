"""``captune demo --review``: after the demo, a study of base vs fine-tuned on the test images."""

import json

from click.testing import CliRunner
from study_helpers import write_systems

from captune.cli import cli
from captune.demo.run import demo_review_study
from captune.review import Study


def _fake_demo(out, n=7):
    """The demo's two evaluation folders, as far as a study reads them (eval.json's per_image)."""
    systems = write_systems(out / "src", n)
    for name, path in zip(("base", "finetuned"), systems.values()):
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        (out / "run" / "eval" / name).mkdir(parents=True)
        (out / "run" / "eval" / name / "eval.json").write_text(json.dumps({"per_image": rows}))


def test_the_demo_study_compares_base_and_finetuned_on_the_test_images(tmp_path):
    _fake_demo(tmp_path)
    lines = []
    made = demo_review_study(tmp_path, 0, lines.append)
    study = Study(made["study"])
    assert made["serve"] == f"captune review serve {tmp_path / 'review'}"
    assert study.systems() == ["base", "finetuned"] and study.pairwise and study.counts()["items"] == 7
    links = [line.split()[-1] for line in lines if "#token=" in line]
    assert len(links) == 3 and all(study.login(link.split("#token=")[1]) for link in links)
    assert lines[-1].endswith(made["serve"])


def test_demo_help_offers_review():
    result = CliRunner().invoke(cli, ["demo", "--help"])
    assert "--review" in result.output and "OUT/review" in result.output
