"""Publishing posts through the Instagram Graph API: a state machine per post over the ledger.

For each post, in ``posts.jsonl`` order:

1. A post the ledger holds as ``published`` is never touched again.
2. A post with a container from an earlier run: its ``status_code`` is read first. ``PUBLISHED``
   is recorded as published (an earlier ``media_publish`` whose answer was lost); ``FINISHED``
   is reused (no new container); ``IN_PROGRESS`` is polled; ``ERROR``/``EXPIRED`` (never
   published) are discarded and the post starts over. A status that cannot be read leaves the
   post as it is (``unknown`` when a publish was sent), to be read again on the next run.
3. The quota (``content_publishing_limit``: ``quota_usage`` against ``config.quota_total``, never
   a hard-coded cap): when it is used up the run stops and the remaining posts stay as they are.
4. Local checks, then a ``HEAD`` of every image URL (200 and an image content type), then the
   containers (children with ``is_carousel_item=true``, then the ``CAROUSEL`` parent; or one
   container), each id committed to the ledger before the next request.
5. Status polled every ``poll_interval_s`` until ``FINISHED`` (``ERROR``/``EXPIRED`` fail the post
   with the status text; past ``poll_timeout_s`` the post waits for the next run).
6. ``publishing`` is committed, then ``media_publish``. On any failure the container's status is
   read before anything else: ``PUBLISHED`` is success; only a container still ``FINISHED`` (or
   ``IN_PROGRESS``) is published again, and always the same container, never a new one.

Retries with doubling backoff from ``poll_interval_s`` only where they cannot post twice: reads,
container creation (a lost answer leaves at most an unpublished container, which expires) and
``media_publish`` after its container was read as not published. A refused token (190), the
cap (9) and rate limits (4 / 2207051) stop the run; the next run resumes every post.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from captune.agent.config import PublisherSection
from captune.agent.publish.graph import GraphClient, GraphError
from captune.agent.publish.ledger import Entry, Ledger, now
from captune.agent.publish.plan import (
    POLL_FIELDS,
    QUOTA_FIELDS,
    caption_of,
    failed_checks,
    image_url,
    post_checks,
)
from captune.agent.records import Post

STOP_KINDS = {"token", "cap", "rate_limited"}
"""Graph error kinds that stop the whole run rather than fail one post."""
NOTHING_OR_MAYBE_SENT = {"unreachable", "ambiguous"}
"""Failures with no answer: retried where a repeat cannot post twice."""
RETRIES = 3


@dataclass
class Outcome:
    """What happened to one post in a run: ``result`` and the ledger ``state`` it was left in."""

    post_id: str
    result: str
    """published, already_published, failed, waiting, unknown (a publish whose outcome is not known yet),
    stopped (the run stopped at this post) or not_reached."""
    state: str
    media_id: str | None = None
    error: str | None = None

    def to_json(self) -> dict:
        return asdict(self)


class PostFailed(Exception):
    """The post cannot be published this run, and is known not to be published."""


class Waiting(Exception):
    """Not decided this run (container not ready, status unreadable): the next run resumes it."""


class Stop(Exception):
    """The run stops here (quota, cap, rate limit, token, Graph unreachable); ``kind`` says which."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def content_digest(post: Post, out_dir: Path) -> str:
    """sha256 over the post's caption file and image files: what the ledger ties its post id to."""
    import hashlib

    from captune.io import file_sha256

    files = [post.files.get("caption") or "", *post.files.get("images", [])]
    parts = [file_sha256(Path(out_dir) / f) if f and (Path(out_dir) / f).exists() else f"missing:{f}" for f in files]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


class Publisher:
    """Publishes posts of ``out_dir`` through ``graph``, recording every step in ``ledger``."""

    def __init__(self, out_dir: Path, cfg: PublisherSection, graph: GraphClient, ledger: Ledger,
                 log: Callable[[str], None] = lambda s: None, sleep: Callable[[float], None] = time.sleep):
        self.out_dir, self.cfg, self.graph, self.ledger, self.log, self.sleep = \
            Path(out_dir), cfg, graph, ledger, log, sleep
        self.user = cfg.ig_user_id

    def run(self, posts: list[Post]) -> tuple[list[Outcome], Stop | None]:
        """Every post's outcome, and the reason the run stopped early (None when it went through)."""
        outcomes: list[Outcome] = []
        stopped: Stop | None = None
        published = 0
        for post in posts:
            entry = self.ledger.get(post.post_id)
            digest = content_digest(post, self.out_dir)
            if self.ledger.content(post.post_id, digest) != digest:
                error = (f"{post.post_id}: the ledger holds another post under this id (other images or caption: "
                         "a later `agent run` into this folder?); it is left alone. Publish each run from its "
                         "own output folder")
                self.log(error)
                outcomes.append(Outcome(post.post_id, "conflict", entry.state, entry.media_id, error))
                continue
            if entry.state == "published":
                outcomes.append(Outcome(post.post_id, "already_published", "published", entry.media_id))
                continue
            if stopped is None and published >= self.cfg.max_posts_per_run:
                stopped = Stop("max_posts_per_run", f"max_posts_per_run ({self.cfg.max_posts_per_run}) reached: "
                               "rerun to publish the rest")
            if stopped is not None:
                outcomes.append(Outcome(post.post_id, "not_reached", entry.state))
                continue
            try:
                outcome = self.publish_post(post, entry)
            except Stop as e:
                stopped, outcome = e, self._stopped(entry, e)
            published += outcome.result == "published"
            outcomes.append(outcome)
        return outcomes, stopped

    def publish_post(self, post: Post, entry: Entry) -> Outcome:
        """Take one post as far as it goes: published, failed, waiting or unknown (``Stop`` stops the run)."""
        try:
            return self._advance(post, entry)
        except PostFailed as e:
            entry.state, entry.error = "failed", str(e)
            self.ledger.record(entry, "failed", error=str(e))
            self.log(f"{post.post_id}: failed: {e}")
            return Outcome(post.post_id, "failed", "failed", error=str(e))
        except Waiting as e:
            entry.error = str(e)
            self.ledger.record(entry, "waiting", error=str(e))
            self.log(f"{post.post_id}: {e}")
            result = "unknown" if entry.state == "publishing" else "waiting"
            return Outcome(post.post_id, result, entry.state, error=str(e))

    def _stopped(self, entry: Entry, stop: Stop) -> Outcome:
        entry.error = str(stop)
        self.ledger.record(entry, "stopped", kind=stop.kind, error=str(stop))
        self.log(f"{entry.post_id}: stopped: {stop}")
        return Outcome(entry.post_id, "stopped", entry.state, error=str(stop))

    def _advance(self, post: Post, entry: Entry) -> Outcome:
        status = self._earlier_container(entry)
        if status == "PUBLISHED":
            return self._published(entry, None, "container status PUBLISHED")
        self._check_quota()
        if status is None:
            self._create(post, entry)
        if entry.status_code != "FINISHED" and self._wait(entry) == "PUBLISHED":
            return self._published(entry, None, "container status PUBLISHED")
        return self._publish(entry)

    def _earlier_container(self, entry: Entry) -> str | None:
        """The status of a container an earlier run made (None when there is none or it was discarded)."""
        if not entry.container_id:
            return None
        status = self._status(entry, "resume")
        if status in ("ERROR", "EXPIRED"):
            entry.children, entry.container_id, entry.status_code, entry.state = [], None, None, "pending"
            self.ledger.record(entry, "discarded", reason=f"container {status}: never published; starting over")
            return None
        return status

    def _status(self, entry: Entry, why: str) -> str:
        """Read the post's container's status_code; record it when it changed."""
        code, entry.last_status = self._read_status(entry.container_id)
        if code != entry.status_code:
            entry.status_code = code
            self.ledger.record(entry, "status", why=why, status_code=code, status=entry.last_status)
        return code

    def _read_status(self, container_id: str) -> tuple[str, str]:
        """``status_code`` and ``status`` of a container (the GET is retried)."""
        try:
            body = self.graph.get(f"/{container_id}", {"fields": POLL_FIELDS})
        except GraphError as e:
            if e.kind in STOP_KINDS:
                raise Stop(e.kind, str(e)) from None
            raise Waiting(f"the status of container {container_id} could not be read ({e}); "
                          "rerun: it is read again before anything is sent") from None
        return str(body.get("status_code")), self.graph.scrub(str(body.get("status", "")))

    def _check_quota(self) -> None:
        try:
            body = self.graph.get(f"/{self.user}/content_publishing_limit", {"fields": QUOTA_FIELDS})
            data = body["data"][0]
            usage, total = int(data["quota_usage"]), int(data["config"]["quota_total"])
        except GraphError as e:
            raise Stop(e.kind if e.kind in STOP_KINDS else "unreachable", f"the quota could not be read: {e}") from None
        except (KeyError, IndexError, TypeError, ValueError):
            raise Stop("quota", "content_publishing_limit answered without data[0].quota_usage and "
                       "config.quota_total: check publisher.graph_url and publisher.ig_user_id") from None
        if usage >= total:
            raise Stop("quota", f"the publishing quota is used up ({usage} of {total}): the posts left stay "
                       "pending; rerun when the 24-hour window has room")

    def _create(self, post: Post, entry: Entry) -> None:
        """Check the post and its image URLs, then make (or finish making) its containers."""
        problems = failed_checks(post_checks(post, self.out_dir))
        if problems:
            raise PostFailed("the post is not ready: " + ", ".join(problems))
        urls = [image_url(self.cfg.image_base_url, p) for p in post.files["images"]]
        for url in urls:
            problem = self.graph.check_image(url)
            if problem:
                raise PostFailed(f"{problem}: Instagram fetches images by public URL; upload OUT_DIR/posts/ "
                                 "to publisher.image_base_url")
        caption = caption_of(post, self.out_dir)
        if len(urls) == 1:
            params = {"image_url": urls[0], "caption": caption}
        else:
            self._children(entry, urls)
            params = {"media_type": "CAROUSEL", "children": ",".join(entry.children), "caption": caption}
        entry.container_id = self._new_container(params)
        entry.state, entry.status_code, entry.error = "container", None, None
        self.ledger.record(entry, "container", container_id=entry.container_id)

    def _children(self, entry: Entry, urls: list[str]) -> None:
        """One child container per image, reusing those an interrupted run recorded (when still usable)."""
        for child in entry.children:
            code, _ = self._read_status(child)
            if code not in ("FINISHED", "IN_PROGRESS"):
                entry.children = []
                self.ledger.record(entry, "discarded", reason=f"child {child} {code}: starting the children over")
                break
        for url in urls[len(entry.children):]:
            entry.children.append(self._new_container({"image_url": url, "is_carousel_item": "true"}))
            entry.state = "creating"
            self.ledger.record(entry, "child", container_id=entry.children[-1], image_url=url)

    def _new_container(self, params: dict[str, str]) -> str:
        """POST /{ig_user_id}/media, retried on no answer (a lost answer leaves an unpublished container)."""
        attempt = 0
        while True:
            try:
                return str(self.graph.post(f"/{self.user}/media", params)["id"])
            except GraphError as e:
                if e.kind in STOP_KINDS or (e.kind == "unreachable" and attempt == RETRIES):
                    raise Stop(e.kind, str(e)) from None
                if e.kind not in NOTHING_OR_MAYBE_SENT or attempt == RETRIES:
                    raise PostFailed(str(e)) from None
            self.sleep(self.cfg.poll_interval_s * 2**attempt)
            attempt += 1

    def _wait(self, entry: Entry) -> str:
        """Poll until FINISHED (or PUBLISHED); ERROR/EXPIRED fail the post, a timeout makes it wait."""
        deadline = time.monotonic() + self.cfg.poll_timeout_s
        while True:
            status = self._status(entry, "poll")
            if status in ("FINISHED", "PUBLISHED"):
                if entry.state != "publishing":
                    entry.state = "ready"
                return status
            if status in ("ERROR", "EXPIRED"):
                raise PostFailed(f"container {entry.container_id} is {status}: {entry.last_status}")
            if time.monotonic() >= deadline:
                raise Waiting(f"container {entry.container_id} not FINISHED after {self.cfg.poll_timeout_s:g} s "
                              f"(status {status}); rerun to resume")
            self.sleep(self.cfg.poll_interval_s)

    def _publish(self, entry: Entry) -> Outcome:
        """media_publish the FINISHED container; after any failure its status decides what comes next."""
        attempt = 0
        while True:
            entry.state = "publishing"
            self.ledger.record(entry, "publish", creation_id=entry.container_id, attempt=attempt)
            try:
                body = self.graph.post(f"/{self.user}/media_publish", {"creation_id": entry.container_id})
                return self._published(entry, str(body["id"]) if "id" in body else None, "media_publish answered")
            except GraphError as e:
                error = e
            status = self._status_after(entry, error)
            if status == "PUBLISHED":
                return self._published(entry, None, f"media_publish: {error.kind}; container status PUBLISHED")
            if status in ("ERROR", "EXPIRED"):
                raise PostFailed(f"container {entry.container_id} is {status}: {entry.last_status}")
            entry.state = "ready"
            self.ledger.record(entry, "not_published", error=str(error), status_code=status)
            if error.kind in STOP_KINDS:
                raise Stop(error.kind, str(error))
            if error.kind in ("rejected", "media_fetch") or attempt == RETRIES:
                raise PostFailed(f"{error} (the container is not published and is reused on the next run)")
            if status == "IN_PROGRESS":
                if self._wait(entry) == "PUBLISHED":
                    return self._published(entry, None, "container status PUBLISHED")
            else:
                self.sleep(self.cfg.poll_interval_s * 2**attempt)
            attempt += 1

    def _status_after(self, entry: Entry, error: GraphError) -> str:
        """The container's status after a failed media_publish; unreadable leaves the post 'publishing'."""
        try:
            return self._status(entry, f"after media_publish: {error.kind}")
        except Waiting as e:
            raise Waiting(f"media_publish failed ({error}) and {e}") from None

    def _published(self, entry: Entry, media_id: str | None, how: str) -> Outcome:
        entry.state, entry.media_id, entry.error, entry.published_at = "published", media_id, None, now()
        entry.status_code = "PUBLISHED"
        self.ledger.record(entry, "published", media_id=media_id, how=how)
        self.log(f"{entry.post_id}: published" + (f" as media {media_id}" if media_id else f" ({how})"))
        return Outcome(entry.post_id, "published", "published", media_id)
