"""The same training command under `accelerate launch` with two CPU processes (gloo)."""

import os
import subprocess
import sys

import pytest

from captune.io import read_jsonl

pytestmark = pytest.mark.integration


def run_train(cmd_prefix, config_args, cwd):
    env = dict(os.environ, PYTHONWARNINGS="ignore", OMP_NUM_THREADS="1")
    cmd = cmd_prefix + ["-m", "captune", "train", "--no-progress", *config_args]
    res = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    return res


def test_two_process_training_gathers_validation(colour_data, tmp_path):
    import yaml

    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump({
        "data": {"train": str(colour_data), "val": str(colour_data)},
        "train": {"max_steps": 6, "batch_size": 4, "lr": 1e-12, "scheduler": "constant", "feature_cache": False},
        "eval": {"every_steps": 3, "metrics": ["bleu_4", "cider"], "decoding": {"strategy": "greedy", "max_new_tokens": 6}},
    }))
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "29533"]
    run_train(launch, [str(cfg), f"output_dir={tmp_path / 'two'}"], tmp_path)
    run_train([sys.executable], [str(cfg), f"output_dir={tmp_path / 'one'}"], tmp_path)

    two, one = read_jsonl(tmp_path / "two" / "metrics.jsonl"), read_jsonl(tmp_path / "one" / "metrics.jsonl")
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
    preds = read_jsonl(tmp_path / "two" / "predictions" / "val_step000006.jsonl")
    assert len(preds) == 12 and len({p["image_id"] for p in preds}) == 12
    assert (tmp_path / "two" / "checkpoints" / "best" / "adapter_model.safetensors").exists()
