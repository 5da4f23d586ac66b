"""Training under `accelerate launch` with two CPU processes (gloo), against one process.

One launch runs every two-process training (tests/integration/train_worker.py); starting the
processes costs more than the tiny trainings themselves.
"""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from captune.io import read_jsonl

pytestmark = pytest.mark.integration

WORKER = Path(__file__).with_name("train_worker.py")
# Measured: one process with batch 6 and two with batch 3 end 6 steps at lr 1e-3 within 3.5e-8 of
# each other (float sums in another order), while LoRA's B weights moved from 0 to 3.5e-3;
# 1e-6 leaves a margin of about 30x.
SAME_WEIGHTS_ATOL = 1e-6


def equal_length_records(root: Path) -> Path:
    """Coloured squares captioned "a {colour} square", every caption the same number of tokens:
    then the mean loss over a batch of 6 equals the mean of the two half-batch means, which is
    what DDP's gradient averaging computes."""
    from PIL import Image

    from captune.data.records import CaptionRecord, write_records

    root.mkdir(parents=True)
    records = []
    for colour, rgb in {"red": (220, 30, 30), "blue": (40, 60, 220), "white": (250, 250, 250),
                        "pink": (250, 150, 200)}.items():
        for k in range(3):
            name = f"{colour}_{k}.png"
            image = Image.new("RGB", (32, 32), (128, 128, 128))
            image.paste(Image.new("RGB", (12 + 2 * k, 12 + 2 * k), rgb), (4 + k, 6))
            image.save(root / name)
            records.append(CaptionRecord(name, name, [f"a {colour} square"], {}))
    write_records(root / "records.jsonl", records)
    return root / "records.jsonl"


def tiny_without_dropout(path: Path) -> Path:
    """The tiny OPT model saved with every dropout at 0, so one and two processes can match."""
    from captune.models.tiny import build_tiny_blip2

    model, processor = build_tiny_blip2("opt")
    for sub in (model.config.text_config, model.config.qformer_config, model.config.vision_config):
        for key, value in sub.to_dict().items():
            if "dropout" in key and isinstance(value, float):
                setattr(sub, key, 0.0)
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path


def write_config(path: Path, body: dict) -> str:
    path.write_text(yaml.safe_dump(body))
    return str(path)


def plan(tmp: Path, colour_data: Path) -> dict[str, dict]:
    """Each run's config and overrides, by name; ``two`` and ``one`` output folders."""
    gather = write_config(tmp / "gather.yaml", {
        "data": {"train": str(colour_data), "val": str(colour_data)},
        "train": {"max_steps": 6, "batch_size": 4, "lr": 1e-12, "scheduler": "constant", "feature_cache": False},
        "eval": {"every_steps": 3, "metrics": ["bleu_4", "cider"],
                 "decoding": {"strategy": "greedy", "max_new_tokens": 6}},
    })
    same = write_config(tmp / "same.yaml", {
        "model": {"name": str(tiny_without_dropout(tmp / "tiny-no-dropout"))},
        "data": {"train": str(equal_length_records(tmp / "squares"))},
        "finetune": {"dropout": 0.0, "qformer": "lora", "targets": "all_linear"},
        "train": {"max_steps": 6, "lr": 1e-3, "feature_cache": False},  # 12 examples: 2 steps per epoch
    })
    resume = write_config(tmp / "resume.yaml", {
        "data": {"train": str(colour_data)},
        "finetune": {"dropout": 0.1},
        "train": {"batch_size": 4, "lr": 1e-3, "scheduler": "constant", "feature_cache": False},
    })
    return {
        "gather": {"config": gather, "overrides": []},
        "same": {"config": same, "overrides": ["train.batch_size=3"]},
        "straight": {"config": resume, "overrides": ["train.max_steps=8"]},
        "stopped": {"config": resume, "overrides": ["train.max_steps=4"], "out": "resumed"},
        "resumed": {"config": resume, "overrides": ["train.max_steps=8"], "resume": True},
    }


def run_worker(runs: list[dict], spec: Path, launch: list[str], cwd: Path) -> None:
    spec.write_text(json.dumps({"runs": runs}))
    env = dict(os.environ, PYTHONWARNINGS="ignore", OMP_NUM_THREADS="1")
    res = subprocess.run(launch + [str(WORKER), str(spec)], env=env, cwd=cwd, capture_output=True, text=True,
                         timeout=300, check=False)
    assert res.returncode == 0, res.stderr[-3000:]


def in_process(runs: list[dict], spec: Path) -> None:
    loader = importlib.util.spec_from_file_location("train_worker", WORKER)
    worker = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(worker)
    spec.write_text(json.dumps({"runs": runs}))
    worker.run_all(str(spec))


@pytest.fixture(scope="module")
def runs(tmp_path_factory, colour_data_shared):
    """Every two-process run in one launch, and the one-process references in this process."""
    tmp = tmp_path_factory.mktemp("two-processes")
    steps = plan(tmp, colour_data_shared)

    def with_out(name, folder):
        step = steps[name]
        out = tmp / folder / step.get("out", name)
        return {"config": step["config"], "overrides": step["overrides"] + [f"output_dir={out}"],
                "resume": step.get("resume", False)}

    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
              "--main_process_port", "29533"]
    run_worker([with_out(n, "two") for n in steps], tmp / "two.json", launch, tmp)
    one = [with_out("gather", "one"), with_out("same", "one")]
    one[1]["overrides"][0] = "train.batch_size=6"
    in_process(one, tmp / "one.json")
    return tmp


def recorded(run: Path, rank: int) -> dict:
    return json.loads((run / f"batches_rank{rank}.json").read_text())


def adapter(run: Path) -> dict[str, torch.Tensor]:
    return load_file(run / "checkpoints" / "last" / "adapter_model.safetensors")


def test_validation_is_gathered_from_both_processes(runs):
    two, one = read_jsonl(runs / "two/gather/metrics.jsonl"), read_jsonl(runs / "one/gather/metrics.jsonl")
    starts = [e for e in two if e["event"] == "start"]
    assert len(starts) == 1 and starts[0]["processes"] == 2, "only the main process writes"
    assert starts[0]["steps_per_epoch"] == 3  # 24 examples / (4 per batch x 2 processes)
    evals_two = [e["val_loss"] for e in two if e["event"] == "eval"]
    evals_one = [e["val_loss"] for e in one if e["event"] == "eval"]
    # The learning rate leaves the weights as they start, so the validation loss gathered from two
    # processes must equal the single-process one.
    assert len(evals_two) == 2 and evals_two == pytest.approx(evals_one, abs=1e-5)
    # Captions generated on both processes are gathered in order before scoring.
    for key in ("bleu_4", "cider"):
        assert [e[key] for e in two if e["event"] == "eval"] == pytest.approx(
            [e[key] for e in one if e["event"] == "eval"], abs=1e-9)
    preds = read_jsonl(runs / "two/gather/predictions/val_step000006.jsonl")
    assert len(preds) == 12 and len({p["image_id"] for p in preds}) == 12
    assert (runs / "two/gather/checkpoints/best/adapter_model.safetensors").exists()


def test_two_half_batches_train_like_one_full_batch(runs):
    """DDP averages the two processes' gradients: with batch 3 on each, six steps at lr 1e-3
    reach the weights one process reaches with batch 6."""
    two, one = adapter(runs / "two/same"), adapter(runs / "one/same")
    assert two.keys() == one.keys()
    diff = max(float((two[k] - one[k]).abs().max()) for k in one)
    moved = max(float(one[k].abs().max()) for k in one if "lora_B" in k)  # LoRA's B starts at 0
    assert diff < SAME_WEIGHTS_ATOL < moved / 100


def test_processes_share_each_batch_and_epochs_are_shuffled(runs):
    rank0, rank1 = (recorded(runs / "two/same", r)["batches"] for r in (0, 1))
    single = recorded(runs / "one/same", 0)["batches"]
    assert len(rank0) == len(rank1) == len(single) == 6
    # step k: process 0 takes the first half of the one-process batch, process 1 the second
    assert [a + b for a, b in zip(rank0, rank1)] == single
    epochs = [single[2 * e] + single[2 * e + 1] for e in range(3)]  # 2 steps per epoch
    assert all(sorted(e) == sorted(epochs[0]) for e in epochs)  # every example once per epoch
    assert len({tuple(e) for e in epochs}) == 3  # in a new order each epoch


def test_resume_in_two_processes_matches_an_uninterrupted_run(runs):
    """With dropout on: each process saves and restores its own random state, and the two
    processes draw different dropout masks (seeded seed + rank)."""
    assert [recorded(runs / "two/straight", r)["torch_seed"] for r in (0, 1)] == [0, 1]  # train.seed + rank
    for r in (0, 1):  # after step 4, the same batches in the same order (epoch 1 resumes mid-way)
        assert recorded(runs / "two/straight", r)["batches"][4:] == recorded(runs / "two/resumed", r)["batches"]
    straight, resumed = adapter(runs / "two/straight"), adapter(runs / "two/resumed")
    assert straight.keys() == resumed.keys()
    for k in straight:
        assert torch.allclose(straight[k], resumed[k], atol=1e-6), k
    assert [e["resumed_at"] for e in read_jsonl(runs / "two/resumed/metrics.jsonl") if e["event"] == "resume"] == [4]
    state = runs / "two/resumed/checkpoints/last/trainer_state"
    rng = [torch.load(state / f"rng_rank{r}.pt", weights_only=False) for r in (0, 1)]
    assert not torch.equal(rng[0]["torch"], rng[1]["torch"])  # each process's own
    assert json.loads((state / "state.json").read_text())["processes"] == 2
