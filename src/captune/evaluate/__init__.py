"""Evaluate captioners, compare them honestly, and find what goes wrong.

- ``evaluate(data, out, model=..., adapter=... | predictions=...)``: captions, metrics, error flags
  and fingerprints in ``out/eval.json`` (``captune evaluate``).
- ``compare(dirs)``: deltas with 95% bootstrap intervals and paired permutation p-values
  (``captune compare``); the resampling itself is in ``captune.evaluate.resample``.
- ``captune.evaluate.error_analysis``: per-caption error flags and their counts.
- ``captune.evaluate.decodings``: one model under several decoding presets, side by side.
"""

from captune.evaluate.comparison import compare, load_eval
from captune.evaluate.evaluation import evaluate

__all__ = ["compare", "evaluate", "load_eval"]
