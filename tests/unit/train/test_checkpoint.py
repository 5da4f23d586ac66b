"""Checkpoints: resuming loads exactly the saved weights or refuses, naming the keys."""

import pytest
import torch
from safetensors.torch import load_file, save_file

from captune.config import load_config
from captune.errors import CaptuneError
from captune.models.peft import FinetuneConfig, apply_finetuning
from captune.models.tiny import build_tiny_blip2
from captune.train.checkpoint import TrainerState, load_training_state, save_checkpoint
from captune.train.config import TrainConfig
from captune.train.optim import build_optimizer, build_scheduler


def tuned(family="opt", seed=None, **parts):
    """A tiny model set up for fine-tuning; with ``seed``, its trainable weights moved as if trained."""
    model, processor = build_tiny_blip2(family)
    model = apply_finetuning(model, FinetuneConfig(**parts))
    if seed is not None:
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in model.parameters():
                if p.requires_grad:
                    p.add_(0.05 * torch.randn(p.shape, generator=g))
    return model, processor


def optim(model):
    optimizer = build_optimizer(model, 1e-3, 0.01)
    return optimizer, build_scheduler(optimizer, "constant", 10, 0, 1e-3)


def save_last(directory, model, processor):
    cfg = load_config(TrainConfig, None, ["data.train=unused.jsonl"])
    meta = {"base_model": "tiny-blip2-opt", "step": 3}
    return save_checkpoint(directory, model, processor, cfg, meta, TrainerState(step=3), *optim(model))


def weights(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_same(a: dict, b: dict):
    assert a.keys() == b.keys()
    for k, value in a.items():
        assert torch.equal(value.float(), b[k].float()), k


FULL = {"vision": "full", "qformer": "full", "lm": "full"}


@pytest.mark.parametrize("family", ["opt", "t5"])
def test_full_checkpoint_resumes_to_identical_weights(tmp_path, family):
    """Tied weights (OPT's lm_head and embed_tokens, T5's shared embeddings) are saved once and
    loaded through their alias."""
    trained, processor = tuned(family, seed=1, **FULL)
    last = save_last(tmp_path / "last", trained, processor)
    fresh, _ = tuned(family, **FULL)
    state = load_training_state(last, fresh, *optim(fresh))
    assert state.step == 3
    assert_same(weights(fresh), weights(trained))


def _edit(path, edit):
    tensors = load_file(path)
    edit(tensors)
    save_file(tensors, path, metadata={"format": "pt"})


@pytest.mark.parametrize("damage,named", [("rename", "fc1.weightx"), ("drop", "fc1.weight")])
def test_full_checkpoint_with_wrong_keys_is_refused(tmp_path, damage, named):
    trained, processor = tuned(seed=1, **FULL)
    last = save_last(tmp_path / "last", trained, processor)
    key = "language_model.model.decoder.layers.0.fc1.weight"

    def edit(t):
        value = t.pop(key)
        if damage == "rename":
            t[key + "x"] = value

    _edit(last / "model.safetensors", edit)
    fresh, _ = tuned(**FULL)
    with pytest.raises(CaptuneError, match=rf"{'unexpected' if damage == 'rename' else 'missing'}.*{named}"):
        load_training_state(last, fresh, *optim(fresh))


def test_adapter_with_wrong_keys_is_refused(tmp_path):
    trained, processor = tuned(seed=1)
    last = save_last(tmp_path / "last", trained, processor)
    adapter = last / "adapter_model.safetensors"
    key = next(iter(load_file(adapter)))
    _edit(adapter, lambda t: t.__setitem__(key.replace("lora_A", "lora_Z"), t.pop(key)))
    fresh, _ = tuned()
    with pytest.raises(CaptuneError, match="lora_Z"):
        load_training_state(last, fresh, *optim(fresh))


def base_weights(net) -> dict[str, torch.Tensor]:
    return weights(net.get_base_model())


@pytest.mark.parametrize("parts", [{"vision": "full", "lm": "lora"}, {"qformer": "full", "lm": "lora"},
                                   {"qformer": "lora", "lm": "full"}])
def test_full_part_next_to_lora_round_trips(tmp_path, parts):
    """The full part is saved beside the adapter and comes back, for inference and for resume."""
    from peft import PeftModel

    from captune.models.loading import load_checkpoint

    trained, processor = tuned(seed=1, **parts)
    last = save_last(tmp_path / "last", trained, processor)
    assert (last / "full_parts.safetensors").exists()
    loaded, _, meta = load_checkpoint(last)
    assert meta["kind"] == "peft"
    assert_same(base_weights(loaded), base_weights(trained))
    fresh, _ = tuned(**parts)
    load_training_state(last, fresh, *optim(fresh))
    assert_same(base_weights(fresh), base_weights(trained))
    # plain peft, as the README shows: the full parts into the base model, then the adapter
    base, _ = build_tiny_blip2("opt")
    base.load_state_dict(load_file(last / "full_parts.safetensors"), strict=False)
    assert_same(base_weights(PeftModel.from_pretrained(base, last)), base_weights(trained))


def test_lora_only_checkpoint_loads_with_plain_peft(tmp_path):
    from peft import PeftModel

    trained, processor = tuned(seed=1, qformer="lora")
    best = save_last(tmp_path / "best", trained, processor)
    assert not (best / "full_parts.safetensors").exists()
    assert_same(base_weights(PeftModel.from_pretrained(build_tiny_blip2("opt")[0], best)), base_weights(trained))


def test_full_parts_file_with_wrong_keys_is_refused(tmp_path):
    trained, processor = tuned(seed=1, qformer="full")
    last = save_last(tmp_path / "last", trained, processor)
    _edit(last / "full_parts.safetensors", lambda t: t.pop("query_tokens"))
    fresh, _ = tuned(qformer="full")
    with pytest.raises(CaptuneError, match="missing: query_tokens"):
        load_training_state(last, fresh, *optim(fresh))


def test_resume_with_another_number_of_processes_is_refused(tmp_path):
    trained, processor = tuned(seed=1)
    cfg = load_config(TrainConfig, None, ["data.train=unused.jsonl"])
    rngs = [{"torch": torch.get_rng_state()}] * 2
    last = save_checkpoint(tmp_path / "last", trained, processor, cfg, {}, TrainerState(step=3, processes=2),
                           *optim(trained), rng_states=rngs)
    assert {p.name for p in (last / "trainer_state").glob("rng_rank*.pt")} == {"rng_rank0.pt", "rng_rank1.pt"}
    fresh, _ = tuned()
    with pytest.raises(CaptuneError, match="trained by 2 process.*--num_processes 2"):
        load_training_state(last, fresh, *optim(fresh))
