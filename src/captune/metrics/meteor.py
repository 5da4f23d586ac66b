"""METEOR 1.5 with the reference jar, exactly as pycocoevalcap's ``Meteor().compute_score``.

The jar shipped with pycocoevalcap runs as ``java -jar -Xmx2G meteor-1.5.jar - - -stdio -l en
-norm`` and needs its English paraphrase table (``meteor/data/paraphrase-en.gz``). Starting it
takes seconds (the table is loaded), so a ``MetricResources`` keeps one process from its first
METEOR score until its ``close()`` (training evaluates many times): calls are serialized by a
lock, the process is restarted if it died, and one still running at interpreter exit is stopped.
Without a ``MetricResources`` a call starts its own process and stops it before returning. The protocol is the reference wrapper's: one ``SCORE`` line per image, then one
``EVAL`` line with all the statistics; the per-image values and the corpus value are the jar's.

Without Java (or without the jar or its paraphrase table) the metric is unavailable, with the
reason.
"""

from __future__ import annotations

import subprocess
import tempfile
import threading
import weakref
from pathlib import Path

from captune.metrics.base import MetricResult, MetricUnavailable, register
from captune.metrics.ptb import java_executable


def meteor_dir() -> Path:
    import pycocoevalcap

    return Path(next(iter(pycocoevalcap.__path__))) / "meteor"


def _check_files() -> Path:
    folder = meteor_dir()
    jar, table = folder / "meteor-1.5.jar", folder / "data" / "paraphrase-en.gz"
    if not jar.exists():
        raise MetricUnavailable(f"the METEOR jar is missing: {jar} (reinstall pycocoevalcap)")
    if not table.exists() or table.stat().st_size < 1_000_000:
        raise MetricUnavailable(
            f"METEOR's paraphrase table is missing or truncated: {table} (about 60 MB; reinstall "
            "pycocoevalcap, or copy data/paraphrase-en.gz from the meteor-1.5 release next to the jar)"
        )
    return folder


def check() -> None:
    """``MetricUnavailable`` unless the jar, its paraphrase table and Java are all here."""
    _check_files()
    java_executable()


class MeteorProcess:
    """A long-lived METEOR jar process; ``compute`` is safe to call from several threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen | None = None
        self._stderr = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _start(self) -> None:
        folder = _check_files()
        java = java_executable()
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115  (open for the life of the process)
        cmd = [java, "-jar", "-Xmx2G", "meteor-1.5.jar", "-", "-", "-stdio", "-l", "en", "-norm"]
        self._proc = subprocess.Popen(cmd, cwd=folder, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=self._stderr)
        self._finalizer = weakref.finalize(self, _stop, self._proc)  # at exit, or if never closed

    def compute(self, predictions: list[str], references: list[list[str]]) -> tuple[float, list[float]]:
        """(corpus METEOR, per-image METEOR) of tokenized captions, as pycocoevalcap returns them."""
        with self._lock:
            if not self.alive():
                self._close()
                self._start()
            try:
                return self._exchange(predictions, references)
            except (BrokenPipeError, OSError, ValueError) as e:
                detail = self._error_text()
                self._close()
                raise RuntimeError(f"the METEOR jar stopped ({e}); its output: {detail}") from e

    def _exchange(self, predictions, references) -> tuple[float, list[float]]:
        lines = [_score_line(p, r) for p, r in zip(predictions, references)]
        writer = threading.Thread(target=self._write, args=(lines,), daemon=True)
        writer.start()  # write while reading: the pipes would fill up and block both sides
        stats = [self._read() for _ in lines]
        writer.join()
        self._write(["EVAL" + "".join(f" ||| {s}" for s in stats)])
        per_image = [float(self._read()) for _ in lines]
        return float(self._read()), per_image

    def _write(self, lines: list[str]) -> None:
        for line in lines:
            self._proc.stdin.write(f"{line}\n".encode())
        self._proc.stdin.flush()

    def _read(self) -> str:
        line = self._proc.stdout.readline()
        if not line:
            raise ValueError("no output")
        return line.decode().strip()

    def _error_text(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")[-2000:]

    def _close(self) -> None:
        if self._proc is not None:
            self._finalizer.detach()
            _stop(self._proc)
            self._proc = None
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def close(self) -> None:
        with self._lock:
            self._close()


def _stop(proc: subprocess.Popen) -> None:
    try:
        proc.stdin.close()
    except OSError:
        pass
    proc.kill()
    proc.wait()


def _score_line(hypothesis: str, references: list[str]) -> str:
    # As pycocoevalcap: "|||" removed from the hypothesis and double spaces made single (once).
    hypothesis = hypothesis.replace("|||", "").replace("  ", " ")
    return " ||| ".join(("SCORE", " ||| ".join(references), hypothesis))


@register("meteor", outputs=("meteor",), tokenized=True)
def meteor(predictions: list[str], references: list[list[str]], images=None, **options) -> MetricResult:
    """METEOR 1.5 (pycocoevalcap ``Meteor()``) of PTB-tokenized captions; the process is
    ``options["resources"].meteor()`` when given, else one started and stopped here."""
    resources = options.get("resources")
    process = resources.meteor() if resources is not None else MeteorProcess()
    try:
        corpus, per_image = process.compute(predictions, references)
    finally:
        if resources is None:
            process.close()
    return MetricResult({"meteor": corpus}, [{"meteor": v} for v in per_image])
