"""What the metrics keep between calls, held by the caller instead of the module.

    from captune.metrics import MetricResources, score
    with MetricResources() as resources:            # e.g. for the life of a training run
        for epoch in ...:
            corpus, per_item = score(preds, refs, resources=resources)

Loading an encoder, starting METEOR's Java process or tokenizing the same references again costs
more than a small evaluation, so a caller that scores many times (training validation, an
evaluator, a long-running service) keeps one ``MetricResources`` and closes it when done.
``score`` without one makes its own and closes it before returning, so nothing outlives the call.

Every store is bounded: loaded encoders and captioning models (least recently used dropped
first), image and text embeddings, n-gram counts, and the PTB tokenizer's vocabulary and line
caches (the tokenizer is replaced when they pass their bound). ``close()`` stops the METEOR
process and drops everything; the object can be used again afterwards (it starts afresh).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

# 100k 512-d float32 vectors are ~200 MB; enough for a dataset's images plus several evaluations.
IMAGE_EMBEDDINGS = 100_000
TEXT_EMBEDDINGS = 200_000
ENCODERS = 2  # e.g. a CLIP model and a BERTScore model
CAPTION_MODELS = 1  # perplexity's captioner (with its batcher): a full model each
NGRAM_SETS = 2  # BLEU, CIDEr-D and ROUGE-L of one call share one count; the previous call's stays
TOKENIZER_ENTRIES = 2_000_000  # vocabulary + cached lines and segments of the PTB tokenizer


class BoundedCache:
    """A least-recently-used map holding at most ``max_entries`` values."""

    def __init__(self, max_entries: int) -> None:
        if max_entries < 0:
            raise ValueError(f"max_entries must be >= 0, not {max_entries}")
        self.max_entries = max_entries
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Any | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: Hashable, value: Any) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)

    def get_or_make(self, key: Hashable, make: Callable[[], Any]) -> Any:
        """The value of ``key``, made (and kept) on a miss."""
        value = self.get(key)
        if value is None:
            value = make()
            self.put(key, value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


class MetricResources:
    """Loaded models, caches and the METEOR process of a series of ``score`` calls (see above)."""

    def __init__(
        self,
        *,
        encoders: int = ENCODERS,
        caption_models: int = CAPTION_MODELS,
        image_embeddings: int = IMAGE_EMBEDDINGS,
        text_embeddings: int = TEXT_EMBEDDINGS,
        ngram_sets: int = NGRAM_SETS,
        tokenizer_entries: int = TOKENIZER_ENTRIES,
    ) -> None:
        self.encoders = BoundedCache(encoders)
        self.caption_models = BoundedCache(caption_models)
        self.image_embeddings = BoundedCache(image_embeddings)
        self.text_embeddings = BoundedCache(text_embeddings)
        self.ngrams = BoundedCache(ngram_sets)
        self.tokenizer_entries = tokenizer_entries
        self._tokenizer = None
        self._meteor = None
        self._lock = threading.Lock()

    def tokenizer(self):
        """The Python PTB tokenizer, replaced by a fresh one once its caches pass their bound."""
        from captune.metrics._ptb_python import PythonTokenizer

        with self._lock:
            if self._tokenizer is None or self._tokenizer.size() > self.tokenizer_entries:
                self._tokenizer = PythonTokenizer()
            return self._tokenizer

    def recent_tokenizer(self):
        """The tokenizer if one was made (its recent batches carry token ids), else None."""
        return self._tokenizer

    def meteor(self):
        """The METEOR jar process, started on first use and kept until ``close()``."""
        from captune.metrics.meteor import MeteorProcess

        with self._lock:
            if self._meteor is None:
                self._meteor = MeteorProcess()
            return self._meteor

    def close(self) -> None:
        """Stop the METEOR process and drop every model and cache."""
        with self._lock:
            meteor, self._meteor, self._tokenizer = self._meteor, None, None
        if meteor is not None:
            meteor.close()
        for cache in (self.encoders, self.caption_models, self.image_embeddings, self.text_embeddings, self.ngrams):
            cache.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
