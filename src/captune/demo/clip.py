"""A tiny CLIP for the shapes world: built from a config, trained contrastively, measured.

The model is a ``CLIPModel`` with a small ViT and text transformer, a CLIP-style BPE tokenizer
trained on the world's captions, and the PIL image processor (no torchvision), so it loads
anywhere with ``CLIPModel.from_pretrained(path)`` and ``CLIPProcessor.from_pretrained(path)``.

Each training image is paired with one of its texts: a plain caption, a house-style caption or
a photo-label prompt ("a photo of night"), half of them behind CLIPScore's "A photo depicts "
prefix. Besides the other texts of the batch, every image also meets a hard negative: its own
text with one colour or shape word changed, so that the score follows the facts a caption
states and not only its style.

    model, processor = build_clip(tokenizer, ClipArch(), seed=0)
    figures = train_clip(model, processor, pixels, texts, ClipTraining(steps=2000))
"""

from __future__ import annotations

import itertools
import math
import random
import re
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from captune.demo.scene import COLOURS, LABELS, SHAPES

CLIPSCORE_PREFIX = "A photo depicts "
_COLOUR_OR_SHAPE = re.compile(rf"\b({'|'.join([*COLOURS, *SHAPES])})\b")


@dataclass(frozen=True)
class ClipArch:
    image_size: int = 64
    patch_size: int = 8
    hidden: int = 128
    layers: int = 3
    heads: int = 4
    projection: int = 64
    vocab_size: int = 1024
    max_text_tokens: int = 77


@dataclass(frozen=True)
class ClipTraining:
    steps: int = 2000
    batch_size: int = 64
    lr: float = 1e-3
    warmup: int = 100
    weight_decay: float = 0.05
    seed: int = 0


def label_prompt(label: str) -> str:
    return f"a photo of {label}"


def build_clip_tokenizer(lines: Sequence[str], vocab_size: int = 1024):
    """A ``CLIPTokenizer`` whose BPE merges are learnt from ``lines`` (CLIP's normalizer and splits).

    The merges are learnt here rather than by ``tokenizers``' trainer, whose tie-breaking between
    equally frequent pairs depends on hash order: the same lines must give the same tokenizer,
    so that ``captune demo build-base`` writes the same bytes twice. Ties go to the pair that
    sorts first.
    """
    from tokenizers import pre_tokenizers
    from transformers import CLIPTokenizer

    specials = ["<|startoftext|>", "<|endoftext|>"]
    shell = CLIPTokenizer(vocab={s: i for i, s in enumerate(specials)}, merges=[]).backend_tokenizer
    words: Counter[str] = Counter()
    for line in lines:
        words.update(w for w, _ in shell.pre_tokenizer.pre_tokenize_str(shell.normalizer.normalize_str(line)))
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {t: i for i, t in enumerate(specials + alphabet + [c + "</w>" for c in alphabet])}
    merges = learn_bpe_merges(words, vocab_size - len(vocab), end_of_word="</w>")
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    return CLIPTokenizer(vocab=vocab, merges=merges)


def learn_bpe_merges(words: Counter[str], n_merges: int, end_of_word: str = "") -> list[tuple[str, str]]:
    """Up to ``n_merges`` BPE merges for the word counts ``words``, most frequent pair first, ties by sort order."""
    seqs = {w: [*w[:-1], w[-1] + end_of_word] for w in words if w}
    merges: list[tuple[str, str]] = []
    while len(merges) < n_merges:
        pairs: Counter[tuple[str, str]] = Counter()
        for w, n in words.items():
            symbols = seqs.get(w, [])
            for pair in itertools.pairwise(symbols):
                pairs[pair] += n
        if not pairs:
            break
        best = min(pairs, key=lambda pair: (-pairs[pair], pair))
        merges.append(best)
        for w, symbols in seqs.items():
            seqs[w] = _merge_pair(symbols, best)
    return merges


def _merge_pair(symbols: list[str], pair: tuple[str, str]) -> list[str]:
    out, i = [], 0
    while i < len(symbols):
        if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == pair:
            out.append(symbols[i] + symbols[i + 1])
            i += 2
        else:
            out.append(symbols[i])
            i += 1
    return out


def build_clip(tokenizer, arch: ClipArch = ClipArch(), seed: int = 0):
    """``(CLIPModel, CLIPProcessor)`` with fresh weights drawn from ``seed``."""
    from transformers import CLIPConfig, CLIPImageProcessorPil, CLIPModel, CLIPProcessor

    text = {
        "vocab_size": len(tokenizer), "hidden_size": arch.hidden, "intermediate_size": 2 * arch.hidden,
        "num_hidden_layers": arch.layers, "num_attention_heads": arch.heads, "max_position_embeddings": arch.max_text_tokens,
        "projection_dim": arch.projection, "bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id, "hidden_act": "gelu",
    }
    vision = {
        "hidden_size": arch.hidden, "intermediate_size": 2 * arch.hidden, "num_hidden_layers": arch.layers,
        "num_attention_heads": arch.heads, "image_size": arch.image_size, "patch_size": arch.patch_size,
        "projection_dim": arch.projection, "hidden_act": "gelu",
    }
    config = CLIPConfig(text_config=text, vision_config=vision, projection_dim=arch.projection)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = CLIPModel(config)
    image_processor = CLIPImageProcessorPil(
        size={"shortest_edge": arch.image_size}, crop_size={"height": arch.image_size, "width": arch.image_size})
    tokenizer.model_max_length = arch.max_text_tokens
    return model.eval(), CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer)


def pixel_tensor(processor, images, batch_size: int = 256, dtype=torch.float32) -> torch.Tensor:
    """Processor-normalised pixels of images (PIL or paths): ``[N, 3, H, W]``."""
    from captune.data.images import load_image

    chunks = []
    for i in range(0, len(images), batch_size):
        chunk = [load_image(im) if not hasattr(im, "size") else im for im in images[i:i + batch_size]]
        chunks.append(processor.image_processor(chunk, return_tensors="pt")["pixel_values"].to(dtype))
    return torch.cat(chunks)


def corrupt(text: str, rng: random.Random) -> str | None:
    """``text`` with one colour or shape word replaced by another of its kind (None if it has none)."""
    found = list(_COLOUR_OR_SHAPE.finditer(text))
    if not found:
        return None
    m = rng.choice(found)
    pool = list(COLOURS) if m.group(1) in COLOURS else SHAPES
    new = rng.choice([w for w in pool if w != m.group(1)])
    return text[:m.start()] + new + text[m.end():]


@dataclass
class ClipExample:
    """One training image's texts and the photo labels true of it."""

    captions: list[str]
    labels: list[str]


def _draw(example: ClipExample, rng: random.Random) -> tuple[str, str | None, str | None]:
    """(text, label it states or None, hard negative or None) for one image."""
    label = None
    if example.labels and rng.random() < 0.25:
        label = rng.choice(example.labels)
        text = rng.choice((label_prompt(label), label))
        negative = None
    else:
        text = rng.choice(example.captions)
        negative = corrupt(text, rng)
    if rng.random() < 0.5:
        text = CLIPSCORE_PREFIX + text
        negative = negative and CLIPSCORE_PREFIX + negative
    return text, label, negative


def _positives(texts: list[str], stated: list[str | None], examples: list[ClipExample],
               n_columns: int) -> torch.Tensor:
    """``[B, n_columns]``: column j is true of image i (its own text, the same text, a label it has)."""
    b = len(texts)
    pos = torch.zeros(b, n_columns, dtype=torch.bool)
    for i in range(b):
        for j in range(b):
            pos[i, j] = texts[i] == texts[j] or (stated[j] is not None and stated[j] in examples[i].labels)
    return pos


def _multi_positive_loss(logits: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """Mean of ``-log(sum of softmax over the positive entries)`` per row."""
    log_p = logits.log_softmax(dim=-1)
    return -(log_p.masked_fill(~pos, -math.inf).logsumexp(dim=-1)).mean()


def contrastive_loss(model, tokenizer, pixels: torch.Tensor, batch: list[ClipExample],
                     rng: random.Random) -> torch.Tensor:
    drawn = [_draw(e, rng) for e in batch]
    texts = [t for t, _, _ in drawn]
    negatives = [n for _, _, n in drawn if n is not None]
    enc = tokenizer(texts + negatives, padding=True, truncation=True, return_tensors="pt")
    image = F.normalize(model.get_image_features(pixel_values=pixels).pooler_output, dim=-1)  # [B, D]
    text = F.normalize(model.get_text_features(**enc).pooler_output, dim=-1)  # [B + M, D]
    scale = model.logit_scale.clamp(max=math.log(100)).exp()
    logits = scale * image @ text.T  # [B, B + M]
    pos = _positives(texts, [s for _, s, _ in drawn], batch, logits.shape[1])
    image_to_text = _multi_positive_loss(logits, pos)
    text_to_image = _multi_positive_loss(logits[:, : len(batch)].T, pos[:, : len(batch)].T)
    return (image_to_text + text_to_image) / 2


def train_clip(model, processor, pixels: torch.Tensor, examples: list[ClipExample],
               cfg: ClipTraining = ClipTraining(), progress: bool | None = None) -> dict:
    """Train ``model`` in place; returns steps, seconds and the final loss (mean of the last 50 steps)."""
    from tqdm.auto import tqdm

    from captune.train.optim import build_optimizer, build_scheduler

    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    order = np.random.default_rng(cfg.seed)
    optimizer = build_optimizer(model, cfg.lr, cfg.weight_decay)
    scheduler = build_scheduler(optimizer, "cosine", cfg.steps, cfg.warmup, cfg.lr, cfg.lr / 20)
    model.train()
    losses, t0 = [], time.perf_counter()
    perm, at = order.permutation(len(examples)), 0
    for _ in tqdm(range(cfg.steps), desc="training CLIP", unit="step", disable=not progress or None):
        if at + cfg.batch_size > len(perm):
            perm, at = order.permutation(len(examples)), 0
        idx = perm[at:at + cfg.batch_size]
        at += cfg.batch_size
        batch = pixels[idx].float()  # pixels may be stored in half precision to save memory
        loss = contrastive_loss(model, processor.tokenizer, batch, [examples[i] for i in idx], rng)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
    model.eval()
    return {"steps": cfg.steps, "seconds": round(time.perf_counter() - t0, 1),
            "final_loss": round(float(np.mean(losses[-50:])), 4)}


@torch.no_grad()
def embed_images(model, pixels: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    out = [model.get_image_features(pixel_values=pixels[i:i + batch_size]).pooler_output
           for i in range(0, len(pixels), batch_size)]
    return F.normalize(torch.cat(out), dim=-1)  # [N, D]


@torch.no_grad()
def embed_texts(model, tokenizer, texts: Sequence[str], batch_size: int = 256) -> torch.Tensor:
    out = []
    for i in range(0, len(texts), batch_size):
        enc = tokenizer(list(texts[i:i + batch_size]), padding=True, truncation=True, return_tensors="pt")
        out.append(model.get_text_features(**enc).pooler_output)
    return F.normalize(torch.cat(out), dim=-1)  # [N, D]


def clipscore(image_embeds: torch.Tensor, text_embeds: torch.Tensor) -> torch.Tensor:
    """CLIPScore per pair: ``2.5 * max(cos, 0)`` (texts embedded with the "A photo depicts " prefix)."""
    return 2.5 * (image_embeds * text_embeds).sum(-1).clamp(min=0)


def recolour(caption: str, rng: random.Random) -> str:
    """Every colour word replaced by another colour (the same word always by the same one)."""
    names = list(COLOURS)
    swap = {c: rng.choice([d for d in names if d != c]) for c in names}
    return re.sub(rf"\b({'|'.join(names)})\b", lambda m: swap[m.group(1)], caption)


def clip_figures(model, processor, pixels: torch.Tensor, records, seed: int = 0) -> dict:
    """Retrieval, right-vs-wrong-colour CLIPScore, label AUCs and image-neighbour figures.

    ``records`` are plain caption records of held-out shapes-world images (their first caption
    is scored), ``pixels`` their processed images in the same order.
    """
    tok = processor.tokenizer
    images = embed_images(model, pixels)
    captions = [r.captions[0] for r in records]
    right = embed_texts(model, tok, [CLIPSCORE_PREFIX + c for c in captions])
    rng = random.Random(seed)
    wrong = embed_texts(model, tok, [CLIPSCORE_PREFIX + recolour(c, rng) for c in captions])
    sims = images @ right.T  # [N, N]
    target = torch.arange(len(records))
    right_score, wrong_score = clipscore(images, right), clipscore(images, wrong)
    return {
        "images": len(records),
        "retrieval_image_to_text_top1": _r(sims.argmax(1) == target),
        "retrieval_text_to_image_top1": _r(sims.argmax(0) == target),
        "retrieval_chance": round(1 / len(records), 4),
        "clipscore_true_caption": _r(right_score),
        "clipscore_wrong_colours": _r(wrong_score),
        "true_beats_wrong_colours": _r(right_score > wrong_score),
        "label_auc": label_aucs(model, tok, images, [r.meta.get("labels", []) for r in records]),
        **neighbour_figures(images, records),
    }


def _r(x: torch.Tensor) -> float:
    return round(float(x.float().mean()), 4)


def label_aucs(model, tokenizer, images: torch.Tensor, labels: list[list[str]]) -> dict[str, float]:
    """ROC AUC of ``cos(image, "a photo of <label>")`` for images with the label against those without."""
    from sklearn.metrics import roc_auc_score

    texts = embed_texts(model, tokenizer, [label_prompt(label) for label in LABELS])
    sims = (images @ texts.T).numpy()  # [N, labels]
    out = {}
    for k, label in enumerate(LABELS):
        truth = [label in ls for ls in labels]
        if 0 < sum(truth) < len(truth):
            out[label] = round(float(roc_auc_score(truth, sims[:, k])), 4)
    return out


def neighbour_figures(images: torch.Tensor, records) -> dict[str, float]:
    """How image embeddings group: events of nearest neighbours, near-duplicates found."""
    sims = images @ images.T
    sims.fill_diagonal_(-2)
    nearest = sims.argmax(1).tolist()
    events = [r.meta.get("event") for r in records]
    index = {r.image_id: k for k, r in enumerate(records)}
    shares = np.array(list({e: events.count(e) for e in events}.values())) / len(events)
    dups = [(k, index[r.meta["near_duplicate_of"]]) for k, r in enumerate(records)
            if r.meta.get("near_duplicate_of") in index]
    out = {"nearest_neighbour_same_event": round(float(np.mean([events[k] == events[n] for k, n in
                                                                 enumerate(nearest)])), 4),
           "same_event_chance": round(float((shares ** 2).sum()), 4)}
    if dups:
        out["near_duplicate_is_nearest"] = round(float(np.mean([nearest[k] == o for k, o in dups])), 4)
        out["near_duplicate_pairs"] = len(dups)
    return out
