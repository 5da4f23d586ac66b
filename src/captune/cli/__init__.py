"""The ``captune`` command line: each command parses its options, calls one library function
and prints the result (``--json`` for machine-readable output).

One module per command group: ``data``, ``train``, ``caption``, ``evaluate`` (evaluate and
compare), ``metrics``, ``report``, ``demo``, ``models`` (models list and export), ``agent`` (run,
publish, sweep), ``review``, ``sweep`` (sweep train) and ``recipe``. A command's module is
imported only when that command runs (``LAZY_COMMANDS``), and heavy imports (torch,
transformers) stay inside the command functions, so ``captune --help`` and ``captune metrics``
start without them.

Exit status: 0 on success, 1 when a command fails at run time (a ``CaptuneError``, printed as
one ``error: ...`` line on stderr), 2 for a usage error (an unknown option, a missing or
invalid argument: click's own). A command that goes past bad input (``caption``'s unreadable
images, ``data validate``'s rejected rows) lists it in a rejects file and exits 0, or 1 when
nothing usable is left or, with ``--strict``, when anything was rejected.
"""

from __future__ import annotations

import json

import click

from captune import __version__
from captune.errors import CaptuneError

DTYPE_CHOICES = ("auto", "float32", "bfloat16", "float16")  # as captune.models.loading (kept out: it imports torch)
RUNTIME_ERROR = 1


class _Group(click.Group):
    """A group that turns ``CaptuneError`` into one clear line on stderr and exit status 1."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except CaptuneError as e:
            click.echo(f"error: {e}", err=True)
            ctx.exit(RUNTIME_ERROR)


# Each command's module (``captune.cli.<module>``, which lists it in its COMMANDS): a command's
# module is imported when the command is looked up, so ``captune metrics`` imports nothing of the
# others (``captune --help``, which lists them all, imports them all).
LAZY_COMMANDS = {
    "agent": "agent", "caption": "caption", "compare": "evaluate", "data": "data", "demo": "demo",
    "evaluate": "evaluate", "export": "models", "metrics": "metrics", "models": "models", "recipe": "recipe",
    "report": "report", "review": "review", "sweep": "sweep", "train": "train",
}


class _LazyGroup(_Group):
    """The top-level group: commands are attached from their module on first lookup."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*LAZY_COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in self.commands and name in LAZY_COMMANDS:
            import importlib

            module = importlib.import_module(f"captune.cli.{LAZY_COMMANDS[name]}")
            for command in module.COMMANDS:
                self.add_command(command)
        return self.commands.get(name)

    def all_commands(self) -> dict[str, click.Command]:
        """Every command, its module imported (for documentation and tests)."""
        return {name: self.get_command(None, name) for name in self.list_commands(None)}


def echo_json(obj) -> None:
    """Print ``obj`` as indented JSON (what every ``--json`` prints)."""
    click.echo(json.dumps(obj, ensure_ascii=False, indent=2, default=str))


def json_option(help: str = "Print the summary as JSON."):
    """The ``--json`` flag every command that prints a summary has."""
    return click.option("--json", "as_json", is_flag=True, help=help)


def progress_option(what: str = "a progress bar"):
    """The ``--progress/--no-progress`` flag of the long-running commands."""
    return click.option("--progress/--no-progress", default=None, help=f"Show {what} (default: when on a terminal).")


def csv_list(value: str | None) -> list[str] | None:
    """``"a, b,c"`` -> ``["a", "b", "c"]``; None or empty -> None."""
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def unavailable_line(unavailable: dict[str, str]) -> str:
    """All metrics that cannot run here on one line, those with the same reason named together."""
    by_reason: dict[str, list[str]] = {}
    for name, reason in unavailable.items():
        by_reason.setdefault(reason, []).append(name)
    named = [f"{', '.join(names)} ({reason})" for reason, names in by_reason.items()]
    return "unavailable here: " + "; ".join(named)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="captune")
def cli() -> None:
    """Fine-tune, evaluate and compare image-captioning models on your own photos."""


_quick_exit = False
"""Set by a command that has written everything (``request_quick_exit``): ``main`` then ends the
process without the interpreter freeing every object one by one."""


def request_quick_exit() -> None:
    """Let ``main`` end this process at once when the command returns: atexit handlers run and the
    standard streams are flushed, but the millions of objects a scoring run made are left to the
    operating system (the interpreter's teardown took 30-45 ms of a 5,000-image ``captune metrics``)."""
    global _quick_exit
    _quick_exit = True


def _exit_now(code) -> None:
    import atexit
    import os
    import sys

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def main() -> None:
    """The ``captune`` console script (and ``python -m captune``)."""
    import warnings

    global _quick_exit
    _quick_exit = False  # only a command of this run may ask

    # peft asks transformers a deprecated question on every wrap; the answer is right, the warning noise.
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
    try:
        cli(prog_name="captune")
    except SystemExit as e:
        if _quick_exit and (e.code is None or isinstance(e.code, int)):
            _exit_now(e.code or 0)
        raise
