"""Recipes: the shipped files load, name their command and hold valid configurations; placeholders
are checked at load time and filled per word; a rerun skips finished steps; lets read earlier output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from captune.cli import cli
from captune.config import load_config
from captune.errors import CaptuneError, ConfigError
from captune.recipe import (
    RECIPES_DIR,
    fill,
    list_recipes,
    load_recipe,
    run_in_subprocess,
    run_recipe,
    step_argv,
    values_for,
)

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ["club-montage", "flickr8k-flan-t5", "gsd-opt-full", "hm-multimodel", "zappos-attributes"]


def write_recipe(path: Path, **fields) -> Path:
    base = {"name": "t", "about": "a test", "model": "m", "steps": [{"name": "one", "run": "models list"}]}
    path.write_text("# captune recipe run t\n" + yaml.safe_dump(base | fields, sort_keys=False))
    return path


def test_five_recipes_ship_in_the_package_and_configs_recipes_is_the_same_folder():
    assert list(list_recipes()) == SHIPPED
    assert (ROOT / "configs" / "recipes").resolve() == RECIPES_DIR.resolve()


@pytest.mark.parametrize("name", SHIPPED)
def test_a_shipped_recipe_names_its_command_and_its_files_are_valid_configurations(name, tmp_path):
    recipe = load_recipe(name)
    first = (RECIPES_DIR / f"{name}.yaml").read_text().splitlines()[0]
    assert recipe.name == name and first.startswith(f"# captune recipe run {name} --data ")
    if "finetune" in recipe.files:
        from captune.train.config import TrainConfig

        path = tmp_path / "finetune.yaml"
        path.write_text(yaml.safe_dump(recipe.files["finetune"]))
        load_config(TrainConfig, path)
    if "clean" in recipe.files:
        from captune.data.clean import CleanConfig

        CleanConfig.model_validate(recipe.files["clean"])


def test_an_unknown_placeholder_is_refused_at_load_naming_the_step(tmp_path):
    path = write_recipe(tmp_path / "t.yaml", steps=[{"name": "one", "run": "train {finetun} output_dir={out}"}])
    with pytest.raises(ConfigError, match=r"steps\.0\.run: unknown placeholder \{finetun\}"):
        load_recipe(path)


def test_a_let_may_use_the_lets_before_it_but_not_a_later_step_s(tmp_path):
    lets = {"a": {"file": "{out}/x.json", "key": "k"}, "b": {"file": "{out}/{a}.json", "key": "k"}}
    load_recipe(write_recipe(tmp_path / "ok.yaml", steps=[{"name": "one", "run": "x {b}", "let": lets}]))
    bad = [{"name": "one", "run": "x {a}"}, {"name": "two", "run": "y", "let": {"a": lets["a"]}}]
    with pytest.raises(ConfigError, match=r"steps\.0\.run: unknown placeholder \{a\}"):
        load_recipe(write_recipe(tmp_path / "bad.yaml", steps=bad))


def test_names_are_declared_once_and_builtins_are_reserved(tmp_path):
    with pytest.raises(ConfigError, match="already declared in params"):
        load_recipe(write_recipe(tmp_path / "a.yaml", params={"vocab": 1}, files={"vocab": {"colour": ["red"]}}))
    with pytest.raises(ConfigError, match="params.out"):
        load_recipe(write_recipe(tmp_path / "b.yaml", params={"out": "x"}))


def test_words_are_split_first_then_filled_so_a_value_with_spaces_stays_one_argument(tmp_path):
    recipe = load_recipe(write_recipe(
        tmp_path / "t.yaml", params={"prompt": "About '{event}': {labels}", "steps": None, "flag": True},
        steps=[{"name": "one", "run": "train data.prompt={prompt} train.max_steps={steps} x={flag} '{{literal}}'"}]))
    values = values_for(recipe, "d.jsonl", "runs/t")
    assert step_argv(recipe.steps[0], values) == [
        "train", "data.prompt=About '{event}': {labels}", "train.max_steps=null", "x=true", "{literal}"]
    assert fill("{data} -> {out}", values) == "d.jsonl -> runs/t"


def test_inputs_are_required_and_only_declared_names_can_be_set(tmp_path):
    recipe = load_recipe(write_recipe(tmp_path / "t.yaml", inputs={"photos": "a folder"}, params={"lr": 0.1},
                                      steps=[{"name": "one", "run": "x {photos} {lr} {model}"}]))
    with pytest.raises(CaptuneError, match=r"needs photos=\.\.\. \(a folder\)"):
        values_for(recipe, "d", "o")
    with pytest.raises(CaptuneError, match="'epochs=3': expected NAME=VALUE with NAME one of recipe t's lr, photos"):
        values_for(recipe, "d", "o", overrides=["photos=p", "epochs=3"])
    values = values_for(recipe, "d", "o", model="tiny-blip2-t5", overrides=["photos=p", "lr=0.5"])
    assert (values["model"], values["lr"], values["photos"]) == ("tiny-blip2-t5", "0.5", "p")


def test_model_is_refused_for_a_recipe_whose_models_are_params():
    with pytest.raises(CaptuneError, match="has no {model}: set its models with its params"):
        values_for(load_recipe("hm-multimodel"), "d", "o", model="tiny-llava", overrides=["attributes=a.yaml"])


def test_a_rerun_skips_finished_steps_until_the_first_that_changed(tmp_path):
    steps = [{"name": "a", "run": "cmd-a {config}"}, {"name": "b", "run": "cmd-b {lr}"}, {"name": "c", "run": "cmd-c"}]
    recipe = load_recipe(write_recipe(tmp_path / "t.yaml", params={"lr": 1}, files={"config": {"k": 1}},
                                      steps=steps))
    ran: list[list[str]] = []
    out = tmp_path / "out"
    run_recipe(recipe, "d", out, execute=ran.append, log=lambda _: None)
    assert [a[0] for a in ran] == ["cmd-a", "cmd-b", "cmd-c"]
    assert yaml.safe_load((out / "recipe" / "config.yaml").read_text()) == {"k": 1}
    ran.clear()
    summary = run_recipe(recipe, "d", out, overrides=["lr=2"], execute=ran.append, log=lambda _: None)
    assert ran == [["cmd-b", "2"], ["cmd-c"]]  # c did not change, but ran after b did
    assert [s.get("skipped", False) for s in summary["steps"]] == [True, False, False]
    ran.clear()
    run_recipe(recipe, "d", out, overrides=["lr=2"], execute=ran.append, log=lambda _: None)
    assert ran == []
    recorded = json.loads((out / "recipe.json").read_text())
    assert recorded["recipe"] == "t" and recorded["steps"][1]["command"] == "captune cmd-b 2"


def test_a_changed_file_reruns_the_step_that_reads_it(tmp_path):
    recipe = load_recipe(write_recipe(tmp_path / "t.yaml", files={"config": {"k": 1}},
                                      steps=[{"name": "a", "run": "cmd-a {config}"}]))
    ran: list[list[str]] = []
    run_recipe(recipe, "d", tmp_path / "out", execute=ran.append, log=lambda _: None)
    mine = tmp_path / "mine.yaml"
    mine.write_text("k: 2\n")
    run_recipe(recipe, "d", tmp_path / "out", overrides=[f"config={mine}"], execute=ran.append, log=lambda _: None)
    mine.write_text("k: 3\n")
    run_recipe(recipe, "d", tmp_path / "out", overrides=[f"config={mine}"], execute=ran.append, log=lambda _: None)
    assert len(ran) == 3 and ran[1] == ran[2] == ["cmd-a", str(mine)]


def test_a_let_reads_a_value_an_earlier_step_wrote(tmp_path):
    lets = {"best": {"file": "{out}/sweep.json", "key": "runs.1.name"},
            "base": {"file": "{out}/runs/{best}/config.yaml", "key": "model.name"}}
    steps = [{"name": "grid", "run": "sweep"}, {"name": "eval", "run": "evaluate {base} {out}/runs/{best}", "let": lets}]
    recipe = load_recipe(write_recipe(tmp_path / "t.yaml", steps=steps))
    out = tmp_path / "out"

    def execute(argv):
        if argv == ["sweep"]:
            (out / "runs" / "r2").mkdir(parents=True)
            (out / "runs" / "r2" / "config.yaml").write_text("model:\n  name: tiny-llava\n")
            (out / "sweep.json").write_text(json.dumps({"runs": [{"name": "r1"}, {"name": "r2"}]}))
        ran.append(argv)

    ran: list[list[str]] = []
    run_recipe(recipe, "d", out, execute=execute, log=lambda _: None)
    assert ran[1] == ["evaluate", "tiny-llava", f"{out}/runs/r2"]
    lets["best"]["key"] = "runs.5.name"
    with pytest.raises(CaptuneError, match=r"sweep.json: no 'runs.5.name' in it \('5' is missing\)"):
        run_recipe(load_recipe(write_recipe(tmp_path / "t2.yaml", steps=steps)), "d", out,
                   execute=execute, log=lambda _: None)  # the grid step is done: skipped


def test_a_failing_step_names_the_recipe_the_step_and_its_command(tmp_path):
    recipe = load_recipe(write_recipe(tmp_path / "t.yaml", steps=[{"name": "bad", "run": "data split {data} --out {out}"}]))
    with pytest.raises(CaptuneError, match=r"recipe t, step bad \(captune data split nowhere.jsonl --out .*\): "
                                           r"exited with status 2 \(its error is printed above\)"):
        run_recipe(recipe, "nowhere.jsonl", tmp_path / "out", log=lambda _: None)  # the default: a subprocess


def test_the_subprocess_runner_runs_captune():
    run_in_subprocess(["models", "list"])


def test_cli_lists_the_recipes_and_prints_a_plan_without_running(tmp_path):
    listed = CliRunner().invoke(cli, ["recipe", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.output)
    assert [r["name"] for r in rows] == SHIPPED and rows[0]["inputs"] == {"photos": rows[0]["inputs"]["photos"]}
    data = tmp_path / "posts.jsonl"
    data.write_text("")
    plan = CliRunner().invoke(cli, ["recipe", "run", "hm-multimodel", "--data", str(data), "--out", "o",
                                    "--dry-run", "attributes=a.yaml", "models=tiny-llava"])
    assert plan.exit_code == 0, plan.output
    lines = plan.output.splitlines()
    assert lines[1].startswith("captune sweep train o/recipe/finetune.yaml --grid model.name=tiny-llava ")
    assert "--adapter 'o/sweep/runs/{best}/checkpoints/best'" in lines[3]
    assert not Path("o").exists()


def test_cli_run_names_the_failing_step_below_its_own_error_with_exit_status_1(tmp_path):
    data = tmp_path / "empty.jsonl"
    data.write_text("")
    result = CliRunner().invoke(cli, ["recipe", "run", "gsd-opt-full", "--data", str(data), "--out",
                                      str(tmp_path / "o"), "--model", "tiny-blip2-opt"])
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 2  # the step's own error (its process), then the recipe's line naming the step
    assert errors[0].endswith("train.jsonl: no training records")  # the split of an empty file ran: no images
    assert errors[1].startswith("error: recipe gsd-opt-full, step train (captune train ")
    assert errors[1].endswith("exited with status 1 (its error is printed above)")
