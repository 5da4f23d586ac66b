"""`accelerate launch -m captune caption` and `evaluate` on two CPU processes (gloo), against one
process: the images are shared out, the output holds every image once, in the input's order, as
one process writes it; a run one of whose processes is killed resumes.
"""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time

import psutil
import pytest

from captune.evaluate import evaluate
from captune.generate import PRESETS, caption_images
from captune.shards import part_path, parts_dir

pytestmark = pytest.mark.integration

MODEL = "shapes-blip2-opt"
BATCH = "2"  # several batches per process, so the kill lands mid-run


def launch(*args: str) -> list[str]:
    """``accelerate launch`` of two CPU processes running ``python -m captune ARGS``."""
    with socket.socket() as s:  # a free port for the process group
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
            "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
            "--main_process_port", str(port), "-m", "captune", *args]


def env() -> dict[str, str]:
    return dict(os.environ, PYTHONWARNINGS="ignore", OMP_NUM_THREADS="1")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """32 shapes-world images (the shipped captioner tells most of them apart)."""
    from captune.demo.world import generate

    return generate(tmp_path_factory.mktemp("world"), n_images=32, seed=7, style="plain").files["plain"]


@pytest.fixture(scope="module")
def one(world, tmp_path_factory):
    """What one process writes: captions, and an evaluation with a sampled second decoding."""
    out = tmp_path_factory.mktemp("one")
    caption_images(world, out / "captions.jsonl", model=MODEL, decoding=PRESETS["greedy"], batch_size=int(BATCH))
    evaluate(world, out / "eval", model=MODEL, decoding="greedy", decodings="top_p", metrics=["bleu_4", "cider"],
             batch_size=int(BATCH))
    return out


def test_two_processes_evaluate_as_one(world, one, tmp_path):
    cmd = launch("evaluate", "--model", MODEL, "--data", str(world), "--out", str(tmp_path / "eval"),
                 "--decoding", "greedy", "--decodings", "top_p", "--metrics", "bleu_4,cider",
                 "--batch-size", BATCH, "--json")
    res = subprocess.run(cmd, env=env(), capture_output=True, text=True, timeout=300, check=False)
    assert res.returncode == 0, res.stderr[-3000:]
    summary = json.loads(res.stdout)  # one JSON document: only the main process scored and printed
    two, single = (json.loads((d / "eval.json").read_text()) for d in (tmp_path / "eval", one / "eval"))
    assert summary["metrics"] == two["metrics"] == single["metrics"]
    assert two["predictions"]["captioned"] == 32
    assert [r["caption"] for r in two["per_image"]] == [r["caption"] for r in single["per_image"]]
    for name in ("predictions.jsonl", "decodings/top_p.jsonl"):  # sampled captions too: one stream per image
        assert (tmp_path / "eval" / name).read_text() == (one / "eval" / name).read_text(), name
    assert not list(tmp_path.rglob("*.parts"))
    assert len({r["caption"] for r in single["per_image"]}) >= 24  # the captions tell the images apart


def test_a_killed_run_resumes_with_every_image_once(world, one, tmp_path):
    out = tmp_path / "captions.jsonl"
    cmd = launch("caption", "--model", MODEL, "--input", str(world), "--out", str(out), "--decoding", "greedy",
                 "--batch-size", BATCH, "--json")
    killed = kill_rank_1_after(cmd, part_path(out, 1), lines=4)
    assert killed != 0 and not out.exists()  # the launcher stopped process 0 too: nothing merged
    before = [len(p.read_text().splitlines()) if p.exists() else 0 for p in (part_path(out, 0), part_path(out, 1))]
    assert before[1] >= 4 and sum(before) < 32, before
    for rank in (0, 1):  # each part ends in a line a kill cut short
        with part_path(out, rank).open("a") as f:
            f.write('{"image_id": "world_00031", "cap')
    res = subprocess.run(cmd, env=env(), capture_output=True, text=True, timeout=300, check=False)
    assert res.returncode == 0, res.stderr[-3000:]
    summary = json.loads(res.stdout)
    assert (summary["skipped"], summary["captioned"]) == (sum(before), 32 - sum(before))
    assert out.read_text() == (one / "captions.jsonl").read_text()  # every image once, in the input's order
    assert not parts_dir(out).exists()


def test_two_processes_list_each_unreadable_image_once(world, one, tmp_path):
    """Unreadable images among the records (some in each process's share) end in one rejects file,
    each once, in the input's order; the captions file is the one a run without them writes."""
    records = [json.loads(line) for line in world.read_text().splitlines()]
    for r in records:
        r["image"] = str(world.parent / r["image"])
    bad = {"bad_a": b"", "bad_b": b"not a picture", "bad_c": b"\x00\x05\x16\x07Mac OS X"}
    for k, (image_id, data) in enumerate(bad.items()):
        (tmp_path / f"{image_id}.jpg").write_bytes(data)
        records.insert(5 * k + 1, {**records[0], "image_id": image_id, "image": str(tmp_path / f"{image_id}.jpg")})
    listed = tmp_path / "records.jsonl"
    listed.write_text("".join(json.dumps(r) + "\n" for r in records))
    out = tmp_path / "captions.jsonl"
    res = subprocess.run(launch("caption", "--model", MODEL, "--input", str(listed), "--out", str(out),
                                "--decoding", "greedy", "--batch-size", BATCH, "--json"),
                         env=env(), capture_output=True, text=True, timeout=300, check=False)
    assert res.returncode == 0, res.stderr[-3000:]
    assert (json.loads(res.stdout)["unreadable"], res.stderr.count("warning: 3 images could not be read")) == (3, 1)
    assert out.read_text() == (one / "captions.jsonl").read_text()
    rejects = [json.loads(line) for line in (tmp_path / "captions.rejects.jsonl").read_text().splitlines()]
    assert [r["image_id"] for r in rejects] == list(bad)
    assert [r["reason"] for r in rejects] == ["empty_file", "not_an_image", "not_an_image"]


def kill_rank_1_after(cmd: list[str], part, lines: int) -> int:
    """Start ``cmd``; SIGKILL process 1 once ``part`` holds ``lines`` lines; the launcher's exit code."""
    launcher = subprocess.Popen(cmd, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers = []
    deadline = time.monotonic() + 240
    try:
        while not (part.exists() and part.read_text().count("\n") >= lines):
            assert launcher.poll() is None and time.monotonic() < deadline, "the run ended before the kill"
            time.sleep(0.01)
        workers = psutil.Process(launcher.pid).children(recursive=True)
        rank1 = [p for p in workers if p.environ().get("RANK") == "1"]
        assert len(rank1) == 1
        rank1[0].send_signal(signal.SIGKILL)
        return launcher.wait(timeout=120)
    finally:  # a failed test leaves no process behind (the workers outlive a killed launcher)
        for worker in workers:
            with contextlib.suppress(psutil.NoSuchProcess):
                worker.kill()
        if launcher.poll() is None:
            launcher.kill()
