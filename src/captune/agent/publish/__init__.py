"""Publishing the agent's posts. The dry run (``dry_run``) sends nothing: it writes
``publish/plan.jsonl``, one line per post with the Instagram Graph API requests publishing would
make (containers, status polling, media_publish; the token left out) and the checks the post
passed or failed. Nothing leaves the machine.
"""

from __future__ import annotations

from pathlib import Path

from captune.agent.config import PublisherSection
from captune.agent.records import Post
from captune.io import write_jsonl

USER = "{ig_user_id}"
"""Placeholder for the Instagram user id (the plan is written before one is configured)."""


def plan_requests(post: Post, caption: str) -> list[dict]:
    """The Graph API calls that publish ``post``: one container per image for a carousel, then the post."""
    images = list(post.files.get("images", []))
    poll = {"method": "GET", "path": "/{container_id}", "params": {"fields": "status_code,status"},
            "until": "status_code == FINISHED"}
    publish = {"method": "POST", "path": f"/{USER}/media_publish", "params": {"creation_id": "{container_id}"}}
    if len(images) == 1:
        create = {"method": "POST", "path": f"/{USER}/media", "params": {"image_url": images[0], "caption": caption}}
        return [create, poll, publish]
    children = [{"method": "POST", "path": f"/{USER}/media",
                 "params": {"image_url": image, "is_carousel_item": "true"}} for image in images]
    parent = {"method": "POST", "path": f"/{USER}/media",
              "params": {"media_type": "CAROUSEL", "children": "{child_container_ids}", "caption": caption}}
    return [*children, parent, poll, publish]


def dry_run(posts: list[Post], out_dir: str | Path, cfg: PublisherSection) -> Path:
    """Write ``publish/plan.jsonl`` for every post; returns its path. Sends nothing, whatever ``cfg`` says."""
    out_dir = Path(out_dir)
    rows = []
    for post in posts:
        caption_file = post.files.get("caption")
        caption = (out_dir / caption_file).read_text(encoding="utf-8") if caption_file else post.caption
        rows.append({
            "post_id": post.post_id, "kind": "image" if len(post.images) == 1 else "carousel",
            "images": list(post.files.get("images", [])), "ready": not post.problems,
            "checks": {"within_instagram_limits": not post.problems, "problems": list(post.problems)},
            "requests": plan_requests(post, caption), "sent": False,
        })
    return _write(out_dir / "publish" / "plan.jsonl", rows)


def _write(path: Path, rows: list[dict]) -> Path:
    write_jsonl(path, rows)
    return path
