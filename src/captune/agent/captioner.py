"""The captioner stage: each post's images, montage, caption and hashtags, within Instagram's limits.

    posts = caption_posts(posts, images_for, {"e01": "Spring Fair"}, cfg.captioner, out_dir, clip_score)

For every post it writes ``posts/<post_id>/01.jpg``, ``02.jpg`` … (each photo conformed to 4:5 to
1.91:1 and at most ``max_width`` wide, under 8 MB), ``montage.jpg`` and ``caption.txt`` (the
caption, a blank line and the hashtags: exactly the text that would be posted). Captions come
from ``mode``:

- ``template``: an opener, the event and the post's labels (``template_caption``), picked from a
  hash of (seed, post id), so the same seed gives the same captions on any machine;
- ``model``: a captune captioner (``ModelCaptioner``: a registry name, hub id or folder, with an
  adapter) on the montage or the cover (``input``), greedy, batched across posts;
- ``hybrid``: the model's caption unless its CLIPScore is below ``hybrid_min_clipscore``; then the
  template's, with ``fallback_reason`` saying why.

Model captions are posted as sentences (capital first letter, final full stop). An empty model
caption is never posted: every mode falls back to the template for it and records "model caption
empty". CLIPScore is that of the caption without the swipe hint (a fixed suffix
that says nothing about the image), against the image the model sees (montage or cover), also in
template mode. Hashtags are the base ones plus those of the post's labels; ``fit_caption``
enforces the text limits (its notes go to ``Post.notes`` with the image conversions) and
``check_post`` records what still breaks them in ``Post.problems``.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from PIL import Image

from captune.agent.config import CaptionerSection
from captune.agent.limits import check_post, fit_caption, posted_text
from captune.agent.montage import conform, montage, save_jpeg
from captune.agent.records import Post
from captune.errors import CaptuneError
from captune.io import write_text

ClipScore = Callable[[list[Image.Image], list[str]], list[float]]
SWIPE_HINT = "Swipe →"
LABEL_PHRASES = {
    "group photo": "group photos", "person": "portraits", "portrait": "portraits", "night": "night shots",
    "landscape": "landscapes", "indoors": "indoor moments", "outdoors": "the outdoors", "audience": "the crowd",
    "stage": "the stage", "speaker": "the speakers", "award": "the awards", "sports": "sports action",
}
"""How a label reads in a sentence; other labels are used as they are."""
PATTERNS = ("{opener} {event}: {labels}.", "{opener} {event}, featuring {labels}.",
            "{opener} {event}, with {labels}.")
"""Sentence shapes of a template caption with labels (one is picked per post)."""


def hashtags_for(labels: list[str], cfg: CaptionerSection) -> list[str]:
    """The base hashtags, then each label's (``label_hashtags``), deduplicated, at most ``max_hashtags``.

    Tags are normalised to ``#`` and no whitespace (``"Group Shot"`` → ``#GroupShot``); labels
    match ``label_hashtags`` keys case-insensitively.
    """
    per_label = {k.casefold(): v for k, v in cfg.label_hashtags.items()}
    raw = list(cfg.base_hashtags) + [t for label in labels for t in per_label.get(label.casefold(), [])]
    tags: dict[str, str] = {}
    for tag in raw:
        word = "".join(tag.split()).lstrip("#")
        if word:
            tags.setdefault(word.casefold(), "#" + word)
    return list(tags.values())[:cfg.max_hashtags]


def _choices(seed: int, post_id: str, *sizes: int) -> list[int]:
    """One index per size, from sha256 of (seed, post id): stable across runs, machines and Python versions."""
    digest = hashlib.sha256(f"{seed}:{post_id}".encode()).digest()
    return [int.from_bytes(digest[4 * i:4 * i + 4], "little") % n for i, n in enumerate(sizes)]


def _labels_phrase(labels: list[str]) -> str:
    words = list(dict.fromkeys(LABEL_PHRASES.get(label.casefold(), label) for label in labels))
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def template_body(post: Post, event_name: str, cfg: CaptionerSection, rng_seed: int | None = None) -> str:
    """The template caption without the swipe hint: opener + event + labels, e.g.
    "Highlights from Spring Fair: group photos, night shots and food."."""
    seed = cfg.seed if rng_seed is None else rng_seed
    openers = cfg.openers or ["Highlights from"]
    opener_i, pattern_i = _choices(seed, post.post_id, len(openers), len(PATTERNS))
    event = event_name.strip() or "our latest event"
    if not post.labels:
        return f"{openers[opener_i]} {event}."
    return PATTERNS[pattern_i].format(opener=openers[opener_i], event=event, labels=_labels_phrase(list(post.labels)))


def with_swipe_hint(caption: str, post: Post, cfg: CaptionerSection) -> str:
    """``caption`` + " Swipe →" when ``include_swipe_hint`` is on and the post is a carousel (2+ images)."""
    return f"{caption} {SWIPE_HINT}" if cfg.include_swipe_hint and len(post.images) > 1 else caption


def template_caption(post: Post, event_name: str, cfg: CaptionerSection, rng_seed: int | None = None) -> str:
    """The template caption; the opener and sentence shape depend only on (seed, post id).

    ``rng_seed`` overrides ``cfg.seed``.
    """
    return with_swipe_hint(template_body(post, event_name, cfg, rng_seed), post, cfg)


class ModelCaptioner:
    """A captune captioner for PIL images: loaded once, greedy, batched (``captune.generate``).

    ``model`` is a registry name (``shapes-blip2-opt``), a hub id or a folder; ``adapter_path`` a
    checkpoint of ``captune train`` (``model``, when given, replaces the base model it names, as
    ``captune caption --model --adapter`` does). Captions are cleaned as ``captune caption`` cleans them
    (@handles, hashtags and links removed). ``trained_prompt`` is the prompt the adapter was
    trained with (None for a base model): a model captions best with the prompt it learnt with.
    """

    def __init__(self, model: str | None, adapter_path: str | None = None, max_new_tokens: int = 40,
                 batch_size: int = 8, dtype: str = "auto"):
        import torch

        from captune.generate import Decoding, load_for_captioning
        from captune.models.family import adapt
        from captune.models.loading import resolve_dtype

        net, processor, meta = load_for_captioning(model, adapter_path, resolve_dtype(dtype))
        device = "cuda" if torch.cuda.is_available() else "cpu"
        captioner, self.batcher = adapt(net, processor)  # any family: BLIP-2, LLaVA-1.5, BLIP
        self.captioner = captioner.to(device).eval()
        self.decoding = Decoding(strategy="greedy", max_new_tokens=max_new_tokens)
        self.batch_size = batch_size
        self.trained_prompt = meta.get("prompt") if adapter_path else None

    @classmethod
    def from_config(cls, cfg: CaptionerSection, batch_size: int = 8) -> ModelCaptioner:
        """``cfg.model``, or with ``cfg.adapter_path`` the base model its checkpoint names.

        Warns when ``cfg.model`` or ``cfg.prompt`` differ from the checkpoint's base model and
        training prompt: the first is then not used, the second usually gives worse captions.
        """
        if not cfg.adapter_path:
            return cls(cfg.model, None, cfg.max_new_tokens, batch_size)
        from captune.models.loading import read_checkpoint_meta

        meta = read_checkpoint_meta(cfg.adapter_path)
        if meta.get("base_model") != cfg.model:
            warnings.warn(f"captioner.adapter_path {cfg.adapter_path} was trained on {meta.get('base_model')!r}, "
                          f"which is loaded; captioner.model {cfg.model!r} is not used", stacklevel=2)
        if meta.get("prompt", "") != cfg.prompt:
            warnings.warn(f"captioner.prompt differs from the prompt {cfg.adapter_path} was trained with "
                          f"({meta.get('prompt', '')!r}): captions are usually worse; set captioner.prompt to it",
                          stacklevel=2)
        return cls(None, cfg.adapter_path, cfg.max_new_tokens, batch_size)

    def caption(self, images: list[Image.Image], prompts: list[str]) -> list[str]:
        """One cleaned caption per image; ``prompts[i]`` is image i's prompt, written out."""
        from captune.generate import CaptionItem, generate_captions, tidy

        if len(images) != len(prompts):
            raise CaptuneError(f"ModelCaptioner.caption: {len(images)} images but {len(prompts)} prompts")
        items = [CaptionItem(f"{i}", image.convert("RGB"), {}, prompt=p)
                 for i, (image, p) in enumerate(zip(images, prompts))]
        out = generate_captions(self.captioner, self.batcher, items, [self.decoding], "", self.batch_size)[0]
        return [tidy(candidates[0]) for candidates in out]


def model_prompt(cfg: CaptionerSection, event_name: str, labels: list[str]) -> str:
    """``cfg.prompt`` with ``{event}`` and ``{labels}`` filled as at training time."""
    from captune.models.prompt import render_prompt

    return render_prompt(cfg.prompt, {"event": event_name, "labels": labels})


@dataclass
class _Draft:
    """A post whose files are written, waiting for its caption."""
    post: Post
    event_name: str
    seen: Image.Image
    """What the model and CLIPScore see: the montage or the cover."""
    images: list[dict]
    files: dict
    notes: list[str]


def caption_posts(
    posts: list[Post],
    images_for: Callable[[Post], list[Image.Image]],
    event_names: Mapping[str, str],
    cfg: CaptionerSection,
    out_dir: str | Path,
    clip_score: ClipScore | None = None,
    model: ModelCaptioner | None = None,
) -> list[Post]:
    """Write every post's files and caption it (see the module docstring); returns the updated posts.

    ``images_for(post)`` gives the post's photos in ``post.images`` order (upright RGB);
    ``event_names`` maps event ids to the names captions use (the id when missing);
    ``clip_score(images, captions)`` gives CLIPScores (needed by hybrid). ``model`` is loaded
    from ``cfg`` for model and hybrid when not given. Posts are handled ``model.batch_size`` (or 8)
    at a time: one model call and one CLIPScore call per batch.
    """
    if cfg.mode == "hybrid" and clip_score is None:
        raise CaptuneError("captioner.mode hybrid compares the model caption's CLIPScore with hybrid_min_clipscore: "
                           "pass clip_score, or set captioner.mode to model or template")
    if cfg.mode != "template" and model is None and posts:
        model = ModelCaptioner.from_config(cfg)
    step = model.batch_size if model is not None and cfg.mode != "template" else 8
    out_dir = Path(out_dir)
    done: list[Post] = []
    for start in range(0, len(posts), step):
        drafts = [_write_images(p, images_for(p), event_names.get(p.event, p.event), cfg, out_dir)
                  for p in posts[start:start + step]]
        done += _finish(drafts, cfg, out_dir, clip_score, model if cfg.mode != "template" else None)
    return done


def _write_images(post: Post, images: list[Image.Image], event_name: str, cfg: CaptionerSection,
                  out_dir: Path) -> _Draft:
    """Conform and save the carousel images and the montage of one post."""
    if len(images) != len(post.images) or not images:
        raise CaptuneError(f"post {post.post_id}: {len(post.images)} photo ids but {len(images)} images were "
                           "given for them (a post needs at least one)")
    folder = out_dir / "posts" / post.post_id
    infos, names, notes = [], [], []
    for i, image in enumerate(images, 1):
        photo, done = conform(image, cfg.aspect, cfg.max_width)
        name = f"{i:02d}.jpg"
        info = save_jpeg(photo, folder / name, cfg.jpeg_quality)
        infos.append(info | {"format": "JPEG"})
        names.append((folder / name).relative_to(out_dir).as_posix())
        notes += [f"{name}: {d}" for d in done]
        if info["quality"] != cfg.jpeg_quality:
            notes.append(f"{name}: JPEG quality {cfg.jpeg_quality} lowered to {info['quality']} to stay under 8 MB")
    sheet = montage(images, cfg.montage_max_tiles, cfg.montage_tile_px)
    save_jpeg(sheet, folder / "montage.jpg", cfg.jpeg_quality)
    seen = sheet if cfg.input == "montage" else images[0].convert("RGB")
    files = {"images": names, "montage": (folder / "montage.jpg").relative_to(out_dir).as_posix(),
             "caption": (folder / "caption.txt").relative_to(out_dir).as_posix()}
    return _Draft(post, event_name, seen, infos, files, notes)


def _finish(drafts: list[_Draft], cfg: CaptionerSection, out_dir: Path, clip_score: ClipScore | None,
            model: ModelCaptioner | None) -> list[Post]:
    """Caption a batch of drafts, fit the limits, write ``caption.txt``; the finished posts."""
    bodies = [template_body(d.post, d.event_name, cfg) for d in drafts]
    sources, reasons, scores = ["template"] * len(drafts), [None] * len(drafts), [None] * len(drafts)
    if model is not None:
        _use_model(drafts, cfg, clip_score, model, bodies, sources, reasons, scores)
    if clip_score is not None and cfg.calc_clipscore:
        todo = [i for i, s in enumerate(sources) if s == "template"]
        for i, s in zip(todo, clip_score([drafts[i].seen for i in todo], [bodies[i] for i in todo]) if todo else []):
            scores[i] = s
    return [_post(d, cfg, out_dir, body, source, reason, score if cfg.calc_clipscore else None)
            for d, body, source, reason, score in zip(drafts, bodies, sources, reasons, scores)]


def _use_model(drafts, cfg, clip_score, model, bodies, sources, reasons, scores) -> None:
    """Put the model's captions into ``bodies`` where they are kept (hybrid: CLIPScore high enough)."""
    prompts = [model_prompt(cfg, d.event_name, list(d.post.labels)) for d in drafts]
    captions = [_sentence(c) for c in model.caption([d.seen for d in drafts], prompts)]
    filled = [i for i, c in enumerate(captions) if c.strip()]
    wanted = clip_score is not None and (cfg.mode == "hybrid" or cfg.calc_clipscore) and filled
    model_scores = dict(zip(filled, clip_score([drafts[i].seen for i in filled], [captions[i] for i in filled]))) \
        if wanted else {}
    for i, caption in enumerate(captions):
        score = model_scores.get(i)
        if not caption.strip():
            reasons[i] = "model caption empty"
        elif cfg.mode == "hybrid" and score < cfg.hybrid_min_clipscore:
            reasons[i] = f"model CLIPScore {score:.3f} < {cfg.hybrid_min_clipscore:g}"
        else:
            bodies[i], sources[i], scores[i] = caption, "model", score


def _sentence(caption: str) -> str:
    """A model caption as a sentence: first letter capitalised, a full stop unless it ends with punctuation."""
    caption = caption.strip()
    if not caption:
        return caption
    caption = caption[0].upper() + caption[1:]
    return caption if caption[-1] in ".!?…" else caption + "."


def _post(d: _Draft, cfg: CaptionerSection, out_dir: Path, body: str, source: str, reason: str | None,
          score: float | None) -> Post:
    caption = with_swipe_hint(body, d.post, cfg)
    text, tags, fit_notes = fit_caption(caption, hashtags_for(list(d.post.labels), cfg), cfg.max_hashtags)
    write_text(out_dir / d.files["caption"], posted_text(text, tags))
    return replace(d.post, caption=text, hashtags=tuple(tags), mode=cfg.mode, source=source,
                   clipscore=None if score is None else round(float(score), 4), fallback_reason=reason,
                   problems=tuple(check_post(text, tags, d.images)), notes=tuple(d.notes + fit_notes),
                   files=d.files)
