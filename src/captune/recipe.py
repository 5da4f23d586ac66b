"""Recipes: a whole workflow (clean, split, train, evaluate, compare, report, ...) as a list of
``captune`` commands in one YAML file, run with one command.

    captune recipe list
    captune recipe run club-montage --data posts.jsonl --out runs/club photos=~/Pictures/club-night
    summary = run_recipe(load_recipe("club-montage"), "posts.jsonl", "runs/club", overrides=["photos=..."])

A recipe composes existing commands; it holds no training or scoring code of its own. Its file
(``captune/recipes/NAME.yaml``, shipped inside the package; ``configs/recipes/`` in a checkout is
the same folder) starts with the command that runs it and has these keys:

- ``about``: one line, what it runs; ``model``: the default of ``{model}`` (``--model`` replaces it).
- ``inputs``: ``{name: what to pass}``, values the user must give as ``name=VALUE``.
- ``params``: ``{name: default}``, scalars a ``name=VALUE`` replaces (step counts, models, prompts).
- ``files``: ``{name: YAML}``, configurations written to ``OUT/recipe/NAME.yaml`` before the first
  step; ``{name}`` is that path, and ``name=PATH`` uses your own file instead.
- ``steps``: each a ``name`` and a ``run``, the command line after ``captune`` (split as a shell
  would, placeholders filled in each word afterwards, so a value with spaces stays one
  argument; ``{{`` and ``}}`` are literal braces), and optionally ``let``: ``{name: {file, key}}``,
  values read when the step starts from a YAML or JSON file an earlier step wrote (``key`` a
  dotted path, numbers index lists), usable in this step and the later ones.

Placeholders are ``{data}`` (``--data``), ``{model}``, ``{out}`` (``--out``) and the names above;
an unknown one is an error when the recipe is loaded, before anything runs. A value of None is
written ``null`` (the "unset" of a ``key=value`` configuration override).

``OUT/recipe.json`` records every step's command line and seconds. Running the same recipe into
the same ``OUT`` again skips the steps that finished with the same command line and files (the
recipe's files and the content of ``--data`` and of the files given as inputs or params), up to
the first that differs; from there every step runs again (a command that refuses to overwrite its
output, such as ``captune train``, then says so: choose another ``--out``).

Each step runs as its own ``python -m captune`` process (``run_recipe``'s ``execute`` can be
replaced), as in a shell script: one step's state (accelerate's precision, loaded models, thread
settings) never leaks into the next. The start-up costs a few seconds per step.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import string
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, model_validator

from captune.config import Schema, load_config
from captune.errors import CaptuneError, ConfigError
from captune.io import read_json, write_json, write_text

RECIPES_DIR = Path(__file__).parent / "recipes"
"""The shipped recipes (package data; ``configs/recipes`` in a checkout links here)."""
STATE_FILE = "recipe.json"
BUILTIN = ("data", "model", "out")
Scalar = str | int | float | bool | None
NAME = r"^[a-z][a-z0-9_]*$"


class Let(Schema):
    """A value read from a file an earlier step wrote, when the step that declares it starts."""

    file: str
    """The YAML or JSON file, with placeholders (e.g. {out}/sweep/sweep.json)."""
    key: str
    """Dotted path to the value in it (numbers index lists), e.g. best or runs.0.dir."""


class Step(Schema):
    """One ``captune`` command of the recipe."""

    name: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    """Short name, shown while it runs and recorded in OUT/recipe.json."""
    run: str
    """The command line after 'captune', with {placeholders}."""
    let: dict[str, Let] = Field(default_factory=dict)
    """Values read from earlier steps' files when this step starts: {name: {file, key}}."""


class Recipe(Schema):
    """A workflow as a list of captune commands (see ``captune.recipe``)."""

    name: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    """The name `captune recipe run` takes (the file's name without .yaml)."""
    about: str
    """One line: what the recipe runs."""
    model: str | None = None
    """Default of {model}; --model replaces it (None: the recipe names its models in params)."""
    inputs: dict[str, str] = Field(default_factory=dict)
    """Values the user must give as name=VALUE: {name: what to pass}."""
    params: dict[str, Scalar] = Field(default_factory=dict)
    """Defaults that name=VALUE replaces."""
    files: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Configurations written to OUT/recipe/NAME.yaml; {name} is the path, name=PATH uses yours."""
    steps: list[Step] = Field(min_length=1)
    """The commands, in order."""

    @model_validator(mode="after")
    def _names_and_placeholders(self) -> Recipe:
        known = _check_names(self)
        for i, step in enumerate(self.steps):
            for name, let in step.let.items():  # in order: a let may use the ones before it
                _check_placeholders(let.file, known, f"steps.{i}.let.{name}.file")
                known.add(name)
            _check_placeholders(step.run, known, f"steps.{i}.run")
        return self

    def uses(self, name: str) -> bool:
        """Whether any step names the placeholder ``name``."""
        texts = [s.run for s in self.steps] + [let.file for s in self.steps for let in s.let.values()]
        return any(name in placeholders(t) for t in texts)


def _check_names(recipe: Recipe) -> set[str]:
    """Every name a placeholder may use before the first step; each declared once, none reserved."""
    seen: dict[str, str] = {}
    lets = [(n, f"steps.{i}.let") for i, s in enumerate(recipe.steps) for n in s.let]
    pairs = [(n, "inputs") for n in recipe.inputs] + [(n, "params") for n in recipe.params]
    for name, where in pairs + [(n, "files") for n in recipe.files] + lets:
        if not re.match(NAME, name) or name in BUILTIN:
            raise ValueError(f"{where}.{name}: a name is lowercase letters, digits and _, and not "
                             f"{', '.join(BUILTIN)}")
        if name in seen:
            raise ValueError(f"{where}.{name}: already declared in {seen[name]}; give it another name")
        seen[name] = where
    steps = [s.name for s in recipe.steps]
    if len(set(steps)) < len(steps):
        raise ValueError(f"steps: step names repeat ({', '.join(steps)}); give each its own")
    return set(BUILTIN) | set(recipe.inputs) | set(recipe.params) | set(recipe.files)


def placeholders(text: str) -> list[str]:
    """The placeholder names in ``text`` (``{{`` and ``}}`` are literal braces)."""
    try:
        fields = [(f, spec, conv) for _, f, spec, conv in string.Formatter().parse(text) if f is not None]
    except ValueError as e:
        raise ValueError(f"{text!r}: {e} (write {{{{ and }}}} for literal braces)") from None
    for name, spec, conv in fields:
        if spec or conv or not re.match(NAME, name):
            raise ValueError(f"{text!r}: placeholder {{{name}{'!' + conv if conv else ''}"
                             f"{':' + spec if spec else ''}}} is not a plain name such as {{out}}")
    return [f for f, _, _ in fields]


def _check_placeholders(text: str, known: set[str], where: str) -> None:
    try:
        unknown = sorted(set(placeholders(text)) - known)
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from None
    if unknown:
        raise ValueError(f"{where}: unknown placeholder {', '.join('{' + u + '}' for u in unknown)}; "
                         f"known here: {', '.join(sorted(known))}")


# ---- finding and loading --------------------------------------------------------------------

def recipe_path(name: str | os.PathLike) -> Path:
    """A recipe file: ``name`` itself when it is a file, else the shipped ``NAME.yaml``."""
    path = Path(name)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return path
    shipped = RECIPES_DIR / f"{name}.yaml"
    if not shipped.is_file():
        raise CaptuneError(f"no recipe {str(name)!r}: choose one of {', '.join(list_recipes())} "
                           "(captune recipe list) or give a recipe file")
    return shipped


def load_recipe(name: str | os.PathLike) -> Recipe:
    """Load and check a recipe by name or path (errors name the file, line and key)."""
    return load_config(Recipe, recipe_path(name))


def list_recipes() -> dict[str, Path]:
    """``{name: file}`` of the shipped recipes."""
    return {p.stem: p for p in sorted(RECIPES_DIR.glob("*.yaml"))}


def command_line(path: Path) -> str:
    """The command a recipe file names on its first line (``# captune recipe run ...``)."""
    first = path.read_text(encoding="utf-8").splitlines()[0]
    return first.lstrip("# ").strip()


# ---- placeholders -----------------------------------------------------------------------------

def values_for(recipe: Recipe, data: str | os.PathLike, out: str | os.PathLike, model: str | None = None,
               overrides: Sequence[str] = ()) -> dict[str, Scalar]:
    """Every placeholder's value before the first step: built-ins, params, files' paths, inputs."""
    given: dict[str, str] = {}
    settable = set(recipe.inputs) | set(recipe.params) | set(recipe.files)
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or key not in settable:
            raise CaptuneError(f"{item!r}: expected NAME=VALUE with NAME one of recipe {recipe.name}'s "
                               f"{', '.join(sorted(settable)) or '(none)'}")
        given[key] = value
    if model and not recipe.uses("model"):
        raise CaptuneError(f"recipe {recipe.name} has no {{model}}: set its models with its params "
                           f"({', '.join(recipe.params)}), not --model")
    missing = [n for n in recipe.inputs if n not in given]
    if missing:
        wanted = "; ".join(f"{n}=... ({recipe.inputs[n]})" for n in missing)
        raise CaptuneError(f"recipe {recipe.name} needs {wanted}")
    files = {n: str(Path(out) / "recipe" / f"{n}.yaml") for n in recipe.files}
    return {"data": str(data), "model": model or recipe.model, "out": str(out),
            **recipe.params, **files, **given}


def fill(text: str, values: Mapping[str, Scalar]) -> str:
    """``text`` with each placeholder replaced by its value (None as null, booleans as true/false)."""
    return string.Formatter().vformat(text, (), {k: _text(v) for k, v in values.items()})


def _text(value: Scalar) -> str:
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def step_argv(step: Step, values: Mapping[str, Scalar]) -> list[str]:
    """The step's command line as arguments, each word filled in after splitting."""
    return [fill(word, values) for word in shlex.split(step.run)]


def read_let(let: Let, values: Mapping[str, Scalar]) -> Scalar:
    """The value at ``let.key`` in ``let.file`` (YAML or JSON), which must be a scalar."""
    path = Path(fill(let.file, values))
    if not path.is_file():
        raise CaptuneError(f"{path}: not found (an earlier step should have written it)")
    node: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    for part in let.key.split("."):
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            raise CaptuneError(f"{path}: no {let.key!r} in it ({part!r} is missing)")
    if isinstance(node, (dict, list)) or node is None:
        raise CaptuneError(f"{path}: {let.key!r} is {node!r}, not a single value")
    return node


# ---- running ------------------------------------------------------------------------------

def run_in_subprocess(argv: Sequence[str], to_stderr: bool = False) -> None:
    """Run ``captune ARGV`` as its own process (its output on stderr with ``to_stderr``); a non-zero
    exit is a ``CaptuneError``."""
    command = [sys.executable, "-m", "captune", *argv]
    stream = sys.stderr if to_stderr else sys.stdout
    try:
        code = subprocess.call(command, stdout=stream.fileno(), stderr=sys.stderr.fileno())
    except (AttributeError, OSError, ValueError):  # a stream without a file (a test runner's capture)
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        stream.write(done.stdout)
        sys.stderr.write(done.stderr)
        code = done.returncode
    if code:
        raise CaptuneError(f"exited with status {code} (its error is printed above)")


def write_files(recipe: Recipe, values: Mapping[str, Scalar]) -> None:
    """Write each of the recipe's files the user did not replace with their own."""
    for name, content in recipe.files.items():
        path = Path(str(values[name]))
        if path == Path(values["out"]) / "recipe" / f"{name}.yaml":
            write_text(path, yaml.safe_dump(content, sort_keys=False, allow_unicode=True))


def _fingerprint(argv: Sequence[str], recipe: Recipe, values: Mapping[str, Scalar]) -> str:
    """What a step's result depends on: its command line and the content of the files it names
    through ``{data}``, an input, a param or one of the recipe's files (a folder counts by its path)."""
    names = ["data", *recipe.inputs, *recipe.params, *recipe.files]
    texts = [Path(str(values[n])).read_bytes() for n in names if values[n] is not None
             and str(values[n]) in " ".join(argv) and Path(str(values[n])).is_file()]
    h = hashlib.sha256(shlex.join(argv).encode())
    for t in texts:
        h.update(hashlib.sha256(t).digest())
    return h.hexdigest()


def run_recipe(
    recipe: Recipe,
    data: str | os.PathLike,
    out: str | os.PathLike,
    model: str | None = None,
    overrides: Sequence[str] = (),
    execute: Callable[[list[str]], None] = run_in_subprocess,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run every step in order (skipping those a previous run into ``out`` finished the same way);
    write and return the summary (``OUT/recipe.json``)."""
    values = values_for(recipe, data, out, model, overrides)
    write_files(recipe, values)
    previous = _previous_steps(Path(out), recipe.name)
    summary = {"recipe": recipe.name, "values": values, "steps": [], "seconds": 0.0}
    t0, skipping = time.perf_counter(), True
    for i, step in enumerate(recipe.steps, 1):
        for name, let in step.let.items():
            values = values | {name: read_let(let, values)}
        argv = step_argv(step, values)
        record = {"name": step.name, "command": "captune " + shlex.join(argv),
                  "fingerprint": _fingerprint(argv, recipe, values)}
        skipping = skipping and previous.get(step.name, {}).get("fingerprint") == record["fingerprint"]
        done = " (done before)" if skipping else ""
        log(f"[{i}/{len(recipe.steps)}] {step.name}: {record['command']}{done}")
        if skipping:
            record |= {"seconds": previous[step.name].get("seconds"), "skipped": True}
        else:
            record["seconds"] = _run_step(execute, argv, recipe, step)
        summary["steps"].append(record)
        write_json(Path(out) / STATE_FILE, summary)
    summary["values"], summary["seconds"] = values, round(time.perf_counter() - t0, 2)
    write_json(Path(out) / STATE_FILE, summary)
    return summary


def _run_step(execute: Callable[[list[str]], None], argv: list[str], recipe: Recipe, step: Step) -> float:
    t = time.perf_counter()
    try:
        execute(argv)
    except CaptuneError as e:
        where = f"recipe {recipe.name}, step {step.name}"
        raise CaptuneError(f"{where} (captune {shlex.join(argv)}): {e}") from None
    return round(time.perf_counter() - t, 2)


def _previous_steps(out: Path, name: str) -> dict[str, dict[str, Any]]:
    """The steps a previous run of the same recipe into ``out`` finished, by name."""
    path = out / STATE_FILE
    if not path.is_file():
        return {}
    state = read_json(path)
    if state.get("recipe") != name:
        raise ConfigError(f"{path}: {out} holds a run of recipe {state.get('recipe')!r}, not {name!r}; "
                          "choose another --out")
    return {s["name"]: s for s in state.get("steps", [])}
