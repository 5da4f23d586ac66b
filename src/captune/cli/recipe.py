"""``captune recipe list`` and ``captune recipe run NAME --data ... [key=value ...]``: a whole
workflow from one recipe file (``captune.recipe``). Tests in tests/unit/test_recipe.py and
tests/integration/test_recipes.py.
"""

from __future__ import annotations

import shlex
from functools import partial

import click

from captune.cli import echo_json, json_option


@click.group("recipe")
def recipe() -> None:
    """Whole workflows (clean, train, evaluate, compare, report, ...), one command each."""


@recipe.command("list")
@json_option("Print the recipes as JSON.")
def list_cmd(as_json: bool) -> None:
    """List the shipped recipes: name, default model, what each runs and its command."""
    from captune.recipe import command_line, list_recipes, load_recipe

    rows = [{"name": name, "model": (r := load_recipe(path)).model or "(params)", "about": r.about,
             "inputs": r.inputs, "params": r.params, "command": command_line(path), "file": str(path)}
            for name, path in list_recipes().items()]
    if as_json:
        echo_json(rows)
        return
    for row in rows:
        click.echo(f"{row['name']:<20} {row['model']:<18} {row['about']}")
        click.echo(f"{'':<20} {row['command']}")


@recipe.command("run", context_settings={"ignore_unknown_options": False})
@click.argument("name")
@click.argument("overrides", nargs=-1)
@click.option("--data", required=True, type=click.Path(exists=True),
              help="The recipe's data ({data}): the file (or folder) its first step reads.")
@click.option("--model", default=None, help="Model for {model} (default: the recipe's), e.g. tiny-blip2-t5.")
@click.option("--out", default=None, type=click.Path(file_okay=False),
              help="Folder for everything the recipe writes ({out}; default runs/NAME).")
@click.option("--dry-run", is_flag=True, help="Print each step's command line and run nothing.")
@json_option("Print the summary (OUT/recipe.json) as JSON; the steps' own output goes to stderr.")
def run_cmd(name, overrides, data, model, out, dry_run, as_json) -> None:
    """Run a recipe: captune recipe run NAME --data FILE [--model M] [--out DIR] [name=value ...].

    NAME is a shipped recipe (captune recipe list) or a recipe file. name=value sets one of the
    recipe's inputs, params or files (each recipe's file lists them).
    """
    from captune.recipe import load_recipe, run_in_subprocess, run_recipe

    spec = load_recipe(name)
    out = out or f"runs/{spec.name}"
    if dry_run:
        _print_plan(spec, data, out, model, overrides)
        return
    log = (lambda line: click.echo(line, err=True)) if as_json else click.echo
    summary = run_recipe(spec, data, out, model, overrides, execute=partial(run_in_subprocess, to_stderr=as_json),
                         log=log)
    if as_json:
        echo_json(summary)
        return
    ran = sum(1 for s in summary["steps"] if not s.get("skipped"))
    click.echo(f"recipe {spec.name}: {ran} steps run, {len(summary['steps']) - ran} skipped "
               f"in {summary['seconds']:.0f} s -> {out}/recipe.json")


def _print_plan(spec, data, out, model, overrides) -> None:
    """Each step's command line; values a step reads from earlier output stay as {name}."""
    from captune.recipe import step_argv, values_for

    values = values_for(spec, data, out, model, overrides)
    for step in spec.steps:
        values |= {n: "{" + n + "}" for n in step.let}
        click.echo("captune " + shlex.join(step_argv(step, values)))


COMMANDS = (recipe,)
