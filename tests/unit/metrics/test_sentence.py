"""Sentence cosine: batched, masked mean pooling equals unpadded pooling one sentence at a time."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tiny_encoders import build_tiny_bert

from captune.metrics.base import MetricUnavailable
from captune.metrics.sentence import sentence_cosine

PREDICTIONS = ["a dog runs on the grass", "a red circle", "the man wears a leather jacket and blue jeans"]
REFERENCES = [
    ["a dog with a red ball", "the dog runs on grass"],
    ["a red circle on white"],
    ["a man in a jacket"],
]


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory):
    return build_tiny_bert(tmp_path_factory.mktemp("bert"), layers=2)


def _pooled(model_dir, text):
    from transformers import AutoModel, AutoTokenizer

    tok, model = AutoTokenizer.from_pretrained(model_dir), AutoModel.from_pretrained(model_dir).eval()
    with torch.no_grad():
        hidden = model(**tok(text, return_tensors="pt")).last_hidden_state[0]  # no padding at all
    vec = hidden.mean(0).numpy()
    return vec / np.linalg.norm(vec)


def test_equals_unpadded_mean_pooling(bert_dir):
    result = sentence_cosine(PREDICTIONS, REFERENCES, sentence_model=str(bert_dir), batch_size=2)
    for i, refs in enumerate(REFERENCES):
        expected = max(float(_pooled(bert_dir, PREDICTIONS[i]) @ _pooled(bert_dir, r)) for r in refs)
        assert result.per_item[i]["sentence_cosine"] == pytest.approx(expected, abs=1e-5)
    assert result.corpus["sentence_cosine"] == pytest.approx(
        np.mean([x["sentence_cosine"] for x in result.per_item])
    )


def test_identical_reference_scores_one_and_missing_references_are_left_out(bert_dir):
    result = sentence_cosine(
        ["a red circle", "a dog"], [["a cat", "a red circle"], []], sentence_model=str(bert_dir)
    )
    assert result.per_item[0]["sentence_cosine"] == pytest.approx(1.0, abs=1e-6)
    assert result.per_item[1] == {}
    assert result.corpus["sentence_cosine"] == pytest.approx(1.0, abs=1e-6)


def test_unavailable_without_model(tmp_path):
    with pytest.raises(MetricUnavailable, match="--sentence-model"):
        sentence_cosine(PREDICTIONS, REFERENCES)
    with pytest.raises(MetricUnavailable, match="no-encoder-here"):
        sentence_cosine(PREDICTIONS, REFERENCES, sentence_model=str(tmp_path / "no-encoder-here"))
