"""METEOR: equal to pycocoevalcap's Meteor, one kept-alive process per MetricResources (stopped by
its close()), unavailable without Java."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest
from conftest import coco_dicts

from captune.metrics import MetricResources, score
from captune.metrics import meteor as meteor_module
from captune.metrics.base import MetricUnavailable
from captune.metrics.meteor import meteor

PREDS = ["a man riding a wave on a surfboard", "two dogs play in the park", "", "a cat a cat a cat",
         "caf\u00e9 with a red umbrella", "x"]
REFS = [["a surfer rides a big wave", "a man surfing"], ["dogs playing on grass"], ["an empty street"],
        ["a cat sitting on a mat", "the cat"], ["a cafe with red umbrellas", "umbrellas outside a caf\u00e9"],
        ["y", "z", "x y z"]]


@pytest.mark.java
def test_equals_pycocoevalcap_and_thread_safe():
    from pycocoevalcap.meteor.meteor import Meteor

    gts, res = coco_dicts(PREDS, REFS)
    expected, expected_per_image = Meteor().compute_score(gts, res)
    result = meteor(PREDS, REFS)
    assert result.corpus["meteor"] == expected
    assert [d["meteor"] for d in result.per_item] == expected_per_image

    resources = MetricResources()
    sizes = range(1, len(PREDS) + 1)
    alone = {k: meteor(PREDS[:k], REFS[:k], resources=resources).corpus["meteor"] for k in sizes}
    together: dict[int, list[float]] = {k: [] for k in sizes}

    def work(k: int) -> None:
        together[k].append(meteor(PREDS[:k], REFS[:k], resources=resources).corpus["meteor"])

    threads = [threading.Thread(target=work, args=(k,)) for k in sizes for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    resources.close()
    assert together == {k: [v] * 3 for k, v in alone.items()}


@pytest.mark.java
def test_one_process_for_100_calls_restarted_if_dead_and_stopped_by_close():
    resources = MetricResources()
    proc = resources.meteor()
    first = meteor(PREDS[:2], REFS[:2], resources=resources).corpus["meteor"]
    pid = proc.pid
    for i in range(100):
        k = 1 + i % len(PREDS)
        score(PREDS[:k], REFS[:k], metrics=["meteor"], resources=resources)
        assert proc.pid == pid and proc.alive()
    proc._proc.kill()  # a crash: the next call starts a new process
    proc._proc.wait()
    assert meteor(PREDS[:2], REFS[:2], resources=resources).corpus["meteor"] == first
    assert proc.alive() and proc.pid != pid
    pid = proc.pid
    resources.close()
    assert not proc.alive()
    assert subprocess.run(["kill", "-0", str(pid)], capture_output=True, check=False).returncode != 0
    assert resources.meteor() is not proc  # usable again: a later score starts a new process


@pytest.mark.java
def test_a_call_without_resources_stops_its_process(monkeypatch):
    made = []

    class Recorded(meteor_module.MeteorProcess):
        def __init__(self):
            super().__init__()
            made.append(self)

    monkeypatch.setattr(meteor_module, "MeteorProcess", Recorded)
    assert meteor(PREDS[:1], REFS[:1]).corpus["meteor"] > 0
    assert len(made) == 1 and not made[0].alive() and made[0].pid is None


@pytest.mark.java
def test_process_is_gone_after_interpreter_exit(tmp_path):
    code = ("from captune.metrics import MetricResources\nfrom captune.metrics.meteor import meteor\n"
            "r = MetricResources()\nmeteor(['a dog'], [['a dog runs']], resources=r)\nprint(r.meteor().pid)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300)
    pid = int(out.stdout.split()[-1])
    assert subprocess.run(["kill", "-0", str(pid)], capture_output=True, check=False).returncode != 0


def test_unavailable_without_java(monkeypatch):
    monkeypatch.setenv("PATH", "")
    with pytest.raises(MetricUnavailable, match="no Java runtime"):
        meteor(PREDS, REFS)
    scores = score(PREDS, REFS, metrics=["meteor", "bleu_1"])
    assert "meteor" not in scores.corpus and "no Java runtime" in scores.unavailable["meteor"]
    assert scores.to_json()["meteor"] is None
    assert 0 < scores.corpus["bleu_1"] < 1
