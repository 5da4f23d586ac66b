"""The report's "Human ratings" section from a review study's export (``captune review create``
on the run's evaluations, ratings through the study, ``captune review export``,
``captune report RUN --ratings``)."""

import json
from pathlib import Path

import krippendorff
from click.testing import CliRunner

from captune.cli import cli
from captune.review import Study


def _rate_all(study: Study) -> None:
    """Alice and bob give the fine-tuned caption 5 and the base 2 (bob: 3) on relevance, and prefer it."""
    with study.read() as db:
        raters = db.execute("SELECT id, name FROM raters WHERE role = 'rater'").fetchall()
    names = study.systems()
    for rater_id, name in raters:
        while (item := study.next_item(rater_id)) is not None:
            order = study.slots(rater_id, item["item_id"])
            slots = {c["slot"]: names[order[k] - 1] for k, c in enumerate(item["captions"])}
            scores = {s: {"relevance": 5 if system == "finetuned" else 2 + (name == "bob")}
                      for s, system in slots.items()}
            best = next(s for s, system in slots.items() if system == "finetuned")
            study.save_rating(rater_id, item["item_id"], scores, best)


def test_an_exported_study_fills_the_human_ratings_section(report_run, tmp_path):
    runner = CliRunner()
    made = runner.invoke(cli, ["review", "create", str(tmp_path / "study"), "--system",
                               f"base={report_run['base']}", "--system", f"finetuned={report_run['finetuned']}",
                               "--criteria", "relevance", "--pairwise", "--raters", "alice,bob", "--json"])
    assert made.exit_code == 0, made.output
    assert set(json.loads(made.output)["raters"]) == {"alice", "bob"}
    _rate_all(Study(tmp_path / "study"))
    ratings = tmp_path / "ratings.jsonl"
    exported = runner.invoke(cli, ["review", "export", str(tmp_path / "study"), "--out", str(ratings), "--json"])
    assert exported.exit_code == 0, exported.output
    n_items = json.loads(made.output)["items"]
    assert json.loads(exported.output)["lines"] == n_items * 2 * 2  # items x raters x systems
    written = runner.invoke(cli, ["report", str(report_run["run"]), "--ratings", str(ratings), "--out",
                                  str(tmp_path / "report"), "--resamples", "100", "--json"])
    assert written.exit_code == 0, written.output
    md = Path(json.loads(written.output)["markdown"]).read_text()
    section = md.split("## Human ratings")[1].split("## Configuration")[0]
    assert f"{2 * n_items} ratings by 2 raters of {n_items} items" in section
    assert "| base | 2.50 [2.50, 2.50] |" in section and "| finetuned | 5 [5, 5] |" in section
    # units: base (2 by alice, 3 by bob) and finetuned (5, 5) on every item; pairs agree on half the units;
    # kappa: P = 1/2, P_e = 2 (1/4)^2 + (1/2)^2 = 3/8 -> (1/2 - 3/8) / (5/8) = 0.2
    alpha = krippendorff.alpha(reliability_data=[[2, 5] * n_items, [3, 5] * n_items], level_of_measurement="ordinal")
    assert f"| relevance | {alpha:.3f} | 50% | 0.200 | {2 * n_items} |" in section
    assert "| system | relevance |\n|---|---:|\n| base |" in section  # one table, no blank line inside
    assert "Bradley-Terry" in section and "| finetuned | +" in section
    html = Path(json.loads(written.output)["html"]).read_text()
    assert "Krippendorff&#39;s alpha (ordinal)" in html or "Krippendorff's alpha (ordinal)" in html
