"""Grid search: the grid, its errors, runs ranked on validation, resumed after a kill, the report."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from captune.cli import cli
from captune.config import split_values
from captune.errors import CaptuneError, ConfigError
from captune.io import read_json, read_jsonl
from captune.train.loop import Finetune
from captune.train.sweep import SweepSpec, parse_grid, plan_runs, run_name, run_sweep

CONFIG = Path(__file__).parents[3] / "configs" / "finetune" / "tiny-lora.yaml"


def tiny(data, *extra) -> list[str]:
    """Overrides that make every run of configs/finetune/tiny-lora.yaml a few seconds long."""
    return [f"data.train={data}", f"data.val={data}", "train.max_steps=4", "eval.every_steps=2",
            "train.batch_size=4", "eval.metrics=[]", "train.log_every_steps=1", *extra]


def events(run_dir, kind):
    return [e for e in read_jsonl(Path(run_dir) / "metrics.jsonl") if e["event"] == kind]


def crash_at(monkeypatch, run_folder: str, step: int):
    """Make the run in ``run_folder`` die (as if killed) right after optimizer step ``step``."""
    original = Finetune._after_step

    def after_step(self):
        original(self)
        if Path(self.cfg.output_dir).name == run_folder and self.state.step == step:
            raise KeyboardInterrupt

    monkeypatch.setattr(Finetune, "_after_step", after_step)
    return lambda: monkeypatch.setattr(Finetune, "_after_step", original)


# ---- the grid --------------------------------------------------------------------------------

def test_grid_values_split_at_top_level_commas_only():
    assert split_values("1e-5, 5e-5") == ["1e-5", "5e-5"]
    assert split_values("[q_proj,v_proj],all_linear") == ["[q_proj,v_proj]", "all_linear"]
    assert split_values("'a,b',{k: 1, j: 2}") == ["'a,b'", "{k: 1, j: 2}"]
    grid = parse_grid(["train.lr=1e-5,5e-5", "finetune.targets=[q_proj,v_proj],all_linear"])
    assert grid == {"train.lr": ["1e-5", "5e-5"], "finetune.targets": ["[q_proj,v_proj]", "all_linear"]}


@pytest.mark.parametrize(("specs", "message"), [
    (["train.lr"], r"--grid 'train.lr': expected KEY=V1,V2"),
    (["train.lr=1e-5", "train.lr=5e-5"], r"--grid 'train.lr=5e-5': train.lr is already swept"),
    (["train.lr=1e-5,,5e-5"], r"--grid 'train.lr=1e-5,,5e-5': an empty value"),
    (["finetune.method=lora,lora"], r"--grid 'finetune.method=lora,lora': 'lora' given twice"),
    (["output_dir=a,b"], r"--grid 'output_dir=a,b': output_dir cannot be a grid key"),
    (["eval.monitor=val_loss,cider"], r"--grid 'eval.monitor=val_loss,cider': eval.monitor cannot be a grid key"),
    ([], r"give at least one --grid"),
])
def test_grid_errors_name_the_key(specs, message):
    with pytest.raises(ConfigError, match=message):
        parse_grid(specs)


@pytest.mark.parametrize(("grid", "named"), [
    ({"train.lr": ["1e-3", "fast"]}, r"(?s)grid run lr=fast: .*override 'train.lr=fast': train.lr"),
    ({"train.lrate": ["1e-3"]}, r"(?s)grid run lrate=1e-3: .*train.lrate: unknown key"),
    ({"finetune.method": ["lora", "loha"]}, r"(?s)grid run method=loha: .*finetune.method"),
])
def test_a_bad_grid_value_or_key_is_named_before_anything_trains(colour_data, tmp_path, grid, named):
    with pytest.raises(ConfigError, match=named):
        plan_runs(SweepSpec(CONFIG, grid, tmp_path / "sweep", tiny(colour_data)))
    assert not (tmp_path / "sweep").exists()


def test_a_key_in_the_grid_and_the_overrides_and_a_sweep_without_validation_are_refused(colour_data, tmp_path):
    with pytest.raises(ConfigError, match="train.max_steps is both a --grid key and an override"):
        plan_runs(SweepSpec(CONFIG, {"train.max_steps": ["2", "4"]}, tmp_path, tiny(colour_data)))
    with pytest.raises(ConfigError, match="set data.val"):
        plan_runs(SweepSpec(CONFIG, {"train.lr": ["1e-3"]}, tmp_path, [f"data.train={colour_data}", "data.val=null"]))


def test_run_names_spell_the_values_and_stay_folder_names():
    assert run_name({"train.lr": "1e-5", "finetune.method": "lora"}) == "lr=1e-5,method=lora"
    assert run_name({"model.name": "Salesforce/blip2-opt-2.7b"}) == "name=Salesforce-blip2-opt-2.7b"
    assert run_name({"train.seed": "1", "eval.seed": "2"}) == "train.seed=1,eval.seed=2"
    assert run_name({"finetune.targets": "[q_proj, v_proj]"}) == "targets=q_proj-v_proj"


# ---- runs ------------------------------------------------------------------------------------

def test_two_runs_are_ranked_by_validation_loss_and_a_killed_one_resumes(colour_data, tmp_path, monkeypatch):
    out = tmp_path / "sweep"
    spec = SweepSpec(CONFIG, {"train.lr": ["1e-3", "3e-3"]}, out, tiny(colour_data))
    restore = crash_at(monkeypatch, "lr=3e-3", step=3)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(spec, log=lambda s: None)
    restore()
    assert [e["step"] for e in events(out / "runs" / "lr=3e-3", "checkpoint") if e["which"] == "last"] == [2]
    first_log = (out / "runs" / "lr=1e-3" / "metrics.jsonl").read_text()

    summary = run_sweep(spec, log=lambda s: None)
    status = {r["name"]: r["status"] for r in summary["runs"]}
    assert status == {"lr=1e-3": "finished earlier", "lr=3e-3": "resumed"}
    assert (out / "runs" / "lr=1e-3" / "metrics.jsonl").read_text() == first_log  # not trained again
    assert [e["resumed_at"] for e in events(out / "runs" / "lr=3e-3", "resume")] == [2]
    scores = [r["score"] for r in summary["runs"]]
    assert scores == sorted(scores) and [r["rank"] for r in summary["runs"]] == [1, 2]
    for r in summary["runs"]:
        best = events(r["dir"], "end")[-1]
        assert r["score"] == best["best_score"] and r["steps"] == 4
        assert r["score"] == min(e["val_loss"] for e in events(r["dir"], "eval"))
    assert read_json(out / "sweep.json")["best"] == summary["runs"][0]["name"]
    html = (out / "report.html").read_text()
    cells = [html.index(f'<td class="run">{r["name"]}</td>') for r in summary["runs"]]
    assert cells == sorted(cells)  # best first
    assert html.count("data:image/png;base64,") == 1


def test_a_run_folder_made_with_other_settings_stops_the_sweep(colour_data, tmp_path):
    out = tmp_path / "sweep"
    run_sweep(SweepSpec(CONFIG, {"train.lr": ["1e-3"]}, out, tiny(colour_data)), log=lambda s: None)
    other = SweepSpec(CONFIG, {"train.lr": ["1e-3"]}, out, tiny(colour_data, "train.weight_decay=0.5"))
    with pytest.raises(CaptuneError, match=r"lr=1e-3/config.yaml: this run was made with train.weight_decay=0.01"):
        run_sweep(other, log=lambda s: None)


@pytest.mark.slow
def test_a_grid_of_eight_runs_completes_resumes_after_a_kill_and_ranks_its_runs(colour_data, tmp_path, monkeypatch):
    out = tmp_path / "sweep"
    args = ["sweep", "train", str(CONFIG), "--grid", "train.lr=1e-3,3e-3", "--grid", "finetune.method=lora,rslora",
            "--grid", "finetune.targets=query_value,all_linear", "--out", str(out), "--test", str(colour_data),
            "--top", "2", "--metrics", "bleu_4,cider", "--resamples", "100", *tiny(colour_data), "--json"]
    # One run dies after its first checkpoint, the next before any: resumed, and started again.
    restore = crash_at(monkeypatch, "lr=1e-3,method=rslora,targets=query_value", step=3)
    killed = CliRunner().invoke(cli, args)
    assert killed.exit_code == 1 and "Aborted" in killed.output  # click's answer to the interrupt
    restore()
    restore = crash_at(monkeypatch, "lr=1e-3,method=rslora,targets=all_linear", step=1)
    assert CliRunner().invoke(cli, args).exit_code == 1
    restore()
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output[result.output.index("{"):])
    by_name = {r["name"]: r for r in summary["runs"]}
    grid_order = [f"lr={a},method={b},targets={c}" for a in ("1e-3", "3e-3") for b in ("lora", "rslora")
                  for c in ("query_value", "all_linear")]
    assert [by_name[n]["status"] for n in grid_order] == ["finished earlier"] * 3 + ["trained"] * 5
    resumed = by_name["lr=1e-3,method=rslora,targets=query_value"]["dir"]
    assert [e["resumed_at"] for e in events(resumed, "resume")] == [2]
    restarted = by_name["lr=1e-3,method=rslora,targets=all_linear"]["dir"]
    assert len(events(restarted, "start")) == 1 and not events(restarted, "resume")
    assert [r["rank"] for r in summary["runs"]] == list(range(1, 9))
    scores = [r["score"] for r in summary["runs"]]
    assert scores == sorted(scores)
    tested = [r for r in summary["runs"] if r.get("test")]
    assert [r["rank"] for r in tested] == [1, 2]
    assert set(tested[0]["test"]["compare"]) == {"bleu_4", "cider"}
    assert (Path(tested[0]["dir"]) / "eval" / "compare.json").exists()
    html = (out / "report.html").read_text()
    order = [html.index(f'<td class="run">{r["name"]}</td>') for r in summary["runs"]]
    assert order == sorted(order)
    assert len(re.findall(r"against its base model", html)) == 2


@pytest.mark.slow
def test_parallel_runs_are_processes_that_share_out_the_cpu_threads(colour_data, tmp_path):
    import os

    out = tmp_path / "sweep"
    summary = run_sweep(SweepSpec(CONFIG, {"train.lr": ["1e-3", "3e-3"]}, out, tiny(colour_data), parallel=2),
                        log=lambda s: None)
    cpus = len(os.sched_getaffinity(0))
    for r in summary["runs"]:
        assert r["status"] == "trained"
        start = events(r["dir"], "start")[0]
        assert f"{max(1, cpus // 2)} threads" in start["hardware"]
        assert (Path(r["dir"]) / "train.log").exists()
    assert [r["rank"] for r in summary["runs"]] == [1, 2]


def test_a_grid_over_models_tests_each_run_against_its_own_base(colour_data, tmp_path):
    out = tmp_path / "sweep"
    spec = SweepSpec(CONFIG, {"model.name": ["tiny-blip2-opt", "tiny-blip2-t5"]}, out,
                     tiny(colour_data, "train.max_steps=2", "eval.decoding.num_beams=2"), test=colour_data, top=2,
                     metrics=["bleu_4"], resamples=50)
    summary = run_sweep(spec, log=lambda s: None)
    bases = {r["name"]: Path(r["test"]["base"]).name for r in summary["runs"]}
    assert bases == {"name=tiny-blip2-opt": "base-tiny-blip2-opt", "name=tiny-blip2-t5": "base-tiny-blip2-t5"}
    for r in summary["runs"]:
        base = read_json(Path(r["test"]["base"]) / "eval.json")
        tuned = read_json(Path(r["test"]["finetuned"]) / "eval.json")
        assert base["model"]["base_model"] == tuned["model"]["base_model"] == r["values"]["model.name"]
        for ev in (base, tuned):  # decoded as in validation
            assert (ev["config"]["decoding"]["strategy"], ev["config"]["decoding"]["num_beams"]) == ("beam", 2)
        assert set(r["test"]["compare"]) == {"bleu_4"}


def test_each_process_gets_its_share_of_threads_and_a_gpu_in_turn(monkeypatch):
    from captune.train.sweep import visible_gpus, worker_env

    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(16)))
    env = worker_env(slot=2, parallel=3, gpus=["4", "5"])
    assert env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "5" and env["CUDA_VISIBLE_DEVICES"] == "4"
    assert worker_env(slot=1, parallel=3, gpus=["4", "5"])["CUDA_VISIBLE_DEVICES"] == "5"
    assert worker_env(slot=0, parallel=32, gpus=[])["OMP_NUM_THREADS"] == "1"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2, 3")
    assert visible_gpus() == ["2", "3"]
