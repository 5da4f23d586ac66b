"""The agent end to end on real photographs (hash path, the shipped tiny CLIP): files, accounting, cache."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from real_photos import dump, sample, save

from captune.agent.config import AgentConfig
from captune.agent.pipeline import run_agent
from captune.config import load_config
from captune.io import read_jsonl

END_STATES = {"posted", "duplicate", "low_quality", "beyond_selection", "rejected"}
OVERRIDES = ["embeddings.model=shapes-clip", "dedupe.method=hash", "captioner.montage_tile_px=96"]


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("agent")
    photos = root / "photos"
    truth = dump(photos)
    cfg = load_config(AgentConfig, None, OVERRIDES)
    return root, photos, truth, run_agent(cfg, photos, root / "out", truth=truth)


def test_every_file_is_accounted_for_with_a_reason(first_run):
    root, photos, _, run = first_run
    files = {p.relative_to(photos).as_posix() for p in photos.rglob("*") if p.is_file()}
    ingested = read_jsonl(root / "out" / "stages" / "ingest.jsonl")
    assert {r["id"] for r in ingested} == files
    final = {p.id: p for p in run.photos}
    assert set(final) == files
    for p in final.values():
        assert p.status in END_STATES, p
        if p.status == "posted":
            assert p.post_id in {post.post_id for post in run.posts}
        elif p.status == "duplicate":
            assert p.duplicate_of in final and p.duplicate_reason in ("exact", "hash")
        else:
            assert p.reason, p
    posted = sorted(i for post in run.posts for i in post.images)
    assert posted == sorted(i for i, p in final.items() if p.status == "posted")


def test_outputs_and_metrics(first_run):
    root, _, _, run = first_run
    out = root / "out"
    for name in ("config.yaml", "posts.jsonl", "summary.json", "report.html", "publish/plan.jsonl",
                 "stages/dedupe.jsonl", "stages/labels.jsonl", "stages/clusters.jsonl"):
        assert (out / name).exists(), name
    for post in run.posts:
        folder = out / "posts" / post.post_id
        assert (folder / "montage.jpg").exists() and (folder / "caption.txt").exists()
        assert len(list(folder.glob("[0-9][0-9].jpg"))) == len(post.images)
        assert post.caption and post.hashtags and not post.problems
    summary = json.loads((out / "summary.json").read_text())
    m = summary["metrics"]
    assert m["dedupe"]["recall"] == 1.0 and m["dedupe"]["precision"] == 1.0
    assert m["quality"]["recall"] == 1.0
    assert m["events"]["ari"] == 1.0  # two events five hours apart
    assert summary["status"]["rejected"] == 2  # the text file and the empty .jpg
    html = (out / "report.html").read_text()
    assert "morning/rocket_blurred.jpg" in html and "empty file" in html


def test_rerun_reads_the_cache_and_new_photos_are_the_only_ones_embedded(first_run, tmp_path: Path):
    root, photos, truth, first = first_run
    cfg = load_config(AgentConfig, None, OVERRIDES)
    again = run_agent(cfg, photos, root / "out", truth=truth)
    assert again.summary["embeddings"]["embedded"] == 0
    assert {"ingest", "dedupe", "cluster"} <= set(again.summary["cached_stages"])
    assert [p.to_json() for p in again.posts] == [p.to_json() for p in first.posts]
    grown = tmp_path / "photos"
    shutil.copytree(photos, grown)
    save(sample("hubble_deep_field"), grown / "evening" / "stars.jpg")
    third = run_agent(cfg, grown, tmp_path / "out", truth=truth, cache_dir=root / "out" / "cache")
    assert third.summary["embeddings"]["embedded"] == 1


def test_label_fused_clusters_are_not_reused_when_the_label_scores_change(first_run, tmp_path: Path):
    """With cluster.use_label_features the clusters depend on every label's score, not only on the labels
    kept: a label added to categorize.labels that no photo keeps (threshold 1) must still recluster."""
    root, photos, _, _ = first_run
    fused = [*OVERRIDES, "cluster.use_label_features=true", "categorize.threshold=1.0"]
    cache = root / "out" / "cache"
    first = run_agent(load_config(AgentConfig, None, fused), photos, tmp_path / "a", cache_dir=cache)
    labels = AgentConfig().categorize.labels
    more = load_config(AgentConfig, None, [*fused, f"categorize.labels=[{','.join(labels)},a bicycle]"])
    again = run_agent(more, photos, tmp_path / "b", cache_dir=cache)
    assert [p.labels for p in again.photos] == [p.labels for p in first.photos]  # the same labels kept
    assert "cluster" not in again.summary["cached_stages"]


def test_config_file_errors_name_the_line(tmp_path: Path):
    from captune.errors import ConfigError

    bad = tmp_path / "agent.yaml"
    bad.write_text("dedupe:\n  clip_treshold: 0.9\n")
    with pytest.raises(ConfigError, match=r"agent.yaml:2: dedupe.clip_treshold: unknown key"):
        load_config(AgentConfig, bad)


def test_the_shipped_default_config_is_the_schema_default():
    default = Path(__file__).resolve().parents[3] / "configs" / "agent" / "default.yaml"
    assert load_config(AgentConfig, default) == AgentConfig()
