"""MetricResources: what the metrics keep between calls is the caller's, bounded, and closed."""

from __future__ import annotations

import pytest
from ptb_corpus import captions

from captune.metrics import MetricResources, score
from captune.metrics.resources import BoundedCache

METRICS = ["bleu", "cider", "rouge_l"]


def test_bounded_cache_keeps_the_most_recently_used():
    cache = BoundedCache(2)
    for k in "abc":
        cache.put(k, k.upper())
    assert len(cache) == 2 and cache.get("a") is None
    cache.get("b")  # b is now the most recent: c goes next
    cache.put("d", "D")
    assert cache.get("b") == "B" and cache.get("c") is None
    assert cache.get_or_make("e", lambda: "E") == "E" and len(cache) == 2
    with pytest.raises(ValueError, match="max_entries"):
        BoundedCache(-1)


def test_a_long_series_of_scores_stays_within_the_bounds():
    refs = [[c] + captions(2, seed=100 + i) for i, c in enumerate(captions(40, seed=1))]
    resources = MetricResources(tokenizer_entries=3000)
    tokenizers = set()
    for round_ in range(30):
        preds = captions(40, seed=1000 + round_)  # new captions each time, as training makes
        with_resources = score(preds, refs, metrics=METRICS, resources=resources)
        assert with_resources.corpus == score(preds, refs, metrics=METRICS).corpus
        tokenizer = resources.recent_tokenizer()
        tokenizers.add(id(tokenizer))
        assert len(resources.ngrams) <= 2
        assert tokenizer.size() <= 3000 + 2000  # the bound, plus what one call can add before the check
    assert len(tokenizers) > 1  # the tokenizer was replaced when it outgrew its bound
    resources.close()
    assert len(resources.ngrams) == 0 and resources.recent_tokenizer() is None


def test_score_without_resources_keeps_nothing(monkeypatch):
    made = []
    real_init = MetricResources.__init__

    def recording(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(MetricResources, "__init__", recording)
    score(["a red circle"], [["a red circle", "one circle"]], metrics=METRICS)
    assert len(made) == 1
    assert len(made[0].ngrams) == 0 and made[0].recent_tokenizer() is None  # closed before returning
