"""The publisher under faults injected by the fake Graph API: lost answers after a publish, 5xx,
containers that fail or never finish, rate limits, the quota, the cap and a refused token."""

import pytest
from publish_helpers import TOKEN, live_config

from captune.agent.publish import publish
from captune.agent.publish.ledger import Ledger
from captune.errors import CaptuneError

ENV = {"CAPTUNE_IG_TOKEN": TOKEN}
ONE = ["e01-p001"]


def _run(out_dir, fake, post_ids=(), **changes):
    return publish(out_dir, live_config(fake, **changes), live=True, env=ENV, post_ids=post_ids)


def _publish_calls(fake) -> int:
    return sum(r.path.endswith("/media_publish") for r in fake.requests)


def _creates(fake) -> int:
    return sum(r.method == "POST" and r.path.endswith("/media") for r in fake.requests)


def _steps(out_dir, post_id):
    with Ledger(out_dir / "publish" / "ledger.sqlite") as ledger:
        return ledger.get(post_id), ledger.steps(post_id)


@pytest.mark.parametrize("fault", ["timeout_after", "500_after", "drop_after"])
def test_a_publish_that_went_through_without_an_answer_is_recorded_once(out_dir, fake, fault):
    fake.faults["publish"] = [fault]
    fake.stall_s = 0.8
    result = _run(out_dir, fake, ONE, timeout_s=0.4)
    assert [o.result for o in result.outcomes] == ["published"]
    assert len(fake.published) == 1 and _publish_calls(fake) == 1 and fake.republish_attempts == 0
    entry, steps = _steps(out_dir, "e01-p001")
    assert entry.state == "published" and entry.media_id is None  # the answer with the id was lost
    assert [s for s, _ in steps][-3:] == ["publish", "status", "published"]
    assert steps[-2][1]["status_code"] == "PUBLISHED"
    again = _run(out_dir, fake, ONE)
    assert [o.result for o in again.outcomes] == ["already_published"] and _publish_calls(fake) == 1


@pytest.mark.parametrize("fault", ["500", "not_ready"])
def test_a_publish_refused_before_it_happened_is_retried_on_the_same_container(out_dir, fake, fault):
    fake.faults["publish"] = [fault, fault]
    result = _run(out_dir, fake, ["e01-p002"])
    assert [o.result for o in result.outcomes] == ["published"] and result.outcomes[0].media_id
    assert _publish_calls(fake) == 3 and len(fake.published) == 1 and _creates(fake) == 4
    assert {r.params["creation_id"] for r in fake.requests if r.path.endswith("/media_publish")} == \
        {fake.published[0].container_id}


@pytest.mark.parametrize("final", ["ERROR", "EXPIRED"])
def test_a_failed_container_fails_the_post_and_a_rerun_starts_it_over(out_dir, fake, final):
    url = f"{fake.image_base_url}/e01-p001/01.jpg"
    fake.final_status[url] = final
    result = _run(out_dir, fake, ONE)
    (outcome,) = result.outcomes
    assert outcome.result == "failed" and final in outcome.error and not result.ok
    assert fake.published == [] and _publish_calls(fake) == 0
    del fake.final_status[url]
    again = _run(out_dir, fake, ONE)
    assert [o.result for o in again.outcomes] == ["published"] and _creates(fake) == 2
    entry, steps = _steps(out_dir, "e01-p001")
    assert "discarded" in [s for s, _ in steps] and entry.container_id == fake.published[0].container_id


def test_a_container_not_finished_in_time_waits_and_the_rerun_reuses_it(out_dir, fake):
    fake.finish_after_polls = 10_000
    result = _run(out_dir, fake, ONE, poll_timeout_s=0.2, poll_interval_s=0.05)
    (outcome,) = result.outcomes
    assert outcome.result == "waiting" and outcome.state == "container" and "rerun" in outcome.error
    container = next(iter(fake.containers.values()))
    container.polls_left = 0
    again = _run(out_dir, fake, ONE)
    assert [o.result for o in again.outcomes] == ["published"]
    assert _creates(fake) == 1 and fake.published[0].container_id == container.id


def test_an_interrupted_carousel_reuses_its_children(out_dir, fake):
    fake.faults["create"] = [None, None, "rate_limit"]  # the third child is refused: the run stops
    result = _run(out_dir, fake, ["e01-p002"])
    assert result.stopped["kind"] == "rate_limited" and "wait an hour" in result.stopped["message"]
    entry, _ = _steps(out_dir, "e01-p002")
    assert entry.state == "creating" and len(entry.children) == 2
    again = _run(out_dir, fake, ["e01-p002"])
    assert [o.result for o in again.outcomes] == ["published"]
    parent = fake.containers[fake.published[0].container_id]
    assert parent.children[:2] == entry.children and _creates(fake) == 2 + 1 + 1 + 1


def test_images_that_do_not_answer_fail_the_post_before_anything_is_created(out_dir, fake):
    fake.missing_images.add("e01-p002/02.jpg")
    result = _run(out_dir, fake, ["e01-p002"])
    (outcome,) = result.outcomes
    assert outcome.result == "failed" and "e01-p002/02.jpg answered HTTP 404" in outcome.error
    assert "image_base_url" in outcome.error and _creates(fake) == 0


def test_media_instagram_cannot_fetch_is_a_clear_failure(out_dir, fake):
    fake.faults["create"] = ["media_fetch"]
    (outcome,) = _run(out_dir, fake, ONE).outcomes
    assert outcome.result == "failed" and "9004/2207052" in outcome.error
    assert "could not fetch the image" in outcome.error and "image_base_url" in outcome.error


def test_quota_used_up_stops_the_run_and_a_later_run_resumes(out_dir, fake):
    fake.quota_total = 2
    result = _run(out_dir, fake)
    assert [o.result for o in result.outcomes] == ["published", "published", "stopped"]
    assert result.stopped["kind"] == "quota" and "2 of 2" in result.stopped["message"] and result.ok
    assert result.outcomes[2].state == "pending" and _creates(fake) == 1 + 4  # nothing made for the third
    fake.quota_usage = 0  # the next day
    again = _run(out_dir, fake)
    assert [o.result for o in again.outcomes] == ["already_published", "already_published", "published"]
    assert sorted(m.caption.split(":")[0] for m in fake.published) == \
        ["Post e01-p001", "Post e01-p002", "Post e01-p003"]


def test_the_cap_at_publish_time_stops_and_the_finished_container_is_reused(out_dir, fake):
    fake.faults["publish"] = ["cap"]
    result = _run(out_dir, fake, ONE)
    assert result.stopped["kind"] == "cap" and result.outcomes[0].state == "ready"
    again = _run(out_dir, fake, ONE)
    assert [o.result for o in again.outcomes] == ["published"] and _creates(fake) == 1


@pytest.mark.parametrize("where", ["quota", "create", "status", "publish"])
def test_a_refused_token_stops_the_run_with_what_to_do(out_dir, fake, where):
    fake.faults[where] = ["token"]
    result = _run(out_dir, fake)
    assert result.stopped["kind"] == "token" and not result.ok
    message = result.stopped["message"]
    assert "190" in message and "invalid or expired" in message and "$CAPTUNE_IG_TOKEN" in message
    assert [o.result for o in result.outcomes][1:] == ["not_reached", "not_reached"]
    again = _run(out_dir, fake)
    assert [o.result for o in again.outcomes] == ["published"] * 3 and len(fake.published) == 3


def test_5xx_on_reads_and_container_creation_are_retried_with_doubling_backoff(out_dir, fake):
    fake.faults = {"quota": ["500"], "status": ["500", "500"], "create": ["500", "500_after"]}
    sleeps = []
    result = publish(out_dir, live_config(fake, poll_interval_s=0.5), live=True, env=ENV, post_ids=["e01-p002"],
                     sleep=sleeps.append)
    assert sleeps == [0.5, 0.5, 1.0, 0.5, 1.0]  # quota; the first child twice; the status twice
    assert [o.result for o in result.outcomes] == ["published"] and len(fake.published) == 1
    assert _creates(fake) == 4 + 2  # two lost creations retried; one of them left an unpublished container


def test_two_publishers_on_one_folder_are_refused(out_dir, fake):
    with Ledger(out_dir / "publish" / "ledger.sqlite"), \
            pytest.raises(CaptuneError, match="another `captune agent publish` is running"):
        _run(out_dir, fake)
    assert fake.requests == []


def test_the_graph_url_unreachable_stops_cleanly(out_dir, fake):
    fake.server.shutdown()
    fake.server.server_close()
    result = publish(out_dir, live_config(fake, graph_url="http://127.0.0.1:9/v23.0", image_base_url=fake.image_base_url),
                     live=True, env=ENV)
    assert result.stopped["kind"] == "unreachable" and "publisher.graph_url" in result.stopped["message"]
    assert [o.result for o in result.outcomes] == ["stopped", "not_reached", "not_reached"]
