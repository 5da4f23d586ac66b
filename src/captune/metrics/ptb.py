"""PTB tokenization exactly as COCO caption evaluation does it.

pycocoevalcap's ``PTBTokenizer`` writes the captions, one per line (newlines inside a caption
turned into spaces), runs ``java -cp stanford-corenlp-3.4.1.jar edu.stanford.nlp.process.PTBTokenizer
-preserveLines -lowerCase`` on the file and drops the tokens in ``PUNCTUATIONS``. ``tokenize``
returns the same strings, either by running that jar once for the whole batch (``backend="java"``)
or with a pure-Python port of the jar's lexer (``backend="python"``, the default; no Java needed).

    >>> tokenize(["A man can't ride a (red) bike...", "Mr. Smith, U.S. citizen"])
    ["a man ca n't ride a -lrb- red -rrb- bike", 'mr. smith u.s. citizen']

The Python backend caches the lexer's output per whitespace-separated word and only re-lexes
across words where the lexer's rules can see past a space (abbreviations, fractions, phone
numbers, spaced ellipses, SGML tags), so a corpus tokenizes at dictionary-lookup speed; a batch
tokenized lately (the references, evaluation after evaluation) is looked up whole.

One deliberate difference from pycocoevalcap: carriage returns, form feeds, vertical tabs and
U+2028/U+2029 inside a caption are turned into spaces like newlines are. pycocoevalcap leaves them,
the Java tokenizer starts a new output line at each, and every later caption is then paired with
the wrong image; no sensible score comes out of that.

Another: the jar reads and writes with the platform's default charset, so under a non-UTF-8
locale pycocoevalcap mangles non-ASCII characters; here both backends behave as under UTF-8.

Equality with the jar is tested on thousands of generated, often adversarial captions and on
Basic Multilingual Plane characters in several contexts (all of them with ``pytest -m slow``):
``tests/unit/metrics/test_ptb_java.py``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from captune.metrics._ptb_python import PUNCTUATIONS, PythonTokenizer, clean, filter_line
from captune.metrics.base import MetricUnavailable

__all__ = ["PUNCTUATIONS", "clean", "filter_line", "tokenize", "tokenize_java"]


def tokenize(captions: list[str], backend: str = "python", resources=None) -> list[str]:
    """PTB-tokenize ``captions`` as pycocoevalcap does: lower-cased tokens joined by single spaces.

    The whole list is tokenized as one file, as pycocoevalcap does for its references and its
    predictions separately: the lexer sees past the end of a caption into the next one (an
    abbreviation at the end of a caption keeps its period only if the next caption starts with a
    lower-case word, for example), so pass captions in the order of the evaluation.
    ``resources`` (a ``MetricResources``) keeps the Python tokenizer's caches for later calls.
    """
    if backend == "python":
        tokenizer = resources.tokenizer() if resources is not None else PythonTokenizer()
        return tokenizer.tokenize(captions)  # it cleans line breaks itself
    if backend == "java":
        if any(ch in "".join(captions) for ch in "\n\r\u000b\u000c\u2028\u2029"):
            captions = [clean(c) for c in captions]
        return tokenize_java(captions)
    raise ValueError(f"unknown tokenizer backend {backend!r}; use 'python' or 'java'")


# --- the Java backend ---------------------------------------------------------------------------
def corenlp_jar() -> Path:
    """The Stanford CoreNLP 3.4.1 jar shipped with pycocoevalcap."""
    import pycocoevalcap

    base = Path(next(iter(pycocoevalcap.__path__)))
    return base / "tokenizer" / "stanford-corenlp-3.4.1.jar"


def java_executable() -> str:
    """Path of ``java``, or ``MetricUnavailable`` saying how to get it."""
    java = shutil.which("java")
    if java is None:
        raise MetricUnavailable("no Java runtime on PATH (install a JRE >= 8, e.g. `apt install default-jre`)")
    return java


def tokenize_java(captions: list[str]) -> list[str]:
    """Run the CoreNLP jar once on all ``captions`` (already cleaned), as pycocoevalcap does."""
    jar = corenlp_jar()
    if not jar.exists():
        raise MetricUnavailable(f"the CoreNLP jar is missing: {jar} (reinstall pycocoevalcap)")
    java = java_executable()
    with tempfile.TemporaryDirectory(prefix="captune-ptb-") as tmp:
        path = os.path.join(tmp, "captions.txt")
        with open(path, "w", encoding="utf-8", newline="") as f:
            f.write("\n".join(captions))
        # UTF-8 is forced so that the result does not depend on the machine's locale.
        cmd = [java, "-Dfile.encoding=UTF-8", "-cp", str(jar), "edu.stanford.nlp.process.PTBTokenizer",
               "-preserveLines", "-lowerCase", "-encoding", "utf-8", path]
        proc = subprocess.run(cmd, capture_output=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"the Java PTB tokenizer failed: {proc.stderr.decode(errors='replace')[-2000:]}")
    lines = proc.stdout.decode("utf-8").split("\n")
    if len(lines) < len(captions):
        raise RuntimeError(f"the Java PTB tokenizer returned {len(lines)} lines for {len(captions)} captions")
    return [filter_line(line) for line in lines[: len(captions)]]
