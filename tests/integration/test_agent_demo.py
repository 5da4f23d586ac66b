"""The agent on the demo photo dump, through the CLI: every stage measured against the truth."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from captune.cli import cli

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("agent-demo")
    result = CliRunner().invoke(cli, ["demo", "agent", "--out", str(out), "--mode", "hybrid", "--json"])
    assert result.exit_code == 0, result.output
    return out, json.loads(result.stdout)


def test_demo_photos_meet_the_stage_targets(demo_run):
    _, summary = demo_run
    m = summary["metrics"]
    assert m["dedupe"]["precision"] >= 0.95 and m["dedupe"]["recall"] >= 0.95
    assert m["quality"]["recall"] >= 0.9
    assert m["events"]["ari"] >= 0.9
    assert summary["completeness"]["complete"] == summary["posts"] > 0
    assert summary["status"]["rejected"] == 3


def test_every_file_ends_somewhere_with_a_reason(demo_run):
    out, _ = demo_run
    files = {p.relative_to(out / "dump" / "photos").as_posix() for p in (out / "dump" / "photos").rglob("*")
             if p.is_file()}
    final = [json.loads(line) for line in (out / "stages" / "final.jsonl").read_text().splitlines()]
    assert {p["id"] for p in final} == files
    for p in final:
        assert p["status"] in ("posted", "duplicate", "low_quality", "beyond_selection", "rejected")
        assert p["post_id"] or p["duplicate_of"] or p["reason"]


def test_hybrid_posts_record_who_wrote_them(demo_run):
    out, _ = demo_run
    posts = [json.loads(line) for line in (out / "posts.jsonl").read_text().splitlines()]
    for post in posts:
        assert post["mode"] == "hybrid" and post["source"] in ("model", "template")
        assert (post["source"] == "template") == (post["fallback_reason"] is not None)
        assert post["clipscore"] is not None and len(post["images"]) <= 6
        text = (out / post["files"]["caption"]).read_text()
        assert post["caption"] in text and all(tag in text for tag in post["hashtags"])
    plan = [json.loads(line) for line in (out / "publish" / "plan.jsonl").read_text().splitlines()]
    assert [p["post_id"] for p in plan] == [p["post_id"] for p in posts] and not any(p["sent"] for p in plan)


def test_agent_run_command_on_the_dump_reuses_the_cache(demo_run, tmp_path):
    out, first = demo_run
    args = ["agent", "run", "--photos", str(out / "dump" / "photos"), "--out", str(tmp_path / "run"),
            "--truth", str(out / "dump" / "truth.json"), "--cache", str(out / "cache"),
            "embeddings.model=shapes-clip",
            "categorize.labels=[portrait, group photo, stage, night, outdoors, indoors, colourful]", "--json"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["embeddings"] == {"embedded": 0, "from_cache": first["embeddings"]["embedded"]}
    assert summary["metrics"]["dedupe"] == first["metrics"]["dedupe"]
    bad = CliRunner().invoke(cli, ["agent", "run", "--photos", str(out), "--out", str(tmp_path / "x"),
                                   "dedupe.clip_threshold=high"])
    assert bad.exit_code == 1 and "dedupe.clip_threshold" in bad.output


def test_agent_publish_plans_the_demo_posts_with_their_public_urls(demo_run):
    out, _ = demo_run
    base = "https://club.example.org/night"
    result = CliRunner().invoke(cli, ["agent", "publish", str(out), f"publisher.image_base_url={base}",
                                      "publisher.ig_user_id=17841400000000001", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["blockers"][0].startswith("--live")
    posts = [json.loads(line) for line in (out / "posts.jsonl").read_text().splitlines()]
    plan = [json.loads(line) for line in (out / "publish" / "plan.jsonl").read_text().splitlines()]
    assert [row["post_id"] for row in plan] == [p["post_id"] for p in posts]
    for row, post in zip(plan, posts):
        assert row["ready"] and row["images"] == post["files"]["images"]
        for relative, url in zip(row["images"], row["image_urls"]):
            assert url == f"{base}/{relative.removeprefix('posts/')}" and (out / relative).is_file()
        captions = [r["params"]["caption"] for r in row["requests"] if "caption" in r.get("params", {})]
        assert captions == [(out / post["files"]["caption"]).read_text(encoding="utf-8")]
    assert not (out / "publish" / "ledger.sqlite").exists()
