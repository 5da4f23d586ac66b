"""The publisher's happy paths against the fake Graph API: nothing sent unless every switch says so,
and the single-image and carousel flows send exactly the plan's requests, in order."""

import json

import pytest
from click.testing import CliRunner
from fake_graph import USER
from publish_helpers import TOKEN, live_config

from captune.agent.config import PublisherSection
from captune.agent.publish import publish
from captune.agent.publish.ledger import Ledger
from captune.agent.publish.plan import image_url
from captune.cli import cli
from captune.errors import ConfigError
from captune.io import read_jsonl

ENV = {"CAPTUNE_IG_TOKEN": TOKEN}


def _plan(out_dir):
    return read_jsonl(out_dir / "publish" / "plan.jsonl")


@pytest.mark.parametrize("live, changes, env", [
    (False, {}, ENV),
    (True, {"enabled": False}, ENV),
    (True, {"dry_run": True}, ENV),
    (True, {}, {}),
    (True, {"ig_user_id": None}, ENV),
    (True, {"image_base_url": None}, ENV),
])
def test_nothing_is_sent_unless_every_switch_says_so(out_dir, fake, live, changes, env):
    cfg = live_config(fake, **changes)
    if live:
        with pytest.raises(ConfigError) as raised:
            publish(out_dir, cfg, live=True, env=env)
        message = str(raised.value)
        named = {"enabled": "publisher.enabled", "dry_run": "publisher.dry_run", "ig_user_id": "publisher.ig_user_id",
                 "image_base_url": "publisher.image_base_url"}
        for key in changes:
            assert named[key] in message
        if not env:
            assert "CAPTUNE_IG_TOKEN" in message
        assert "nothing was sent" in message
    else:
        result = publish(out_dir, cfg, live=False, env=env)
        assert result.mode == "dry_run" and result.blockers == ["--live (the command line)"]
    assert fake.requests == []
    assert not (out_dir / "publish" / "ledger.sqlite").exists()
    plan = _plan(out_dir)
    assert [row["post_id"] for row in plan] == ["e01-p001", "e01-p002", "e01-p003"]
    assert not any(row["sent"] for row in plan)


def test_the_plan_has_the_real_urls_and_the_caption_file_text(out_dir):
    cfg = PublisherSection(ig_user_id="1784", image_base_url="https://example.org/club/")
    publish(out_dir, cfg, env={})
    single, carousel, _ = _plan(out_dir)
    assert single["image_urls"] == ["https://example.org/club/e01-p001/01.jpg"]
    assert single["ready"] and single["kind"] == "image" and carousel["kind"] == "carousel"
    create = single["requests"][2]
    assert create == {"method": "POST", "path": "/1784/media", "params": {
        "image_url": "https://example.org/club/e01-p001/01.jpg",
        "caption": (out_dir / "posts" / "e01-p001" / "caption.txt").read_text()}}
    assert [r["method"] for r in carousel["requests"]] == ["GET"] + ["HEAD"] * 3 + ["POST"] * 4 + ["GET", "POST"]
    assert image_url("https://h/x", "posts/e01-p01/01 b.jpg") == "https://h/x/e01-p01/01%20b.jpg"
    unset = _plan_with(out_dir, PublisherSection())
    assert unset["image_urls"][0] == "{image_base_url}/e01-p001/01.jpg" and not unset["ready"]
    assert unset["checks"]["ig_user_id_set"] is False


def _plan_with(out_dir, cfg):
    publish(out_dir, cfg, env={})
    return _plan(out_dir)[0]


def _as_planned(fake) -> list[dict]:
    """The fake's record as plan requests: concrete container ids back to the plan's placeholders."""
    names = {}
    for media in fake.published:
        names[media.container_id] = "{container_id}"
        children = fake.containers[media.container_id].children
        if children:
            names[",".join(children)] = "{child_container_ids}"
    rows = []
    for r in fake.requests:
        if r.path.startswith("/images/"):
            rows.append({"method": r.method, "url": fake.image_base_url + r.path[len("/images"):]})
            continue
        path = "/" + names.get(r.path.strip("/"), r.path.strip("/"))
        rows.append({"method": r.method, "path": path, "params": {k: names.get(v, v) for k, v in r.params.items()}})
    return rows


def test_single_and_carousel_flows_send_exactly_the_planned_requests_in_order(out_dir, fake):
    cfg = live_config(fake)
    publish(out_dir, cfg, env=ENV)  # the dry run of the same config
    planned = [{k: v for k, v in r.items() if k != "until"} for row in _plan(out_dir) for r in row["requests"]]
    result = publish(out_dir, cfg, live=True, env=ENV)
    assert [o.result for o in result.outcomes] == ["published"] * 3 and result.ok
    assert _as_planned(fake) == planned
    assert {r.authorization for r in fake.requests if r.path.startswith("/images/")} == {None}
    assert {r.authorization for r in fake.graph_requests()} == {"ok"}
    for media in fake.published:
        post_id = media.caption.split(":")[0].removeprefix("Post ")
        assert media.caption == (out_dir / "posts" / post_id / "caption.txt").read_text()
    with Ledger(out_dir / "publish" / "ledger.sqlite") as ledger:
        entries = ledger.entries()
        assert [e.media_id for e in entries.values()] == [m.media_id for m in fake.published]
        assert len(entries["e01-p002"].children) == 3 and entries["e01-p001"].children == []
        steps = [s for s, _ in ledger.steps("e01-p002")]
    assert steps == ["child", "child", "child", "container", "status", "publish", "published"]


def test_a_rerun_sends_nothing_for_published_posts(out_dir, fake):
    cfg = live_config(fake)
    publish(out_dir, cfg, live=True, env=ENV)
    sent = len(fake.requests)
    again = publish(out_dir, cfg, live=True, env=ENV)
    assert [o.result for o in again.outcomes] == ["already_published"] * 3
    assert len(fake.requests) == sent and len(fake.published) == 3 and again.ok
    publish(out_dir, cfg, env=ENV)  # the plan now shows the ledger
    assert [(row["ledger"], row["requests"]) for row in _plan(out_dir)] == [("published", [])] * 3


def test_a_container_that_finishes_late_is_polled_then_published(out_dir, fake):
    fake.finish_after_polls = 3
    result = publish(out_dir, live_config(fake), live=True, env=ENV, post_ids=["e01-p001"])
    assert [o.result for o in result.outcomes] == ["published"]
    polls = [r for r in fake.graph_requests() if r.method == "GET" and "content_publishing_limit" not in r.path]
    assert len(polls) == 4 and len(fake.published) == 1


def test_max_posts_per_run_and_post_selection(out_dir, fake):
    result = publish(out_dir, live_config(fake, max_posts_per_run=1), live=True, env=ENV,
                     post_ids=["e01-p003", "e01-p002"])
    assert [(o.post_id, o.result) for o in result.outcomes] == [("e01-p002", "published"), ("e01-p003", "not_reached")]
    assert result.stopped["kind"] == "max_posts_per_run" and result.ok
    with pytest.raises(Exception, match="e01-p999: not in"):
        publish(out_dir, live_config(fake), live=True, env=ENV, post_ids=["e01-p999"])


def test_the_command_line_publishes_with_overrides_on_the_run_config(out_dir, fake, tmp_path):
    (out_dir / "config.yaml").write_text(f"publisher:\n  ig_user_id: {USER}\n  poll_interval_s: 0.001\n")
    args = ["agent", "publish", str(out_dir), "--post", "e01-p002", f"publisher.graph_url={fake.graph_url}",
            f"publisher.image_base_url={fake.image_base_url}", "publisher.enabled=true", "--json"]
    dry = CliRunner().invoke(cli, args, env=ENV)
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.stdout)["mode"] == "dry_run" and fake.requests == []
    refused = CliRunner().invoke(cli, [*args, "--live"], env=ENV)
    assert refused.exit_code == 1 and "publisher.dry_run" in refused.output and fake.requests == []
    live = CliRunner().invoke(cli, [*args, "--live", "publisher.dry_run=false"], env=ENV)
    assert live.exit_code == 0, live.output
    assert json.loads(live.stdout)["counts"] == {"published": 1} and len(fake.published) == 1
    text = CliRunner().invoke(cli, [*args[:-1], "--live", "publisher.dry_run=false"], env=ENV)
    assert text.exit_code == 0 and "1 already published" in text.output


def test_a_post_id_reused_with_other_content_is_refused_not_skipped(out_dir, fake):
    cfg = live_config(fake)
    publish(out_dir, cfg, live=True, env=ENV)
    sent = len(fake.requests)
    caption = out_dir / "posts" / "e01-p001" / "caption.txt"
    caption.write_text("A later agent run wrote another post under the same id.")  # as `agent run` into this folder
    again = publish(out_dir, cfg, live=True, env=ENV)
    results = {o.post_id: o.result for o in again.outcomes}
    assert results == {"e01-p001": "conflict", "e01-p002": "already_published", "e01-p003": "already_published"}
    assert "own output folder" in next(o.error for o in again.outcomes if o.post_id == "e01-p001")
    assert len(fake.requests) == sent and len(fake.published) == 3 and not again.ok


def test_a_caption_file_edited_past_instagrams_limits_is_not_sent(out_dir, fake):
    """caption.txt is sent exactly as it is; edited after `agent run`, it is checked again, not taken
    on the word of posts.jsonl."""
    caption = out_dir / "posts" / "e01-p001" / "caption.txt"
    caption.write_text("Spring fair.\n\n" + " ".join(f"#tag{i}" for i in range(31)), encoding="utf-8")
    cfg = live_config(fake)
    publish(out_dir, cfg, env=ENV)
    row = _plan(out_dir)[0]
    assert not row["ready"] and not row["checks"]["within_instagram_limits"]
    assert "31 hashtags (Instagram allows 30)" in row["checks"]["problems"]
    result = publish(out_dir, cfg, live=True, env=ENV, post_ids=["e01-p001"])
    assert [o.result for o in result.outcomes] == ["failed"] and "31 hashtags" in result.outcomes[0].error
    assert fake.published == []
