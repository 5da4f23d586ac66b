"""Publishing the agent's posts to Instagram (``captune agent publish OUT_DIR``).

Nothing is sent unless all three switches say so: ``publisher.enabled: true``,
``publisher.dry_run: false`` and ``live=True`` (``--live``), with the token in the environment
variable ``publisher.access_token_env``. Otherwise ``publish`` writes ``OUT_DIR/publish/plan.jsonl``
(``plan``) and returns. Live, ``Publisher`` (``publisher``) walks each post through the Graph API,
recording every step in ``OUT_DIR/publish/ledger.sqlite`` (``ledger``), so a rerun resumes each post
and never publishes one twice. ``graph`` is the HTTP client; the token is never written anywhere.

    result = publish("runs/club-night", cfg.publisher, live=True)
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from captune.agent.config import PublisherSection
from captune.agent.publish.plan import dry_run, write_plan
from captune.agent.records import Post
from captune.errors import CaptuneError, ConfigError
from captune.io import read_jsonl

__all__ = ["PublishResult", "dry_run", "live_blockers", "load_posts", "publish", "write_plan"]


@dataclass
class PublishResult:
    mode: str
    """dry_run (nothing sent) or live."""
    plan: str | None = None
    """The plan written (dry run)."""
    outcomes: list = field(default_factory=list)
    """One ``Outcome`` per post (live)."""
    stopped: dict | None = None
    """Why a live run stopped early: ``kind`` (quota, cap, rate_limited, token, unreachable,
    max_posts_per_run) and ``message``."""
    blockers: list[str] = field(default_factory=list)
    """What live publishing would still need (dry run)."""

    @property
    def ok(self) -> bool:
        """False when a post failed, its publish outcome is unknown or its id conflicts with the ledger,
        or the token was refused."""
        bad = any(o.result in ("failed", "unknown", "conflict") for o in self.outcomes)
        return not bad and (self.stopped or {}).get("kind") != "token"

    def to_json(self) -> dict:
        counts: dict[str, int] = {}
        for o in self.outcomes:
            counts[o.result] = counts.get(o.result, 0) + 1
        return {"mode": self.mode, "plan": self.plan, "blockers": self.blockers, "stopped": self.stopped,
                "counts": counts, "posts": [o.to_json() for o in self.outcomes]}


def load_posts(out_dir: Path, post_ids: Sequence[str] = ()) -> list[Post]:
    """The posts of ``OUT_DIR/posts.jsonl`` (only ``post_ids`` when given, in the file's order)."""
    path = out_dir / "posts.jsonl"
    if not path.is_file():
        raise CaptuneError(f"{path} not found: run `captune agent run --out {out_dir}` first")
    posts = [Post.from_json(row) for row in read_jsonl(path)]
    known = [p.post_id for p in posts]
    unknown = [i for i in post_ids if i not in known]
    if unknown:
        raise CaptuneError(f"--post {', '.join(unknown)}: not in {path} (posts: {', '.join(known)})")
    return [p for p in posts if not post_ids or p.post_id in post_ids]


def live_blockers(cfg: PublisherSection, live: bool, env: Mapping[str, str]) -> list[str]:
    """Everything live publishing still needs, each naming the switch or key to set."""
    missing = [] if live else ["--live (the command line)"]
    if not cfg.enabled:
        missing.append("publisher.enabled is false (set publisher.enabled=true)")
    if cfg.dry_run:
        missing.append("publisher.dry_run is true (set publisher.dry_run=false)")
    if not cfg.ig_user_id:
        missing.append("publisher.ig_user_id is not set (the Instagram professional account's id)")
    if not cfg.image_base_url:
        missing.append("publisher.image_base_url is not set (the public URL where OUT_DIR/posts/ is served)")
    if not env.get(cfg.access_token_env):
        missing.append(f"the access token: environment variable {cfg.access_token_env} is not set "
                       "(publisher.access_token_env names it)")
    return missing


def publish(out_dir: str | Path, cfg: PublisherSection, live: bool = False, post_ids: Sequence[str] = (),
            env: Mapping[str, str] | None = None, log: Callable[[str], None] = lambda s: None,
            sleep: Callable[[float], None] = time.sleep) -> PublishResult:
    """Publish the posts of ``out_dir`` when every switch says so; otherwise write the plan, send nothing.

    ``live`` without the rest raises ``ConfigError`` naming each thing missing (the plan is written first).
    """
    out_dir = Path(out_dir)
    env = os.environ if env is None else env
    posts = load_posts(out_dir, post_ids)
    blockers = live_blockers(cfg, live, env)
    if blockers:
        plan = write_plan(posts, out_dir, cfg, _ledger_states(out_dir))
        if live:
            raise ConfigError(f"{out_dir}: live publishing needs:\n  " + "\n  ".join(blockers) +
                              f"\nnothing was sent; the plan is in {plan}")
        return PublishResult("dry_run", plan=str(plan), blockers=blockers)
    return _publish_live(out_dir, cfg, posts, env[cfg.access_token_env], log, sleep)


def _publish_live(out_dir: Path, cfg: PublisherSection, posts: list[Post], token: str,
                  log: Callable[[str], None], sleep: Callable[[float], None]) -> PublishResult:
    from captune.agent.publish.graph import GraphClient
    from captune.agent.publish.ledger import Ledger
    from captune.agent.publish.publisher import Publisher

    graph = GraphClient(cfg.graph_url, token, cfg.timeout_s, cfg.poll_interval_s, cfg.access_token_env, sleep=sleep)
    try:
        with Ledger(out_dir / "publish" / "ledger.sqlite") as ledger:
            outcomes, stop = Publisher(out_dir, cfg, graph, ledger, log, sleep).run(posts)
    finally:
        graph.close()
    stopped = {"kind": stop.kind, "message": str(stop)} if stop else None
    return PublishResult("live", outcomes=outcomes, stopped=stopped)


def _ledger_states(out_dir: Path) -> dict[str, str]:
    """Ledger states by post id (empty when nothing was ever published from ``out_dir``)."""
    from captune.agent.publish.ledger import Ledger

    path = out_dir / "publish" / "ledger.sqlite"
    if not path.is_file():
        return {}
    ledger = Ledger(path)
    try:
        return {post_id: e.state for post_id, e in ledger.entries().items()}
    finally:
        ledger.close()
