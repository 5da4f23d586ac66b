"""``captune agent run``: a folder of event photos to Instagram posts (``captune.agent.pipeline``);
``captune agent publish``: those posts to Instagram (``captune.agent.publish``)."""

from __future__ import annotations

from pathlib import Path

import click

from captune.cli import echo_json, json_option


@click.group()
def agent() -> None:
    """The photo-to-post agent: dedupe, label, group and caption an event's photos."""


@agent.command("run")
@click.argument("args", nargs=-1)
@click.option("--photos", type=click.Path(file_okay=False), help="Folder of photos (searched recursively).")
@click.option("--out", type=click.Path(file_okay=False), help="Output folder.")
@click.option("--truth", type=click.Path(dir_okay=False, exists=True),
              help="truth.json: duplicates, low_quality, labels, events; adds each stage's metrics.")
@click.option("--cache", type=click.Path(file_okay=False), help="Cache folder (default OUT/cache); share it across runs.")
@click.option("--help-config", is_flag=True, help="List every configuration key with its type and help.")
@json_option("Print summary.json.")
def run(args, photos, out, truth, cache, help_config, as_json) -> None:
    """Turn a folder of photos into posts: captune agent run [CONFIG.yaml] --photos DIR --out DIR [key=value ...].

    Without CONFIG.yaml the defaults of configs/agent/default.yaml apply (a Hugging Face CLIP,
    openai/clip-vit-base-patch32, from the local cache). Overrides use dotted keys, e.g.
    cluster.max_images_per_post=4 captioner.mode=hybrid embeddings.model=shapes-clip.
    Writes OUT/stages/*.jsonl, OUT/posts.jsonl, OUT/posts/<post_id>/, OUT/summary.json and
    OUT/report.html; nothing is published.
    """
    from captune.agent.config import AgentConfig
    from captune.config import describe_schema, load_config
    from captune.io import read_json

    if help_config:
        for key, typ, text in describe_schema(AgentConfig):
            click.echo(f"{key:<32} {typ:<26} {text}")
        return
    config, overrides = split_args(args)
    if not photos or not out:
        raise click.UsageError("--photos DIR and --out DIR are required")
    cfg = load_config(AgentConfig, config, overrides)
    result = run_and_report(cfg, photos, out, read_json(truth) if truth else None, cache, quiet=as_json)
    if as_json:
        echo_json(result.summary)


@agent.command("publish")
@click.argument("out_dir", type=click.Path(file_okay=False, exists=True))
@click.argument("overrides", nargs=-1)
@click.option("--post", "post_ids", multiple=True, metavar="POST_ID", help="Only this post (repeatable).")
@click.option("--live", is_flag=True,
              help="Publish for real (also needs publisher.enabled=true and publisher.dry_run=false).")
@json_option("Print the run's outcome per post.")
def publish(out_dir, overrides, post_ids, live, as_json) -> None:
    """Publish OUT_DIR's posts to Instagram: captune agent publish OUT_DIR [--post ID ...] [--live] [key=value ...].

    Reads OUT_DIR/posts.jsonl and OUT_DIR/config.yaml (overrides apply on top, e.g.
    publisher.ig_user_id=1784... publisher.image_base_url=https://example.org/club-night).
    Without --live, or with publisher.enabled false or publisher.dry_run true, nothing is sent:
    it writes OUT_DIR/publish/plan.jsonl, the requests it would make. Live, the token is read from
    the environment variable publisher.access_token_env (CAPTUNE_IG_TOKEN), every step is recorded
    in OUT_DIR/publish/ledger.sqlite and a rerun resumes where it stopped: a post is published at
    most once. Exit status 1 when a post failed, its outcome is unknown, its id holds other content
    in the ledger, or the token was refused.
    """
    from captune.agent.config import AgentConfig
    from captune.agent.publish import publish as publish_posts
    from captune.config import load_config

    config = Path(out_dir) / "config.yaml"
    cfg = load_config(AgentConfig, config if config.is_file() else None, overrides)
    log = (lambda s: None) if as_json else (lambda s: click.echo(s, err=True))
    result = publish_posts(out_dir, cfg.publisher, live=live, post_ids=post_ids, log=log)
    if as_json:
        echo_json(result.to_json())
    else:
        click.echo(publish_summary(result))
    if not result.ok:
        raise SystemExit(1)


def publish_summary(result) -> str:
    """A few lines: the plan and what live publishing still needs, or the count per outcome."""
    if result.mode == "dry_run":
        return "\n".join([f"dry run, nothing sent: {result.plan}", "live publishing needs:",
                          *[f"  {b}" for b in result.blockers]])
    d = result.to_json()
    lines = ["live: " + ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in d["counts"].items())]
    lines += [f"  {o.post_id}: {o.result}" + (f": {o.error}" if o.error else "")
              for o in result.outcomes if o.result in ("failed", "unknown", "waiting")]
    if result.stopped:
        lines.append(f"stopped: {result.stopped['message']}")
    return "\n".join(lines)


@agent.command("sweep")
@click.argument("args", nargs=-1)
@click.option("--photos", required=True, type=click.Path(file_okay=False, exists=True),
              help="Folder of photos (searched recursively).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output folder (resumed when it exists).")
@click.option("--grid", "grids", multiple=True, required=True, metavar="KEY=V1,V2,...",
              help="A key and its values; repeat for more keys (every combination runs).")
@click.option("--truth", type=click.Path(dir_okay=False, exists=True),
              help="truth.json: adds each stage's metrics to every row.")
@click.option("--resamples", default=1000, show_default=True, type=click.IntRange(min=100),
              help="Bootstrap resamples of every interval.")
@click.option("--sample", "n_sample", type=int, default=None, help="Run only N combinations, drawn with --seed.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of --sample and of the bootstrap.")
@json_option("Print the rows and the comparisons.")
def sweep(args, photos, out, grids, truth, resamples, n_sample, seed, as_json) -> None:
    """Run the agent over a grid of settings and compare them: captune agent sweep [CONFIG.yaml] [key=value ...]
    --photos DIR --out DIR --grid KEY=V1,V2,... [--grid ...].

    Each combination runs in OUT/runs/<id>/ with its resolved config.yaml; all share OUT/cache, so a
    change of captioner.mode reuses the embeddings, dedupe and clusters. A sweep started again skips
    the finished combinations (of the same photos, truth and settings). Writes OUT/sweep.jsonl, OUT/sweep.csv (one row per combination),
    OUT/comparisons.json and OUT/report.html + report.md (findings stated only where a 95% interval
    excludes zero). Example: --grid cluster.k=auto,5,10 --grid captioner.mode=template,model,hybrid.
    """
    from captune.agent.sweep import check_grid, expand, parse_grid, run_sweep, sample
    from captune.io import read_json

    config, overrides = split_args(args)
    grid = parse_grid(grids)
    check_grid(grid, config, overrides)
    combos = expand(grid)
    if n_sample is not None:
        combos = sample(combos, n_sample, seed)
    log = (lambda s: None) if as_json else (lambda s: click.echo(s, err=True))
    result = run_sweep(combos, photos, out, config, overrides, read_json(truth) if truth else None, resamples,
                       seed, log)
    if as_json:
        echo_json({"rows": result.rows, "comparisons": result.comparisons})
        return
    click.echo(sweep_summary(result))


def sweep_summary(result) -> str:
    """The findings as plain text, then where the files are."""
    from captune.agent.sweep_compare import findings

    lines = [f"{len(result.rows)} runs ({len(result.ran)} made now) in {result.seconds:.0f} s"]
    for topic, sentences in findings(result.comparisons, result.rows):
        lines += [f"{topic}:", *(f"  - {s}" for s in sentences)]
    lines.append(f"report: {Path(result.out_dir) / 'report.html'} (and report.md, sweep.csv, sweep.jsonl)")
    return "\n".join(lines)


def split_args(args: tuple[str, ...]) -> tuple[str | None, list[str]]:
    """The optional CONFIG.yaml (the first argument when it is not KEY=VALUE) and the overrides."""
    if args and "=" not in args[0]:
        return args[0], list(args[1:])
    return None, list(args)


def run_and_report(cfg, photos, out, truth, cache, quiet: bool = False):
    """Run the agent and print its stage table (shared with ``captune demo agent``)."""
    from captune.agent.pipeline import run_agent

    log = (lambda s: None) if quiet else (lambda s: click.echo(s, err=True))
    result = run_agent(cfg, photos, out, truth=truth, cache_dir=cache, log=log)
    if not quiet:
        click.echo(stage_table(result.summary))
        click.echo(f"posts: {Path(out) / 'posts.jsonl'} and {Path(out) / 'posts'}/")
        click.echo(f"report: {Path(out) / 'report.html'}")
    return result


def stage_table(summary: dict) -> str:
    """The summary as a few plain-text lines: counts, seconds, metrics."""
    s = summary
    sizes = s["images_per_post"]
    lines = [f"{s['photos']} files: " + ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in s["status"].items()),
             f"{s['posts']} posts, {sum(sizes)} photos in posts (per post: {min(sizes, default=0)}-{max(sizes, default=0)})",
             "seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in s["seconds"].items())]
    for mode, d in s.get("clipscore", {}).items():
        lines.append(f"CLIPScore ({mode}): mean {d['mean']:.3f}, median {d['median']:.3f}, "
                     f"min {d['min']:.3f}, max {d['max']:.3f} over {d['n']} posts")
    c = s["completeness"]
    lines.append(f"posts within Instagram's limits, with caption and hashtags: {c['complete']} of {c['posts']}")
    metrics = s.get("metrics")
    if metrics:
        lines.append("stage metrics (against the truth file):")
        for stage, values in metrics.items():
            shown = ", ".join(f"{k} {v:.3f}" for k, v in values.items() if isinstance(v, float))
            if shown:
                lines.append(f"  {stage:<10} {shown}")
    return "\n".join(lines)


COMMANDS = (agent,)
