"""Perplexity of the reference captions under a captioning model (lower is better).

    score(preds, refs, images, metrics=["perplexity"], caption_model="tiny-blip2-opt",
          caption_adapter="runs/x/checkpoints/best")

Each reference is scored given its image and the model's prompt (the checkpoint's training
prompt, rendered without metadata, unless ``caption_prompt`` is given). Per item: exp of the mean
token negative log-likelihood over that image's references; corpus: exp of the mean over all
reference tokens (end token included). Predictions are not used: this measures how well a model
explains the human captions, which sampling-free metrics cannot. The loaded captioner is kept in
the ``resources`` option (a ``MetricResources``, ``caption_models`` of them at most) when given.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from captune.errors import CaptuneError
from captune.metrics.base import MetricResult, MetricUnavailable, register

if TYPE_CHECKING:
    import torch


def _load(model: str | None, adapter: str | None):
    from captune.generate import load_for_captioning
    from captune.models.family import adapt

    net, processor, meta = load_for_captioning(model, adapter)
    captioner, batcher = adapt(net, processor)
    return captioner.eval(), batcher, meta.get("prompt", "")


def _loaded(model: str | None, adapter: str | None, resources):
    if resources is None:
        return _load(model, adapter)
    return resources.caption_models.get_or_make((model, adapter), lambda: _load(model, adapter))


@register("perplexity", outputs=("perplexity",), needs_images=True)
def perplexity(predictions, references, images=None, **options: Any) -> MetricResult:
    from captune.data.images import load_image
    from captune.models.family import Example
    from captune.models.prompt import render_prompt

    model, adapter = options.get("caption_model"), options.get("caption_adapter")
    if not model and not adapter:
        raise MetricUnavailable("no captioning model configured: pass caption_model (and caption_adapter)")
    if images is None:
        raise MetricUnavailable("perplexity needs the images")
    try:
        captioner, batcher, trained_prompt = _loaded(model, adapter, options.get("resources"))
    except CaptuneError as e:
        raise MetricUnavailable(str(e)) from None
    prompt = render_prompt(options.get("caption_prompt", trained_prompt), {})
    pairs = [(i, ref) for i, refs in enumerate(references) for ref in refs]
    nll = [0.0] * len(references)
    tokens = [0] * len(references)
    batch_size = int(options.get("batch_size", 16))
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start:start + batch_size]
        examples = [Example(load_image(images[i]), prompt, ref) for i, ref in chunk]
        sums, counts = _token_nll(captioner, batcher.train_batch(examples))
        for (i, _), s, c in zip(chunk, sums, counts):
            nll[i] += s
            tokens[i] += c
    per_item = [{"perplexity": math.exp(n / t)} if t else {} for n, t in zip(nll, tokens)]
    total = sum(tokens)
    if not total:
        raise MetricUnavailable("no reference captions to score")
    return MetricResult({"perplexity": math.exp(sum(nll) / total)}, per_item)


def _token_nll(captioner, batch: dict[str, torch.Tensor]) -> tuple[list[float], list[int]]:
    import torch

    device = next(captioner.parameters()).device
    batch = {k: v.to(device) for k, v in batch.items()}
    labels = batch.pop("labels")
    with torch.no_grad():
        logits = captioner(**batch, labels=labels).logits.float()
        if captioner.decoder_only:  # position t predicts token t + 1
            logits, labels = logits[:, :-1], labels[:, 1:]
        loss = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100, reduction="none"
        ).view(labels.shape)  # [B, T]
    mask = labels != -100
    return (loss * mask).sum(1).tolist(), mask.sum(1).tolist()
