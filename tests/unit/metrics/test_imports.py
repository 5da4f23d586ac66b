"""``import captune.metrics`` and scoring the n-gram metrics load no deep-learning stack: the
model-based metrics import torch and transformers inside the functions that need them."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("torch", "transformers", "scipy")

PROBE = """
import json, sys
import captune.metrics
after_import = [m for m in {heavy!r} if m in sys.modules]
from captune.metrics import score
corpus, _ = score(["a red circle", "two squares"], [["a red circle", "one red circle"], ["two blue squares"]],
                  metrics=["bleu", "cider", "rouge_l"])
after_score = [m for m in {heavy!r} if m in sys.modules]
print(json.dumps({{"import": after_import, "score": after_score, "cider": corpus["cider"]}}))
"""


def test_metrics_import_and_ngram_scores_load_no_torch():
    out = subprocess.run([sys.executable, "-c", PROBE.format(heavy=HEAVY)], capture_output=True, text=True,
                         check=True)
    seen = json.loads(out.stdout)
    assert seen["cider"] > 0  # the metrics really ran
    assert seen["import"] == [] and seen["score"] == []


CLI_PROBE = """
import json, sys
from captune.cli import cli
cli(["metrics", "-p", sys.argv[1], "-r", sys.argv[2], "--metrics", "bleu,rouge_l,cider", "--json"],
    standalone_mode=False)
print(json.dumps([m for m in {heavy!r} if m in sys.modules]))
"""


def test_metrics_command_without_model_metrics_loads_no_torch(tmp_path):
    preds, refs = tmp_path / "preds.jsonl", tmp_path / "refs.jsonl"
    preds.write_text('{"image_id": "1", "caption": "a red circle"}\n', encoding="utf-8")
    refs.write_text('{"image_id": "1", "captions": ["a red circle", "one red circle"]}\n', encoding="utf-8")
    out = subprocess.run([sys.executable, "-c", CLI_PROBE.format(heavy=HEAVY), str(preds), str(refs)],
                         capture_output=True, text=True, check=True)
    *scores, loaded = out.stdout.strip().splitlines()
    assert json.loads("\n".join(scores))["bleu_1"] > 0  # the command really scored
    assert json.loads(loaded) == []
