"""``captune agent publish`` killed (SIGKILL) mid-post, at the worst moments, then run again: every
post ends published exactly once, by the fake Graph API's own record."""

import os
import signal
import subprocess
import sys
from collections import Counter

import pytest
from fake_graph import USER
from publish_helpers import TOKEN, live_config

from captune.agent.publish import publish
from captune.agent.publish.ledger import Ledger


def _command(out_dir, fake) -> list[str]:
    return [sys.executable, "-m", "captune", "agent", "publish", str(out_dir), "--live", "--json",
            "publisher.enabled=true", "publisher.dry_run=false", f"publisher.ig_user_id={USER}",
            f"publisher.graph_url={fake.graph_url}", f"publisher.image_base_url={fake.image_base_url}",
            "publisher.poll_interval_s=0.001"]


@pytest.mark.parametrize("endpoint, calls_before", [
    ("create", 2),   # the second child of the carousel e01-p002 is made, its id never arrives
    ("status", 1),   # while polling e01-p002's carousel container
    ("publish", 1),  # e01-p002 is published, the process dies before the answer
])
def test_killed_mid_post_then_rerun_publishes_each_post_once(out_dir, fake, endpoint, calls_before):
    process: list[subprocess.Popen] = []

    def kill() -> None:
        process[0].send_signal(signal.SIGKILL)
        process[0].wait(10)

    fake.faults[endpoint] = [None] * calls_before + [kill]
    env = {**os.environ, "CAPTUNE_IG_TOKEN": TOKEN}
    process.append(subprocess.Popen(_command(out_dir, fake), env=env, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE))
    process[0].communicate(timeout=60)
    assert process[0].returncode == -signal.SIGKILL
    before = len(fake.published)
    with Ledger(out_dir / "publish" / "ledger.sqlite") as ledger:
        assert ledger.get("e01-p001").state == "published" and ledger.get("e01-p002").state != "published"
    result = publish(out_dir, live_config(fake), live=True, env={"CAPTUNE_IG_TOKEN": TOKEN})
    assert [o.result for o in result.outcomes] == ["already_published", "published", "published"]
    per_post = Counter(m.caption.split(":")[0] for m in fake.published)
    assert per_post == {"Post e01-p001": 1, "Post e01-p002": 1, "Post e01-p003": 1}
    assert fake.republish_attempts == 0
    assert before == (2 if endpoint == "publish" else 1)
