"""Caption generation: decoding presets, batched captioning, resumable output.

    captune caption --model tiny-blip2-opt --input photos/ --out preds.jsonl --decoding beam

Decoding presets follow common practice: ``greedy``; ``beam`` (num_beams, length_penalty);
``top_k`` and ``top_p`` sampling with a temperature; ``temperature`` (pure sampling). Every
setting can be overridden. A sampled caption depends only on the decoding, the seed and the image
id (``ItemSampler``), never on the batch size or on where a resumed run starts. Output lines are
``{"image_id", "caption", "model", "adapter", "decoding"}`` plus what made the caption (see
``captune.provenance``); a rerun skips images already captioned with the same model, adapter,
prompt, dtype, decoding and clean-up, refuses a file written otherwise, and loads no model when
nothing is left to caption. A killed run loses and duplicates nothing (each line is flushed
whole; a cut-off last line is dropped on resume). An image that cannot be read is listed in
``captions.rejects.jsonl`` next to ``captions.jsonl`` and the run goes on; a rerun tries it again.
Under ``accelerate launch`` the processes share the images and the main process writes the one
output and the one rejects file (``captune.shards``).
"""

from __future__ import annotations

import functools
import hashlib
import os
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import Field

from captune.config import Schema
from captune.errors import CaptuneError
from captune.provenance import KEY, default_postprocess

IMAGE_WORKERS = 2
"""Threads that decode and preprocess images ahead of the model in ``captune caption`` and ``evaluate``."""
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}


class Decoding(Schema):
    strategy: Literal["greedy", "beam", "top_k", "top_p", "temperature"] = "beam"
    """greedy | beam | top_k | top_p | temperature (sampling strategies draw with a fixed seed)."""
    num_beams: int = Field(3, ge=1)
    """Beams for strategy beam."""
    length_penalty: float = 1.0
    """Beam length penalty (>1 favours longer captions)."""
    top_k: int = Field(50, ge=0)
    """Candidates kept for strategy top_k."""
    top_p: float = Field(0.9, gt=0, le=1)
    """Probability mass kept for strategy top_p."""
    temperature: float = Field(1.0, gt=0)
    """Sampling temperature (sampling strategies only)."""
    no_repeat_ngram_size: int = Field(0, ge=0)
    """Forbid repeating n-grams of this size (0: off)."""
    repetition_penalty: float = Field(1.0, gt=0)
    """Penalty on tokens already generated (1.0: off)."""
    min_new_tokens: int = Field(0, ge=0)
    """Minimum caption length in tokens."""
    max_new_tokens: int = Field(30, ge=1)
    """Maximum caption length in tokens."""
    num_return_sequences: int = Field(1, ge=1)
    """Captions per image (the first is the caption; all are kept as candidates)."""
    seed: int = 0
    """Seed for sampling strategies."""

    def generate_kwargs(self) -> dict[str, Any]:
        kw: dict[str, Any] = {
            "max_new_tokens": self.max_new_tokens, "min_new_tokens": self.min_new_tokens,
            "num_return_sequences": self.num_return_sequences, "repetition_penalty": self.repetition_penalty,
            "no_repeat_ngram_size": self.no_repeat_ngram_size,
        }
        if self.strategy in ("greedy", "beam"):
            beams = self.num_beams if self.strategy == "beam" else 1
            if self.num_return_sequences > beams:
                raise CaptuneError(f"decoding: num_return_sequences {self.num_return_sequences} > beams {beams}")
            return kw | {"do_sample": False, "num_beams": beams, "length_penalty": self.length_penalty}
        kw |= {"do_sample": True, "num_beams": 1, "temperature": self.temperature}
        if self.strategy == "top_k":
            return kw | {"top_k": self.top_k, "top_p": 1.0}
        if self.strategy == "top_p":
            return kw | {"top_k": 0, "top_p": self.top_p}
        return kw | {"top_k": 0, "top_p": 1.0}

    def label(self) -> str:
        """A short name for tables: ``beam(n=5)``, ``top_p(p=0.9,t=0.7)``."""
        if self.strategy == "beam":
            return f"beam(n={self.num_beams})"
        if self.strategy == "top_k":
            return f"top_k(k={self.top_k},t={self.temperature:g})"
        if self.strategy == "top_p":
            return f"top_p(p={self.top_p:g},t={self.temperature:g})"
        if self.strategy == "temperature":
            return f"temperature(t={self.temperature:g})"
        return "greedy"


# Named presets; the sampling settings are the usual ones for captioning (beam 5, top-k 50 at 0.8,
# nucleus 0.9 at 0.7).
PRESETS: dict[str, Decoding] = {
    "greedy": Decoding(strategy="greedy"),
    "beam": Decoding(strategy="beam", num_beams=5),
    "top_k": Decoding(strategy="top_k", top_k=50, temperature=0.8),
    "top_p": Decoding(strategy="top_p", top_p=0.9, temperature=0.7),
    "temperature": Decoding(strategy="temperature", temperature=1.0),
}


def decoding_preset(name: str, **overrides: Any) -> Decoding:
    if name not in PRESETS:
        raise CaptuneError(f"unknown decoding preset {name!r}; choose from {', '.join(PRESETS)}")
    return Decoding.model_validate(PRESETS[name].model_dump() | {k: v for k, v in overrides.items() if v is not None})


@dataclass
class CaptionItem:
    image_id: str
    image: Any
    """A path, or a PIL image already in memory (a montage, say)."""
    meta: dict[str, Any]
    prompt: str | None = None
    """This item's prompt, already written out (instead of the template filled from ``meta``)."""


def generate_captions(
    captioner,
    batcher,
    items: Sequence[CaptionItem],
    decodings: Sequence[Decoding],
    prompt: str = "",
    batch_size: int = 8,
    on_batch: Callable[[list[CaptionItem], list[list[list[str]]]], None] | None = None,
    progress: bool = False,
    features=None,
    workers: int = 0,
    on_unreadable: Callable[[CaptionItem, Exception], None] | None = None,
) -> list[list[list[str]]]:
    """Captions for each decoding: ``out[d][i]`` is the list of candidates for ``items[i]``.

    Image features are computed once per batch and shared by all decodings; with a
    ``FeatureCache`` (``features``) they are read from it instead. ``workers`` > 0: that many
    threads decode and preprocess the next batches' images while the model runs on this one
    (the same captions as without them). An image that cannot be read (``ImageError`` from
    ``captune.data.images.load_image``) stops the run, or with ``on_unreadable`` is passed to it,
    in this thread, with its item: it gets no candidates (``[]``), the other images of its batch
    are captioned as without it, and ``on_batch`` sees only the readable items.
    """
    from tqdm.auto import tqdm

    out: list[list[list[str]]] = [[] for _ in decodings]
    bar = tqdm(total=len(items), desc="captioning", unit="img", disable=not progress or None)
    chunks = [list(items[start:start + batch_size]) for start in range(0, len(items), batch_size)]
    tokenizer_lock = threading.Lock()  # a fast tokenizer must not be used by two threads at once
    prepare = functools.partial(_prepare, batcher, prompt, features is None, tokenizer_lock)
    for chunk, (kept, batch, failures) in zip(chunks, _prefetched(prepare, chunks, workers)):
        for it, error in failures:
            if on_unreadable is None:
                raise error
            on_unreadable(it, error)
        readable = [chunk[i] for i in kept]
        results = [[] for _ in decodings]
        if readable:
            results = _caption_batch(captioner, batcher, batch, readable, decodings, features, tokenizer_lock)
        for d_out, r in zip(out, results):
            d_out.extend(_in_place(r, kept, len(chunk)))
        if on_batch and readable:
            on_batch(readable, results)
        bar.update(len(chunk))
    bar.close()
    return out


def _caption_batch(captioner, batcher, batch: dict, chunk: list[CaptionItem], decodings, features,
                   tokenizer_lock: threading.Lock) -> list[list[list[str]]]:
    """The candidates of each item of ``chunk`` for each decoding: ``[d][i]``."""
    device = next(captioner.parameters()).device
    batch = {k: v.to(device) for k, v in batch.items()}
    with torch.inference_mode():
        if features is not None:
            vision = torch.stack([features.get(it.image) for it in chunk]).to(device)  # [B, P+1, H]
        else:
            vision = captioner.vision_embeds(batch.pop("pixel_values"))
        results = []
        for d in decodings:
            ids = _generate(captioner, batch, vision, d, [it.image_id for it in chunk])
            with tokenizer_lock:
                texts = batcher.decode(ids)
            n = d.num_return_sequences
            results.append([texts[i * n:(i + 1) * n] for i in range(len(chunk))])
    return results


def _in_place(candidates: list[list[str]], kept: list[int], size: int) -> list[list[str]]:
    """A chunk's candidates at the positions of its readable items, ``[]`` at the others."""
    slots: list[list[str]] = [[] for _ in range(size)]
    for i, c in zip(kept, candidates):
        slots[i] = c
    return slots


def _prepare(batcher, prompt: str, with_images: bool, tokenizer_lock: threading.Lock, chunk) -> tuple:
    """``(kept, batch, failures)`` for ``chunk``: the positions of its readable items, their
    generation batch (images decoded and preprocessed, prompts tokenized; None when none is
    readable) and ``(item, ImageError)`` for each image that cannot be read."""
    from captune.data.images import ImageError
    from captune.models.family import Example
    from captune.models.prompt import render_prompt

    images = [_image(it.image) if with_images else None for it in chunk]
    kept = [i for i, image in enumerate(images) if not isinstance(image, ImageError)]
    failures = [(it, image) for it, image in zip(chunk, images) if isinstance(image, ImageError)]
    readable = [(images[i], chunk[i]) for i in kept]
    examples = [Example(image, render_prompt(prompt, it.meta) if it.prompt is None else it.prompt, None, it.image_id)
                for image, it in readable]
    if not examples:
        return kept, None, failures
    with tokenizer_lock:
        return kept, batcher.generation_batch(examples), failures


def _prefetched(prepare: Callable, chunks: list, workers: int) -> Iterator:
    """``prepare(chunk)`` for each chunk in order; with ``workers`` threads, up to ``workers + 1``
    chunks are prepared ahead of the one the caller is using."""
    if workers <= 0:
        yield from map(prepare, chunks)
        return
    pool = ThreadPoolExecutor(workers, thread_name_prefix="captune-images")
    try:
        pending = deque(pool.submit(prepare, c) for c in chunks[: workers + 1])
        for ahead in chunks[workers + 1 :] + [None] * len(pending):
            done = pending.popleft().result()
            if ahead is not None:
                pending.append(pool.submit(prepare, ahead))
            yield done
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _image(image):
    """``image`` decoded when it is a path (as it is otherwise), or the ``ImageError`` that says
    why it cannot be read (returned, so the item it belongs to stays known)."""
    from captune.data.images import ImageError, load_image

    if not isinstance(image, (str, os.PathLike)):
        return image
    try:
        return load_image(image)
    except ImageError as e:
        return e


def _generate(captioner, batch: dict, vision: torch.Tensor, d: Decoding, image_ids: list[str]) -> torch.Tensor:
    """Token ids, ``num_return_sequences`` rows per image; sampling draws per image (``ItemSampler``)."""
    from transformers import LogitsProcessorList

    kw = d.generate_kwargs()
    if not kw["do_sample"]:
        return captioner.generate(**batch, vision_embeds=vision, **kw)
    n = d.num_return_sequences
    rows = {k: v.repeat_interleave(n, dim=0) for k, v in batch.items()}  # [B * n, T], image i at rows i*n..
    kw = {k: v for k, v in kw.items() if k not in ("temperature", "top_k", "top_p")}
    kw |= {"do_sample": False, "num_return_sequences": 1,
           "logits_processor": LogitsProcessorList([ItemSampler(d, image_ids)])}
    return captioner.generate(**rows, vision_embeds=vision.repeat_interleave(n, dim=0), **kw)


def item_seed(seed: int, image_id: str, candidate: int) -> int:
    """The seed of one caption's random stream: a hash of (decoding seed, image id, candidate)."""
    digest = hashlib.sha256(f"{seed}:{image_id}:{candidate}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


class ItemSampler:
    """A logits processor that samples each row's next token from that row's own random stream.

    ``generate`` samples every row of a batch from one global stream, so a caption would depend
    on the images that share its batch and on where a resumed run starts. Here row ``i * n + j``
    (candidate ``j`` of image ``i``) draws from a CPU generator seeded by ``item_seed``. It applies
    transformers' own warpers in ``generate``'s order (temperature, top-k, top-p), draws, and
    returns scores in which only the drawn token is finite: ``generate`` runs with
    ``do_sample=False`` and its greedy step takes that token. Rows that have finished still draw,
    so a row's stream advances one draw per step whatever the other rows do.
    """

    def __init__(self, decoding: Decoding, image_ids: Sequence[str]):
        from transformers import (
            LogitsProcessorList,
            TemperatureLogitsWarper,
            TopKLogitsWarper,
            TopPLogitsWarper,
        )

        kw = decoding.generate_kwargs()
        n = decoding.num_return_sequences
        self.generators = [torch.Generator().manual_seed(item_seed(decoding.seed, i, j))
                           for i in image_ids for j in range(n)]
        self.warpers = LogitsProcessorList(
            ([TemperatureLogitsWarper(kw["temperature"])] if kw["temperature"] != 1.0 else [])
            + ([TopKLogitsWarper(kw["top_k"])] if kw["top_k"] else [])
            + ([TopPLogitsWarper(kw["top_p"])] if kw["top_p"] < 1.0 else [])
        )

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        if scores.shape[0] != len(self.generators):
            raise CaptuneError(f"ItemSampler has {len(self.generators)} random streams for {scores.shape[0]} rows")
        probs = self.warpers(input_ids, scores.float()).softmax(dim=-1).cpu()  # [rows, V]
        picks = torch.stack([torch.multinomial(p, 1, generator=g) for p, g in zip(probs, self.generators)])
        drawn = torch.full_like(scores, float("-inf"))
        return drawn.scatter_(1, picks.to(scores.device), 0.0)  # [rows, V]: 0 at the drawn token


def items_from_input(path: str | os.PathLike, image_root: str | None = None) -> list[CaptionItem]:
    """Images to caption from a folder (recursively) or a records JSONL file."""
    from captune.data.records import read_records

    p = Path(path)
    if p.is_dir():
        files = sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file())
        if not files:
            raise CaptuneError(f"{p}: no images found (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
        return [CaptionItem(f.relative_to(p).as_posix(), str(f), {}) for f in files]
    root = Path(image_root) if image_root else p.parent
    return [CaptionItem(r.image_id, str(root / r.image), r.meta) for r in read_records(p)]


def tidy(caption: str, postprocess=None) -> str:
    """Apply a ``CleanConfig`` to a generated caption (``None``: the default; ``False``: none)."""
    if postprocess is False:
        return caption
    from captune.data.clean import clean_caption

    text, _ = clean_caption(caption, postprocess or default_postprocess())
    return text


def load_for_captioning(model: str | None, adapter: str | None, dtype: str = "float32", merge: bool = False):
    """``(model, processor, meta)`` for a base model or a captune checkpoint (``meta`` has the prompt)."""
    from captune.models.loading import load_captioner, load_checkpoint

    if adapter:
        return load_checkpoint(adapter, model=model, dtype=dtype, merge=merge)
    if not model:
        raise CaptuneError("give --model NAME_OR_PATH, or --adapter DIR for a fine-tuned checkpoint")
    net, processor = load_captioner(model, dtype=dtype)
    return net, processor, {"base_model": model, "prompt": ""}


def caption_to_files(
    items: Sequence[CaptionItem],
    outs: Mapping[str, str | os.PathLike],
    decodings: Mapping[str, Decoding],
    model: str | None = None,
    adapter: str | None = None,
    prompt: str | None = None,
    batch_size: int = 8,
    dtype: str = "auto",
    progress: bool | None = None,
    postprocess=None,
    rejects: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Caption ``items`` with every decoding (``outs[name]`` is its JSONL file), resumably.

    Lines already in a file are kept only when they were written with this run's model, adapter,
    prompt, dtype, decoding and clean-up (``captune.provenance``); otherwise this stops before
    captioning anything. The model is loaded only when some image is left to caption, and the
    image features of a batch are computed once for all decodings. A cut-off last line (a killed
    run) is dropped and redone. Under ``accelerate launch`` every process captions its share and
    the main process merges the shares into each file (``captune.shards``); ``main_process`` in
    the result says which process this is.

    An image that cannot be read stops the run (``ImageError``), or with ``rejects`` the run goes
    on and the main process rewrites that file atomically with one line per such image of this
    run (``image_id``, ``image``, ``reason``, ``detail``), in the input's order, or removes it when
    every image could be read. Those images are not done: a rerun tries them again.
    """
    from captune.provenance import postprocess_json
    from captune.shards import merge_parts, part_files, part_path, processes

    paths = {name: Path(outs[name]) for name in decodings}
    procs = processes()
    source, loaded = _identify(model, adapter, prompt, dtype)
    post = postprocess_json(postprocess)
    keys = {name: source | {"decoding": dec.model_dump(), "postprocess": post} for name, dec in decodings.items()}
    sharded = procs.count > 1 or any(part_files(p) for p in paths.values())
    done = {name: _done(paths[name], keys[name]) for name in decodings}
    procs.wait()  # every process knows what is done before any writes a part
    todo = [it for it in items if any(it.image_id not in done[name] for name in decodings)]
    mine = todo[procs.rank::procs.count]
    unreadable: list[dict[str, str]] = []
    if mine:
        net, processor, _ = loaded or load_for_captioning(model, adapter, source["dtype"])
        targets = {name: part_path(p, procs.rank) for name, p in paths.items()} if sharded else paths
        device = f"cuda:{procs.local_rank}" if torch.cuda.is_available() else "cpu"
        unreadable = _caption(mine, net, processor, targets, decodings, keys, done, batch_size,
                              progress if procs.main else False, postprocess, device,  # one bar: the main process's
                              rejects is not None)
    if sharded:
        procs.wait()
        if procs.main:
            for p in paths.values():
                merge_parts(p, [it.image_id for it in items])
    unreadable = procs.gather(unreadable)
    if rejects is not None and procs.main:
        _write_rejects(Path(rejects), items, unreadable)
    return {
        "images": len(items),
        "captioned": len(todo) - len(unreadable),
        "skipped": len(items) - len(todo),
        "unreadable": len(unreadable),
        "rejects": str(rejects) if unreadable else None,
        "prompt": source["prompt"],
        "source": source,
        "files": {name: str(p) for name, p in paths.items()},
        "decodings": {name: d.label() for name, d in decodings.items()},
        "processes": procs.count,
        "main_process": procs.main,
    }


def _identify(model, adapter, prompt, dtype) -> tuple[dict[str, Any], tuple | None]:
    """The model part of the provenance key (``caption_source``), and the loaded model when it had
    to be loaded to be identified (a hub model not yet in the local cache)."""
    from captune.provenance import caption_source

    source = caption_source(model, adapter, prompt, dtype)
    if source["model_weights"] is not None:
        return source, None
    loaded = load_for_captioning(model, adapter, source["dtype"])
    source = caption_source(model, adapter, prompt, dtype)
    if source["model_weights"] is None:
        raise CaptuneError(f"model {source['model']!r} loaded, but its weights are not in the Hugging Face "
                           "cache to be identified; save it with save_pretrained and pass the folder")
    return source, loaded


def _done(path: Path, key: Mapping[str, Any]) -> set[str]:
    """Image ids captioned with ``key`` in ``path`` or in the parts a run into it left."""
    from captune.provenance import reusable_ids
    from captune.shards import part_files

    return set().union(*(reusable_ids(p, key) for p in [path, *part_files(path)]))


def _caption(todo, net, processor, paths, decodings, keys, done, batch_size, progress, postprocess,
             device, go_past_unreadable: bool) -> list[dict[str, str]]:
    """Caption ``todo`` on ``device`` and append each image's line to every file that lacks it.
    Returns the reject lines of the images that cannot be read (with ``go_past_unreadable``;
    without, the first such image stops the run)."""
    from captune.io import JsonlAppender
    from captune.models.family import adapt

    captioner, batcher = adapt(net, processor)
    captioner = captioner.to(device).eval()
    logs = {name: JsonlAppender(p) for name, p in paths.items()}

    def write(chunk, results):
        for name, per_item in zip(decodings, results):
            for it, candidates in zip(chunk, per_item):
                if it.image_id in done[name]:
                    continue
                candidates = [tidy(c, postprocess) for c in candidates]
                key = keys[name]
                row = {"image_id": it.image_id, "caption": candidates[0], "model": key["model"],
                       "adapter": key["adapter"], "decoding": key["decoding"]}
                row |= {k: key[k] for k in KEY if k not in row}
                if len(candidates) > 1:
                    row["candidates"] = candidates
                logs[name].write(row)

    unreadable: list[dict[str, str]] = []

    def reject(it, error):
        unreadable.append({"image_id": it.image_id, "image": str(it.image), "reason": error.reason,
                           "detail": str(error)})

    prompt = next(iter(keys.values()))["prompt"]  # the same in every key
    try:
        generate_captions(captioner, batcher, todo, list(decodings.values()), prompt, batch_size, on_batch=write,
                          progress=progress, workers=IMAGE_WORKERS,
                          on_unreadable=reject if go_past_unreadable else None)
    finally:
        for log in logs.values():
            log.close()
    return unreadable


def _write_rejects(path: Path, items: Sequence[CaptionItem], rows: list[dict[str, str]]) -> None:
    """Rewrite ``path`` atomically with ``rows`` in the order of ``items``; remove it when there are none."""
    from captune.io import write_jsonl

    by_id = {row["image_id"]: row for row in rows}
    if by_id:
        write_jsonl(path, (by_id[it.image_id] for it in items if it.image_id in by_id))
    else:
        path.unlink(missing_ok=True)


def caption_images(
    input: str | os.PathLike,
    out: str | os.PathLike,
    model: str | None = None,
    adapter: str | None = None,
    decoding: Decoding | None = None,
    prompt: str | None = None,
    batch_size: int = 8,
    image_root: str | None = None,
    dtype: str = "auto",
    progress: bool | None = None,
    postprocess=None,
) -> dict[str, Any] | None:
    """Caption a folder or records file into ``out`` (JSONL), skipping images already there.

    An image that cannot be opened or decoded is listed in ``captune.io.rejects_path(out)`` with
    the reason and the run goes on (``caption_to_files``); a rerun tries it again. ``postprocess``
    is a ``captune.data.clean.CleanConfig`` applied to every caption (default: @handles, hashtags
    and links stripped, whitespace tidied); ``False`` keeps the raw text. Under ``accelerate
    launch`` the processes share the images (``captune.shards``); the main process returns the
    summary, the others None.
    """
    from captune.io import rejects_path

    decoding = decoding or PRESETS["beam"]
    items = _one_per_image(items_from_input(input, image_root), input)
    run = caption_to_files(items, {"out": out}, {"out": decoding}, model=model, adapter=adapter, prompt=prompt,
                           batch_size=batch_size, dtype=dtype, progress=progress, postprocess=postprocess,
                           rejects=rejects_path(out))
    if not run["main_process"]:
        return None
    return {"images": run["images"], "captioned": run["captioned"], "skipped": run["skipped"],
            "unreadable": run["unreadable"], "out": str(out), "rejects": run["rejects"], "prompt": run["prompt"],
            "decoding": decoding.label()}


def _one_per_image(items: Sequence[CaptionItem], source) -> list[CaptionItem]:
    """``items`` with an image listed again left out; an id naming two images is refused (a caption
    line is keyed by its id: one image would go uncaptioned and the other's caption take its id)."""
    first: dict[str, CaptionItem] = {}
    for it in items:
        seen = first.setdefault(it.image_id, it)
        if seen.image != it.image:
            raise CaptuneError(f"{source}: image id {it.image_id!r} names two images, {seen.image} and {it.image}; "
                               "give each image its own id")
    return list(first.values())
