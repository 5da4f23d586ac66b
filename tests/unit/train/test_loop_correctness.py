"""The training loop's arithmetic: gradient accumulation, schedules and resume give the results
an equivalent plain run gives."""

import json

import pytest
import torch
from safetensors.torch import load_file

from captune.data.records import read_records, write_records
from captune.train.loop import finetune
from test_finetune import events, make_cfg


def one_caption_each(colour_data, n: int):
    """``n`` colour images, all captioned alike: every example has as many caption tokens."""
    records = read_records(colour_data)[:n]
    for r in records:
        r.captions = ["a square"]
    path = colour_data.parent / f"same{n}.jsonl"
    write_records(path, records)
    return path


@pytest.fixture
def no_dropout(monkeypatch):
    """The tiny BLIP-2 trains in eval mode: no dropout (its config has some, attention dropout
    included), so a batch of 4 and two batches of 2 compute the same thing."""
    from captune.models.blip2 import Blip2Captioner

    monkeypatch.setattr(Blip2Captioner, "train", lambda self, mode=True: torch.nn.Module.train(self, False))


def grad_norms(out):
    """Each optimizer step's gradient norm (before clipping), from ``metrics.jsonl``."""
    return [e["grad_norm"] for e in events(out, "train")]


def test_a_partial_last_accumulation_averages_its_own_batches(colour_data, tmp_path, no_dropout):
    # 6 examples: batch 4 is one step of 4 and one of 2; batch 2 x accumulation 2 is the same
    # two steps, the second of a single batch, which must not count as half a step. A vanishing
    # learning rate keeps the weights, so both runs' gradients are comparable step by step.
    data = one_caption_each(colour_data, 6)
    args = ("train.epochs=1", "train.lr=1e-12", "train.scheduler=constant")
    big, small = tmp_path / "big", tmp_path / "small"
    finetune(make_cfg(data, big, "train.batch_size=4", *args))
    finetune(make_cfg(data, small, "train.batch_size=2", "train.grad_accum=2", *args))
    assert grad_norms(small) == pytest.approx(grad_norms(big), rel=1e-4)
