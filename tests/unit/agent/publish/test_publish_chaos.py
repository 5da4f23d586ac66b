"""Posts published through a fake Graph API that fails at random (5xx, lost answers after the
request took effect, timeouts, dropped connections, rate limits, a refused token, the cap, failed
and late containers, images that never answer) while the publisher itself dies at random ledger
writes; it is run again until a run leaves nothing undecided. By the fake's own record: no post
published twice, and every post published or reported with its error. 200 posts (about 20 s on a
busy 2-core machine, most of it the ledger's fsyncs) run with ``-m slow``; 60 in the default run."""

import random
import threading
import time
from collections import Counter

import pytest
from fake_graph import FakeGraph
from publish_helpers import TOKEN, live_config, make_out_dir

from captune.agent.publish import publish
from captune.agent.publish.ledger import Ledger

FAULTS = {
    "quota": {"500": 3, "timeout_after": 0.5, "rate_limit": 0.5, "token": 0.2},
    "create": {"500": 3, "500_after": 3, "drop_after": 2, "timeout_after": 1, "rate_limit": 0.5, "media_fetch": 0.5},
    "status": {"500": 3, "drop_after": 2, "timeout_after": 0.5},
    "publish": {"500": 2, "500_after": 3, "drop_after": 3, "timeout_after": 2, "not_ready": 1, "cap": 0.3,
                "rate_limit": 0.3},
}
DECIDED = {"published", "already_published", "failed"}


class Crash(BaseException):
    """The publisher's process dying: nothing catches it."""


class Chaos:
    """The fake's chooser: a fault on a share ``p`` of requests, failed and late containers."""

    def __init__(self, seed: int, p: float):
        self.rng, self.p, self.lock, self.counts = random.Random(seed), p, threading.Lock(), Counter()

    def __call__(self, endpoint: str):
        with self.lock:
            if endpoint == "final":
                final = self.rng.choice(["ERROR", "EXPIRED"]) if self.rng.random() < 0.03 else None
                if final:
                    self.counts[final] += 1
                return final
            if endpoint == "polls":
                return self.rng.choice([0, 0, 0, 1, 2, 3])
            if endpoint not in FAULTS or self.rng.random() >= self.p:
                return None
            kinds = FAULTS[endpoint]
            fault = self.rng.choices(list(kinds), list(kinds.values()))[0]
            self.counts[f"{endpoint}:{fault}"] += 1
            return fault


def _crashing(record, rng: random.Random, p: float, counts: Counter):
    def wrapped(self, entry, step, **detail):
        if rng.random() < p / 2:
            counts["crash before a ledger write"] += 1
            raise Crash
        record(self, entry, step, **detail)
        if rng.random() < p / 2:
            counts["crash after a ledger write"] += 1
            raise Crash
    return wrapped


def _publish_until_decided(out_dir, fake, cfg, max_runs: int) -> tuple[int, list]:
    for run in range(1, max_runs + 1):
        try:
            result = publish(out_dir, cfg, live=True, env={"CAPTUNE_IG_TOKEN": TOKEN})
        except Crash:
            continue
        if result.stopped is None and all(o.result in DECIDED for o in result.outcomes):
            return run, result.outcomes
    raise AssertionError(f"still undecided after {max_runs} runs")


def _check(out_dir, fake, outcomes, n_posts: int) -> Counter:
    per_post = Counter(m.caption.split(":")[0].removeprefix("Post ") for m in fake.published)
    assert max(per_post.values()) == 1, per_post.most_common(3)
    assert fake.republish_attempts == 0
    media = {m.caption.split(":")[0].removeprefix("Post "): m.media_id for m in fake.published}
    with Ledger(out_dir / "publish" / "ledger.sqlite") as ledger:
        entries = ledger.entries()
    assert len(entries) == len(outcomes) == n_posts
    for o in outcomes:
        entry = entries[o.post_id]
        if o.post_id in media:
            assert entry.state == "published" and entry.media_id in (None, media[o.post_id])
        else:
            assert entry.state == "failed" and o.result == "failed" and o.error, (o, entry)
    return Counter(e.state for e in entries.values())


def _chaos_run(tmp_path, n_posts: int, seed: int, p: float, p_crash: float):
    rng = random.Random(seed)
    out_dir = make_out_dir(tmp_path / "out", [rng.choice([1, 1, 2, 3]) for _ in range(n_posts)])
    chaos = Chaos(seed, p)
    with FakeGraph(TOKEN, out_dir / "posts") as fake, pytest.MonkeyPatch.context() as mp:
        fake.chooser, fake.stall_s = chaos, 0.4
        fake.missing_images = {f"e01-p{n:03d}/01.jpg" for n in range(7, n_posts + 1, 20)}
        mp.setattr(Ledger, "record", _crashing(Ledger.record, rng, p_crash, chaos.counts))
        start = time.perf_counter()
        runs, outcomes = _publish_until_decided(out_dir, fake, live_config(fake, timeout_s=0.3), max_runs=200)
        seconds = time.perf_counter() - start
        mp.undo()
        states = _check(out_dir, fake, outcomes, n_posts)
    print(f"{n_posts} posts, {runs} runs, {seconds:.1f} s, {len(fake.requests)} requests, states {dict(states)}, "
          f"faults {dict(sorted(chaos.counts.items()))}")
    missing = {o.post_id: o for o in outcomes if f"{o.post_id}/01.jpg" in fake.missing_images}
    assert len(missing) == len(fake.missing_images)
    assert all(o.result == "failed" and "answered HTTP 404" in o.error for o in missing.values())
    return chaos.counts


INJECTED = ("publish:timeout_after", "publish:500_after", "publish:drop_after", "create:500_after",
            "crash before a ledger write", "crash after a ledger write", "ERROR")


@pytest.mark.slow
def test_200_posts_with_random_faults_are_each_published_at_most_once(tmp_path):
    counts = _chaos_run(tmp_path, 200, seed=0, p=0.06, p_crash=0.01)
    assert all(counts[kind] >= 1 for kind in INJECTED), counts


def test_60_posts_with_random_faults_are_each_published_at_most_once(tmp_path):
    counts = _chaos_run(tmp_path, 60, seed=1, p=0.12, p_crash=0.03)
    assert all(counts[kind] >= 1 for kind in INJECTED), counts
