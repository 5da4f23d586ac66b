"""SPICE with the reference jar, as pycocoevalcap's ``Spice().compute_score``.

SPICE parses captions into scene graphs with Stanford CoreNLP 3.6.0, whose jars are not part of
the pycocoevalcap package: they must be in ``pycocoevalcap/spice/lib`` (the jar's class path).
When they are there (and Java is), the jar runs as pycocoevalcap runs it: ``java -jar -Xmx8G
spice-1.0.jar IN.json -cache DIR -out OUT.json -subset -silent``, with the parse cache under
``$CAPTUNE_HOME/cache/spice``; the score is the mean of the per-image "All" F-scores. Otherwise
the metric is unavailable, and the reason names the missing files, where they were looked for and
how to get them. No value is ever made up.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from captune.metrics.base import MetricResult, MetricUnavailable, register
from captune.metrics.ptb import java_executable

CORENLP_JARS = ("stanford-corenlp-3.6.0.jar", "stanford-corenlp-3.6.0-models.jar")


def spice_dir() -> Path:
    import pycocoevalcap

    return Path(next(iter(pycocoevalcap.__path__))) / "spice"


def missing_files() -> list[Path]:
    folder = spice_dir()
    paths = [folder / "spice-1.0.jar"] + [folder / "lib" / name for name in CORENLP_JARS]
    return [p for p in paths if not p.exists()]


def check() -> str:
    """The Java executable, or ``MetricUnavailable`` naming what is missing and how to get it."""
    missing = missing_files()
    if missing:
        lib = spice_dir() / "lib"
        raise MetricUnavailable(
            "SPICE needs the Stanford CoreNLP 3.6.0 jars, which are not installed: missing "
            + ", ".join(str(p) for p in missing)
            + f" (looked in {lib}). Get them with pycocoevalcap's downloader: python -c \"from "
            "pycocoevalcap.spice.get_stanford_models import get_stanford_models; get_stanford_models()\" "
            "(fetches http://nlp.stanford.edu/software/stanford-corenlp-full-2015-12-09.zip, about "
            f"400 MB), or copy {' and '.join(CORENLP_JARS)} from that zip into {lib}."
        )
    return java_executable()


def _cache_dir() -> Path:
    home = Path(os.environ.get("CAPTUNE_HOME", Path.home() / ".cache" / "captune"))
    path = home / "cache" / "spice"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _to_float(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def run_spice(predictions: list[str], references: list[list[str]]) -> tuple[float, list[float]]:
    """(mean SPICE F-score, per-image F-scores) from the jar."""
    java = check()
    items = [{"image_id": i, "test": p, "refs": list(r)} for i, (p, r) in enumerate(zip(predictions, references))]
    with tempfile.TemporaryDirectory(prefix="captune-spice-") as tmp:
        src, out = Path(tmp) / "input.json", Path(tmp) / "output.json"
        src.write_text(json.dumps(items), encoding="utf-8")
        cmd = [java, "-jar", "-Xmx8G", "spice-1.0.jar", str(src), "-cache", str(_cache_dir()), "-out", str(out),
               "-subset", "-silent"]
        proc = subprocess.run(cmd, cwd=spice_dir(), capture_output=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"the SPICE jar failed: {proc.stderr.decode(errors='replace')[-2000:]}")
        results = json.loads(out.read_text(encoding="utf-8"))
    by_id = {item["image_id"]: _to_float(item["scores"]["All"]["f"]) for item in results}
    per_image = [by_id[i] for i in range(len(items))]
    return float(np.mean(np.array(per_image))), per_image


@register("spice", outputs=("spice",), tokenized=True)
def spice(predictions: list[str], references: list[list[str]], images=None, **options) -> MetricResult:
    """SPICE (pycocoevalcap ``Spice()``) of PTB-tokenized captions, when CoreNLP is installed."""
    corpus, per_image = run_spice(predictions, references)
    return MetricResult({"spice": corpus}, [{"spice": v} for v in per_image])
