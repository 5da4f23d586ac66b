"""Agent sweeps on a small demo dump (40 photos, 3 events): grids, stage reuse, resume, comparisons, findings."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from click.testing import CliRunner

import captune.agent.embed
import captune.agent.pipeline
from captune.agent.captioner import ModelCaptioner
from captune.agent.pipeline import ModelPool
from captune.agent.sweep import check_grid, combo_id, expand, parse_grid, run_sweep, sample
from captune.agent.sweep_compare import clipscore_delta, findings
from captune.cli import cli
from captune.demo.agent import CONFIG
from captune.errors import ConfigError
from captune.io import read_json

MODES = "captioner.mode=template,model,hybrid"


@pytest.fixture(scope="module")
def dump(tmp_path_factory):
    from captune.demo.photos import generate_photos

    root = tmp_path_factory.mktemp("sweep-dump")
    generate_photos(root, n_events=3, n_images=40, seed=0)
    return root / "photos", read_json(root / "truth.json")


@pytest.fixture(scope="module")
def pool():
    return ModelPool()


@pytest.fixture(scope="module")
def mode_sweep(dump, pool, tmp_path_factory):
    """A sweep over captioner.mode alone, counting every photo the CLIP decodes and every model load."""
    photos, truth = dump
    out = tmp_path_factory.mktemp("mode-sweep")
    decoded, loads = Counter(), Counter()
    mp = pytest.MonkeyPatch()
    real_open, real_load = captune.agent.embed.open_photo, captune.agent.embed._load
    mp.setattr(captune.agent.embed, "open_photo", lambda path, *a: decoded.update([path]) or real_open(path, *a))
    mp.setattr(captune.agent.embed, "_load", lambda cfg: loads.update(["clip"]) or real_load(cfg))
    real_captioner = ModelCaptioner.from_config

    def from_config(cls, cfg, batch_size=8):
        loads.update(["captioner"])
        return real_captioner(cfg, batch_size)

    mp.setattr(ModelCaptioner, "from_config", classmethod(from_config))
    try:
        sweep = run_sweep(expand(parse_grid([MODES])), photos, out, config=CONFIG, truth=truth, resamples=200,
                          pool=pool)
    finally:
        mp.undo()
    return sweep, decoded, loads


# ---- grids ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("spec, message", [
    ("cluster.k", "expected KEY=V1,V2"),
    ("=auto,5", "expected KEY=V1,V2"),
    ("cluster.k=", "an empty value"),
    ("cluster.k=auto,,5", "an empty value"),
    ("cluster.k=5,auto,5", "'5' given twice"),
])
def test_a_malformed_grid_names_its_argument(spec, message):
    with pytest.raises(ConfigError) as e:
        parse_grid([spec])
    assert f"--grid {spec!r}" in str(e.value) and message in str(e.value)


def test_a_key_swept_twice_is_refused():
    with pytest.raises(ConfigError, match="cluster.k is already swept"):
        parse_grid(["cluster.k=auto", "cluster.k=5"])


def test_unknown_keys_and_bad_values_name_the_grid_entry():
    with pytest.raises(ConfigError) as e:
        check_grid(parse_grid(["cluster.kk=3"]), CONFIG)
    assert "--grid cluster.kk=3" in str(e.value) and "unknown key" in str(e.value)
    with pytest.raises(ConfigError) as e:
        check_grid(parse_grid(["cluster.k=auto,abc"]), CONFIG)
    assert "--grid cluster.k=abc" in str(e.value)


def test_commas_inside_brackets_do_not_split():
    assert parse_grid(["categorize.labels=[a, b],[c]"]) == {"categorize.labels": ["[a, b]", "[c]"]}


def test_expand_and_a_seeded_sample():
    combos = expand(parse_grid(["cluster.k=auto,5,10", MODES]))
    assert len(combos) == 9 and combos[1] == {"cluster.k": "auto", "captioner.mode": "model"}
    picked = sample(combos, 4, seed=3)
    assert picked == sample(combos, 4, seed=3) and len(picked) == 4
    assert picked == [c for c in combos if c in picked]  # grid order kept
    assert sample(combos, 4, seed=4) != picked
    assert len({combo_id(c) for c in combos}) == 9


# ---- stage reuse and resume -------------------------------------------------------------------------
def test_a_mode_sweep_embeds_each_photo_once_and_loads_each_model_once(mode_sweep, dump):
    sweep, decoded, loads = mode_sweep
    photos, _ = dump
    assert len(sweep.rows) == 3
    readable = {p.as_posix() for p in photos.rglob("*") if p.is_file()}
    assert len(decoded) > 30 and set(decoded) <= readable
    assert max(decoded.values()) == 1  # each photo decoded for its embedding once in 3 runs
    assert len(decoded) == sweep.rows[0]["embedded"] and [r["embedded"] for r in sweep.rows[1:]] == [0, 0]
    assert all(set(r["cached_stages"].split(",")) >= {"ingest", "dedupe", "cluster"} for r in sweep.rows[1:])
    assert loads == Counter({"clip": 1, "captioner": 1})


def test_a_mode_sweep_writes_its_rows_report_and_paired_comparisons(mode_sweep):
    sweep, _, _ = mode_sweep
    out = sweep.out_dir
    lines = (out / "sweep.csv").read_text().splitlines()
    assert len(lines) == 4 and "captioner.mode" in lines[0] and "clipscore_ci_low" in lines[0]
    rows = [json.loads(x) for x in (out / "sweep.jsonl").read_text().splitlines()]
    assert [r["captioner.mode"] for r in rows] == ["template", "model", "hybrid"]
    for r in rows:
        assert (out / "runs" / r["id"] / "config.yaml").exists()
        assert r["dedupe_f1"] is not None and r["posts"] > 0
    pooled = {(c["a"], c["b"]): c for c in sweep.comparisons["pooled"]}
    assert set(pooled) == {("template", "model"), ("template", "hybrid"), ("model", "hybrid")}
    assert all(c["paired"] and c["n_a"] == rows[0]["posts"] for c in pooled.values())
    html = (out / "report.html").read_text()
    assert "Findings" in html and "CLIPScore by captioner.mode" in html
    assert "data:image/png" not in html  # one clustering: no silhouette or images-per-post plot to draw
    assert "| mode | silhouette |" in (out / "report.md").read_text()


def test_a_killed_sweep_resumes_without_redoing_finished_runs(dump, pool, tmp_path, monkeypatch):
    photos, truth = dump
    combos = expand(parse_grid(["cluster.max_images_per_post=2,4,6"]))
    real = captune.agent.pipeline.run_agent
    made = []

    def dies_at_the_second(cfg, photos_dir, out_dir, **kw):
        if cfg.cluster.max_images_per_post == 4 and not made.count("killed"):
            made.append("killed")
            raise RuntimeError("killed")
        made.append(out_dir.name)
        return real(cfg, photos_dir, out_dir, **kw)

    monkeypatch.setattr(captune.agent.pipeline, "run_agent", dies_at_the_second)
    with pytest.raises(RuntimeError, match="killed"):
        run_sweep(combos, photos, tmp_path, config=CONFIG, truth=truth, resamples=100, pool=pool)
    first = tmp_path / "runs" / combo_id(combos[0]) / "row.json"
    stamp = first.stat().st_mtime_ns
    assert not (tmp_path / "sweep.jsonl").exists()
    sweep = run_sweep(combos, photos, tmp_path, config=CONFIG, truth=truth, resamples=100, pool=pool)
    assert sweep.ran == [combo_id(c) for c in combos[1:]]
    assert made == [combo_id(combos[0]), "killed", *sweep.ran]
    assert first.stat().st_mtime_ns == stamp
    assert [r["cluster.max_images_per_post"] for r in sweep.rows] == [2, 4, 6]
    cached = [set(r["cached_stages"].split(",")) for r in sweep.rows[1:]]
    assert all({"ingest", "dedupe"} <= c and "cluster" not in c for c in cached)  # a cluster key: clusters anew
    assert (tmp_path / "plots" / "clipscore_images_per_post.png").exists()
    again = run_sweep(combos, photos, tmp_path, config=CONFIG, truth=truth, resamples=100, pool=pool,
                      overrides=["captioner.seed=1"])
    assert again.ran == [combo_id(c) for c in combos]  # another configuration: nothing reused


def test_a_sweep_resumed_on_other_photos_or_truth_reruns_its_finished_runs(dump, pool, tmp_path):
    """A finished run's row holds figures of its photos and truth: another folder or truth file must not reuse it."""
    import shutil

    photos, truth = dump
    combos = expand(parse_grid(["captioner.mode=template"]))
    first = run_sweep(combos, photos, tmp_path / "s", config=CONFIG, truth=truth, resamples=100, pool=pool)
    assert first.ran == [combo_id(combos[0])]
    fewer = tmp_path / "fewer"
    shutil.copytree(photos, fewer)
    next(p for p in sorted(fewer.rglob("*.jpg"))).unlink()
    again = run_sweep(combos, fewer, tmp_path / "s", config=CONFIG, truth=truth, resamples=100, pool=pool)
    assert again.ran == [combo_id(combos[0])]
    untruthed = run_sweep(combos, fewer, tmp_path / "s", config=CONFIG, truth=None, resamples=100, pool=pool)
    assert untruthed.ran == [combo_id(combos[0])]


# ---- comparisons and findings -------------------------------------------------------------------------
def _post(i: int, score: float, images=None) -> dict:
    return {"post_id": f"p{i:02d}", "images": images or [f"{i}.jpg"], "clipscore": score, "caption": f"c{i}"}


def test_identical_posts_are_compared_paired_and_others_unpaired():
    a = [_post(i, 0.2 + 0.01 * i) for i in range(12)]
    shifted = [_post(i, p["clipscore"] + 0.05) for i, p in enumerate(a)]
    paired = clipscore_delta(a, shifted, 500, 0)
    assert paired["paired"] and paired["delta"] == pytest.approx(0.05)
    assert paired["ci_low"] == pytest.approx(0.05) and paired["significant"]  # every post moved by +0.05
    other = [_post(i, p["clipscore"] + 0.05, [f"{i}.jpg", "x.jpg"]) for i, p in enumerate(a)]
    unpaired = clipscore_delta(a, other, 500, 0)
    assert not unpaired["paired"] and unpaired["p_value"] is None
    assert unpaired["ci_low"] < 0.05 < unpaired["ci_high"]  # the spread between posts now counts


def _comparison(a, b, delta, low, high, setting="all", key="captioner.mode"):
    return {"key": key, "a": a, "b": b, "setting": setting, "paired": True, "n_a": 30, "n_b": 30,
            "mean_a": 0.2, "mean_b": 0.2 + delta, "delta": delta, "ci_low": low, "ci_high": high,
            "p_value": 0.01, "significant": low > 0 or high < 0}


def test_findings_state_a_significant_difference_and_say_when_one_is_not():
    comparisons = {"resamples": 1000, "seed": 0, "labels": [],
                   "pooled": [_comparison("template", "model", 0.031, 0.012, 0.050),
                              _comparison("template", "hybrid", 0.004, -0.010, 0.018)],
                   "clipscore": [_comparison("template", "model", 0.031, 0.012, 0.050, {"cluster.k": 5}),
                                 _comparison("template", "hybrid", 0.004, -0.010, 0.018, {"cluster.k": 5}),
                                 _comparison(2, 6, -0.02, -0.03, -0.01, {"captioner.mode": "template"},
                                             "cluster.max_images_per_post")]}
    text = dict(findings(comparisons, [{"fallback_rate": 0.25}]))
    mode = " ".join(text["Captioner mode"])
    assert ("model captions score higher than template captions: mean CLIPScore 0.231 against 0.200, "
            "difference +0.031 (95% interval +0.012 to +0.050, 30 distinct posts, paired)") in mode
    assert ("hybrid against template: not significant; the difference +0.004 has a 95% interval -0.010 to +0.018, "
            "which includes zero") in mode
    assert "hybrid captions score" not in mode and "25% of its posts" in mode
    per_post = text["cluster.max_images_per_post"][0]
    assert per_post.startswith("cluster.max_images_per_post 2 → 6 (template captions): CLIPScore higher in 0 of 1 "
                               "settings, lower in 1")
    advice = " ".join(text["What to use"])
    assert "captioner.mode=model: significantly higher CLIPScore than template" in advice
    assert "cluster.max_images_per_post=2: significantly higher CLIPScore than 6" in advice
    assert "5 intervals were computed; at 95% each excludes zero by chance alone 1 time in 20 (about 0.2" in advice


def test_the_sweep_command_names_a_bad_grid_and_runs_a_small_one(dump, tmp_path):
    photos, _ = dump
    bad = CliRunner().invoke(cli, ["agent", "sweep", str(CONFIG), "--photos", str(photos), "--out", str(tmp_path),
                                   "--grid", "cluster.k=auto,five"])
    assert bad.exit_code == 1 and "--grid cluster.k=five" in bad.stderr and "Traceback" not in bad.output
    assert not (tmp_path / "runs").exists()
    ran = CliRunner().invoke(cli, ["agent", "sweep", str(CONFIG), "--photos", str(photos), "--out", str(tmp_path),
                                   "--grid", "cluster.k=auto,5", "--sample", "1", "--resamples", "100", "--json"])
    assert ran.exit_code == 0, ran.output
    rows = json.loads(ran.stdout)["rows"]
    assert len(rows) == 1 and rows[0]["cluster.k"] in ("auto", 5) and (tmp_path / "report.html").exists()


POOLED = """
import json
from captune.agent.sweep_compare import pooled_modes
posts = {m: [{"post_id": f"p{i:02d}", "images": [f"{i}.jpg"], "caption": m + str(i),
              "clipscore": (i * 37 % 11 if m == "model" else i * 53 % 7) / 10} for i in range(15)]
         for m in ("template", "model")}
rows = [{"id": m, "captioner.mode": m} for m in posts]
print(json.dumps(pooled_modes(rows, ["captioner.mode"], posts, 200, 0)))
"""


def test_pooled_intervals_do_not_depend_on_the_hash_seed():
    import os
    import subprocess
    import sys

    out = [subprocess.run([sys.executable, "-c", POOLED], capture_output=True, text=True, check=True,
                          env={**os.environ, "PYTHONHASHSEED": seed}).stdout for seed in ("1", "2", "3")]
    assert json.loads(out[0])[0]["n_a"] == 15
    assert out[0] == out[1] == out[2]


def test_the_demo_study_and_its_flags():
    from captune.demo.agent import SWEEP_GRID, demo_sweep_combos

    default, full = demo_sweep_combos(), demo_sweep_combos(full=True)
    assert len(default) == 31 and len(full) == 243 and len({combo_id(c) for c in full}) == 243
    assert {c["captioner.mode"] for c in default[:27]} == set(SWEEP_GRID["captioner.mode"])
    refused = CliRunner().invoke(cli, ["demo", "agent", "--sweep", "--mode", "model", "--out", "unused"])
    assert refused.exit_code == 2 and "--mode and --sweep" in refused.output
