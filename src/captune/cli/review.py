"""``captune review``: blind human rating of captions (``captune.review``): ``create`` a study,
``serve`` it, ``add-rater``, ``export`` the ratings for ``captune report --ratings``.

Tests in tests/unit/review/test_cli.py.
"""

from __future__ import annotations

import ipaddress

import click

from captune.cli import csv_list, echo_json, json_option
from captune.review.store import DEFAULT_PORT, invite_link


@click.group("review")
def review() -> None:
    """Rate captions blind in the browser, measure agreement, rank the systems."""


@review.command("create")
@click.argument("study_dir", type=click.Path(file_okay=False))
@click.option("--system", "systems", multiple=True, required=True, metavar="NAME=PATH",
              help="A system to compare: an evaluation folder, a predictions JSONL or an agent run's posts.jsonl "
                   "(repeat; at least two).")
@click.option("--items", type=click.IntRange(min=1), default=None,
              help="Rate this many items, drawn with --seed (default: every item all systems captioned).")
@click.option("--criteria", default="relevance,fluency,style", show_default=True,
              help="Criteria each caption is scored on, 1 to 5 (comma-separated).")
@click.option("--pairwise", is_flag=True, help="Also ask which caption is better (or a tie) for each item.")
@click.option("--raters", default=None, help="Raters to invite now (comma-separated); `add-rater` adds more later.")
@click.option("--overlap", default=1.0, show_default=True, type=click.FloatRange(0.0, 1.0),
              help="Share of the items every rater rates; the rest are dealt out, one rater each.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the item draw and the orders.")
@json_option('Print {"study", "items", "raters": {name: token}, "admin": token} as JSON.')
def create_cmd(study_dir, systems, items, criteria, pairwise, raters, overlap, seed, as_json) -> None:
    """Create a study in STUDY_DIR (review.sqlite) and print each invite token once."""
    from captune.review.sources import parse_system
    from captune.review.store import create_study

    parsed = dict(parse_system(s) for s in systems)
    if len(parsed) != len(systems):
        raise click.BadParameter("each --system needs its own NAME", param_hint="--system")
    made = create_study(study_dir, parsed, items=items, criteria=csv_list(criteria) or [], pairwise=pairwise,
                        raters=csv_list(raters) or [], overlap=overlap, seed=seed)
    if as_json:
        echo_json({k: made[k] for k in ("study", "items", "raters", "admin")})
        return
    click.echo(f"study {made['study']}: {made['items']} items, systems {', '.join(made['systems'])}")
    click.echo("invite links (shown once; only their hashes are kept):")
    for name, token in made["raters"].items():
        click.echo(f"  {name:<12} {invite_link(token)}")
    click.echo(f"  {'admin':<12} {invite_link(made['admin'])}")
    click.echo(f"serve it: captune review serve {study_dir}")


@review.command("add-rater")
@click.argument("study_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("name")
@json_option('Print {"rater": name, "token": token} as JSON.')
def add_rater_cmd(study_dir, name, as_json) -> None:
    """Invite one more rater (the shared items, in their own order); prints the token once."""
    from captune.review.store import Study

    token = Study(study_dir).add_rater(name)
    if as_json:
        echo_json({"rater": name, "token": token})
        return
    click.echo(f"{name}: {invite_link(token)}")


@review.command("serve")
@click.argument("study_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind (loopback: only this machine; another address prints a warning).")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(0, 65535))
def serve_cmd(study_dir, host, port) -> None:
    """Serve the rater and admin pages and the JSON API until interrupted."""
    import uvicorn

    from captune.review.app import create_app

    app = create_app(study_dir)
    if not _is_loopback(host):
        click.echo(f"warning: serving on {host}: anyone who can reach it may try to sign in; the traffic is not "
                   "encrypted (put it behind HTTPS)", err=True)
    click.echo(f"serving {study_dir} on http://{host}:{port}/  (admin: /admin; Ctrl+C stops)")
    uvicorn.run(app, host=host, port=port, log_level="warning")


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


@review.command("export")
@click.argument("study_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="The ratings JSONL to write.")
@json_option("Print the counts as JSON.")
def export_cmd(study_dir, out, as_json) -> None:
    """Write one JSON line per score of one caption (for `captune report RUN --ratings FILE`)."""
    from captune.review.export import export_ratings

    written = export_ratings(study_dir, out)
    if as_json:
        echo_json(written)
        return
    click.echo(f"wrote {written['lines']} lines ({written['ratings']} ratings by {written['raters']} raters) "
               f"to {written['out']}")


COMMANDS = (review,)
