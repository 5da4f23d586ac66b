"""Helpers of the publisher tests: a synthetic agent output folder and a live config for the fake."""

from fake_graph import USER
from PIL import Image

from captune.agent.config import PublisherSection
from captune.agent.records import Post
from captune.io import write_jsonl

TOKEN = "EAAG-test-token-9f8e7d6c5b4a"


def make_out_dir(root, sizes):
    """An OUT_DIR with one post per entry of ``sizes`` (its number of images), captions naming the post."""
    posts = []
    for n, size in enumerate(sizes, 1):
        post_id = f"e01-p{n:03d}"
        folder = root / "posts" / post_id
        folder.mkdir(parents=True)
        images = []
        for i in range(1, size + 1):
            Image.new("RGB", (32, 32), (n % 256, i * 40, 90)).save(folder / f"{i:02d}.jpg")
            images.append(f"posts/{post_id}/{i:02d}.jpg")
        caption = f"Post {post_id}: the spring fair.\n\n#Club #Fair"
        (folder / "caption.txt").write_text(caption, encoding="utf-8")
        posts.append(Post(post_id, "e01", tuple(f"cam/{post_id}-{i}.jpg" for i in range(size)),
                          f"cam/{post_id}-0.jpg", caption=caption.split("\n")[0], hashtags=("#Club", "#Fair"),
                          files={"images": images, "caption": f"posts/{post_id}/caption.txt"}))
    write_jsonl(root / "posts.jsonl", [p.to_json() for p in posts])
    return root


def live_config(fake, **changes):
    """A publisher section that says live on every switch, pointed at ``fake``, polling fast."""
    values = {"enabled": True, "dry_run": False, "graph_url": fake.graph_url, "ig_user_id": USER,
                  "image_base_url": fake.image_base_url, "poll_interval_s": 0.001, "poll_timeout_s": 5.0,
                  "max_posts_per_run": 1000, "timeout_s": 5.0}
    values.update(changes)
    return PublisherSection(**values)
