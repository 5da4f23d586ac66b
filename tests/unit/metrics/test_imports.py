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


def test_metric_modules_table_matches_the_registry():
    import importlib

    from captune import metrics
    from captune.metrics import base

    metrics.load_all()
    for module, names in metrics.METRIC_MODULES.items():
        defined = {s.name for s in base.registered().values() if s.fn.__module__ == f"captune.metrics.{module}"}
        outputs = {o for s in base.registered().values() if s.name in defined for o in s.outputs}
        aliases = {a for a, target in base._ALIASES.items() if target in outputs}
        assert set(names) == defined | outputs | aliases, module
        importlib.import_module(f"captune.metrics.{module}")
    assert set(metrics.known_metrics()) <= set(metrics._MODULE_OF)


LAZY_PROBE = """
import json, sys
from captune.metrics import score
score(["a red circle"], [["a red circle", "one red circle"]], metrics=["bleu_4", "attr_map"],
      attribute_vocab={"color": ["red"]})
print(json.dumps(sorted(m for m in sys.modules if m.startswith("captune.metrics."))))
"""


def test_scoring_imports_only_the_modules_of_the_metrics_asked_for():
    out = subprocess.run([sys.executable, "-c", LAZY_PROBE], capture_output=True, text=True, check=True)
    loaded = {m.rsplit(".", 1)[1] for m in json.loads(out.stdout)}
    assert {"bleu", "attributes"} <= loaded  # an alias (attr_map) finds its module too
    assert not loaded & {"bertscore", "clipscore", "meteor", "perplexity", "sentence", "spice", "encoders", "rouge",
                         "cider"}
