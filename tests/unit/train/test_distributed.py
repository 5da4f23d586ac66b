"""Several processes: each loads QLoRA weights on its own GPU; sharded engines are refused."""

import pytest

from captune.errors import CaptuneError
from captune.models.loading import device_map_for


def test_qlora_loads_on_this_processes_gpu(monkeypatch):
    import accelerate

    class Rank1:
        local_process_index = 1

    monkeypatch.setattr(accelerate, "PartialState", Rank1)
    assert device_map_for("4bit") == {"": 1}  # not GPU 0 for every process
    assert device_map_for("8bit", local_rank=3) == {"": 3}
    assert device_map_for("4bit", {"": "cuda:2"}) == {"": "cuda:2"}
    assert device_map_for("none") is None


@pytest.mark.parametrize("kind", ["FSDP", "DEEPSPEED", "MEGATRON_LM"])
def test_sharded_training_is_refused(kind):
    """Checkpoints and validation use the main process's unwrapped model: right for DDP, wrong
    for weights sharded across processes."""
    from accelerate.utils import DistributedType

    from captune.train.loop import check_distributed

    with pytest.raises(CaptuneError, match="DDP"):
        check_distributed(DistributedType[kind])
    for ok in ("NO", "MULTI_CPU", "MULTI_GPU"):
        check_distributed(DistributedType[ok])
