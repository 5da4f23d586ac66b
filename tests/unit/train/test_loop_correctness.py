"""The training loop's arithmetic: gradient accumulation, schedules and resume give the results
an equivalent plain run gives."""

import pytest
import torch
from safetensors.torch import load_file
from test_finetune import events, make_cfg

from captune.data.records import read_records, write_records
from captune.train.loop import finetune


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
    # measured equal to the last bit; 1e-4 leaves room for summation order (a halved step is off by 0.5)
    assert grad_norms(small) == pytest.approx(grad_norms(big), rel=1e-4)


def test_resume_with_accumulation_at_an_epochs_end_and_after_its_partial_step(colour_data, tmp_path, monkeypatch):
    # 24 examples in batches of 5: 5 batches an epoch, 3 steps of 2, 2 and 1 batches. last/ is saved
    # every step; runs stop after step 3 (the epoch's batches all consumed) and step 4.
    from captune.train.loop import Finetune

    args = ("train.batch_size=5", "train.grad_accum=2", "train.max_steps=7", "train.save_every_steps=1",
            "eval.every_steps=7", "finetune.dropout=0.1")
    straight = tmp_path / "straight"
    finetune(make_cfg(colour_data, straight, *args))
    original = Finetune._after_step
    for stop in (3, 4):
        def crash(self, stop=stop):
            original(self)
            if self.state.step == stop:
                raise KeyboardInterrupt

        out = tmp_path / f"stop{stop}"
        monkeypatch.setattr(Finetune, "_after_step", crash)
        with pytest.raises(KeyboardInterrupt):
            finetune(make_cfg(colour_data, out, *args))
        monkeypatch.setattr(Finetune, "_after_step", original)
        finetune(make_cfg(colour_data, out, *args), resume=True)
        assert [e["step"] for e in events(out, "train")] == list(range(1, stop + 1)) + list(range(stop + 1, 8))
        assert [e["loss"] for e in events(out, "train")] == pytest.approx(
            [e["loss"] for e in events(straight, "train")], abs=1e-6)
        a, b = adapter(straight), adapter(out)
        for k in a:
            assert torch.allclose(a[k], b[k], atol=1e-6), (stop, k)


def adapter(out):
    return load_file(out / "checkpoints" / "last" / "adapter_model.safetensors")


@pytest.mark.skipif(torch.cuda.is_available(), reason="on a GPU fp16 autocasts; the refusal is the CPU's")
def test_fp16_on_the_cpu_is_refused_rather_than_trained_in_float32(colour_data, tmp_path):
    from captune.errors import CaptuneError

    with pytest.raises(CaptuneError, match="train.precision fp16.*CPU"):
        finetune(make_cfg(colour_data, tmp_path / "run", "train.precision=fp16", "train.max_steps=1"))


def test_each_train_event_logs_the_learning_rate_its_step_used(colour_data, tmp_path):
    # warmup 2 then linear over 4 steps: the steps use 0.5, 1, 1 and 0.5 x lr (the scheduler moves
    # on after each step, so reading it then gives the next step's rate: 1, 1, 0.5, 0)
    out = tmp_path / "run"
    finetune(make_cfg(colour_data, out, "train.max_steps=4", "train.grad_accum=2", "train.lr=1e-3",
                      "train.warmup_steps=2", "train.scheduler=linear", "eval.every_steps=4"))
    assert [e["lr"] for e in events(out, "train")] == pytest.approx([5e-4, 1e-3, 1e-3, 5e-4])
