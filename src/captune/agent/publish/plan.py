"""The dry run: ``OUT_DIR/publish/plan.jsonl``, one line per post with the requests publishing it
would make (the token left out) and the local checks it passed or failed. Nothing is sent.

Requests, in order: the quota (``GET /{ig_user_id}/content_publishing_limit``), a ``HEAD`` of every
image URL, the containers (one per image with ``is_carousel_item=true`` then the ``CAROUSEL``
parent, or one container for a single image), the status poll until ``FINISHED`` and
``media_publish``. Values not known yet are placeholders in braces: ``{container_id}``,
``{child_container_ids}``, and ``{ig_user_id}`` / ``{image_base_url}`` until the config sets them.

Image URLs: the post's ``files["images"]`` are relative to OUT_DIR (``posts/e01-p01/01.jpg``); the
URL is ``image_base_url`` + the path after ``posts/`` (``IMAGE_BASE_URL/e01-p01/01.jpg``), so
``image_base_url`` is wherever the folder ``OUT_DIR/posts/`` is served.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from captune.agent.config import PublisherSection
from captune.agent.limits import text_problems
from captune.agent.records import Post
from captune.io import write_jsonl

MAX_CAROUSEL = 10
POLL_FIELDS = "status_code,status"
QUOTA_FIELDS = "config,quota_usage"


def image_url(base: str | None, relative: str) -> str:
    """The public URL of ``relative`` (``posts/<post_id>/<file>``) under ``base`` (a placeholder when unset)."""
    if not relative.startswith("posts/"):
        raise ValueError(f"{relative}: post images are expected under posts/")
    return f"{base or '{image_base_url}'}/{quote(relative[len('posts/'):])}"


def caption_of(post: Post, out_dir: Path) -> str:
    """The text to post: the caption file (caption and hashtags, exactly as posted), else the caption."""
    caption_file = post.files.get("caption")
    return (out_dir / caption_file).read_text(encoding="utf-8") if caption_file else post.caption


def post_checks(post: Post, out_dir: Path) -> dict:
    """Checks that need no network: Instagram's limits, the files on disk, the number of images.

    The caption file is checked again as it is now (it may have been edited since ``agent run``)."""
    images = list(post.files.get("images", []))
    caption_file = post.files.get("caption")
    missing = [p for p in images if not (out_dir / p).is_file()]
    has_caption = bool(caption_file) and (out_dir / caption_file).is_file()
    problems = list(post.problems)
    if has_caption:
        problems += [p for p in text_problems(caption_of(post, out_dir)) if p not in problems]
    return {"within_instagram_limits": not problems, "problems": problems,
            "images_on_disk": bool(images) and not missing, "missing_images": missing,
            "image_count_1_to_10": 1 <= len(images) <= MAX_CAROUSEL,
            "caption_file": has_caption}


def failed_checks(checks: dict) -> list[str]:
    """The names of the checks that failed, with their details."""
    failed = [k for k, v in checks.items() if v is False]
    details = checks["problems"] + [f"missing {p}" for p in checks["missing_images"]]
    return failed + details


def plan_requests(post: Post, caption: str, cfg: PublisherSection) -> list[dict]:
    """The requests that publish ``post`` on a first run, in order."""
    user = cfg.ig_user_id or "{ig_user_id}"
    urls = [image_url(cfg.image_base_url, p) for p in post.files.get("images", [])]
    quota = {"method": "GET", "path": f"/{user}/content_publishing_limit", "params": {"fields": QUOTA_FIELDS}}
    heads = [{"method": "HEAD", "url": url} for url in urls]
    poll = {"method": "GET", "path": "/{container_id}", "params": {"fields": POLL_FIELDS},
            "until": "status_code == FINISHED"}
    publish = {"method": "POST", "path": f"/{user}/media_publish", "params": {"creation_id": "{container_id}"}}
    media = f"/{user}/media"
    if len(urls) == 1:
        create = [{"method": "POST", "path": media, "params": {"image_url": urls[0], "caption": caption}}]
    else:
        create = [{"method": "POST", "path": media, "params": {"image_url": url, "is_carousel_item": "true"}}
                  for url in urls]
        create.append({"method": "POST", "path": media, "params": {
            "media_type": "CAROUSEL", "children": "{child_container_ids}", "caption": caption}})
    return [quota, *heads, *create, poll, publish]


def plan_row(post: Post, out_dir: Path, cfg: PublisherSection, state: str | None) -> dict:
    """One line of the plan; a post the ledger holds as published has no requests."""
    checks = post_checks(post, out_dir)
    checks["ig_user_id_set"] = cfg.ig_user_id is not None
    checks["image_base_url_set"] = cfg.image_base_url is not None
    images = list(post.files.get("images", []))
    requests = [] if state == "published" else plan_requests(post, caption_of(post, out_dir), cfg)
    return {"post_id": post.post_id, "kind": "image" if len(images) == 1 else "carousel", "images": images,
            "image_urls": [image_url(cfg.image_base_url, p) for p in images],
            "ready": not failed_checks(checks), "checks": checks, "ledger": state, "requests": requests,
            "sent": False}


def write_plan(posts: list[Post], out_dir: str | Path, cfg: PublisherSection,
               states: dict[str, str] | None = None) -> Path:
    """Write ``publish/plan.jsonl`` for ``posts``; ``states``: ledger states by post id. Sends nothing."""
    out_dir = Path(out_dir)
    path = out_dir / "publish" / "plan.jsonl"
    write_jsonl(path, [plan_row(post, out_dir, cfg, (states or {}).get(post.post_id)) for post in posts])
    return path


def dry_run(posts: list[Post], out_dir: str | Path, cfg: PublisherSection) -> Path:
    """The plan ``captune agent run`` writes next to the posts: sends nothing, whatever ``cfg`` says."""
    return write_plan(posts, out_dir, cfg)
