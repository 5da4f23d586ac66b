"""The ``captune`` command line: each command parses its options, calls one library function
and prints the result (``--json`` for machine-readable output). Heavy imports stay inside the
commands so ``captune --help`` is instant.
"""

from __future__ import annotations

import json
import sys

import click

from captune import __version__
from captune.errors import CaptuneError


class _Group(click.Group):
    """A group that turns ``CaptuneError`` into one clear line on stderr and exit status 2."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except CaptuneError as e:
            click.echo(f"error: {e}", err=True)
            ctx.exit(2)


def echo_json(obj) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False, indent=2, default=str))


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="captune")
def cli() -> None:
    """Fine-tune, evaluate and compare image-captioning models on your own photos."""


def main() -> None:
    cli(prog_name="captune")


if __name__ == "__main__":
    sys.exit(main())
