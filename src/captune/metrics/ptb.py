"""PTB tokenization exactly as COCO caption evaluation does it.

pycocoevalcap's ``PTBTokenizer`` writes the captions, one per line (newlines inside a caption
turned into spaces), runs ``java -cp stanford-corenlp-3.4.1.jar edu.stanford.nlp.process.PTBTokenizer
-preserveLines -lowerCase`` on the file and drops the tokens in ``PUNCTUATIONS``. ``tokenize``
returns the same strings, either by running that jar once for the whole batch (``backend="java"``)
or with a pure-Python port of the jar's lexer (``backend="python"``, the default; no Java needed).

    >>> tokenize(["A man can't ride a (red) bike...", "Mr. Smith, U.S. citizen"])
    ['a man ca n't ride a -lrb- red -rrb- bike', 'mr. smith u.s. citizen']

The Python backend caches the lexer's output per whitespace-separated word and only re-lexes
across words where the lexer's rules can see past a space (abbreviations, fractions, phone
numbers, spaced ellipses, SGML tags), so a corpus tokenizes at dictionary-lookup speed.

One deliberate difference from pycocoevalcap: carriage returns, form feeds, vertical tabs and
U+2028/U+2029 inside a caption are turned into spaces like newlines are. pycocoevalcap leaves them,
the Java tokenizer starts a new output line at each, and every later caption is then paired with
the wrong image; no sensible score comes out of that.

Equality with the jar is tested on every Basic Multilingual Plane character in many contexts and
on tens of thousands of generated captions (``tests/unit/metrics/test_ptb_java.py``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import regex

from captune.metrics import _ptb_lexer as lexer
from captune.metrics.base import MetricUnavailable

PUNCTUATIONS = frozenset(
    ["''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!", ",", ":", "-", "--", "...", ";"]
)
"""Tokens pycocoevalcap drops after tokenizing. Its list is upper case and the tokens are lower-cased
first, so brackets survive as ``-lrb-``, ``-rrb-``, ``-lsb-``..."""

# Characters the Java lexer reads as line ends; in a caption they would shift every later line.
_LINE_BREAKS = regex.compile("[\n\r\u000b\u000c\u2028\u2029]")


def clean(caption: str) -> str:
    """The caption as it is written to the tokenizer's input file (line breaks become spaces)."""
    return _LINE_BREAKS.sub(" ", caption)


def tokenize(captions: list[str], backend: str = "python") -> list[str]:
    """PTB-tokenize ``captions`` as pycocoevalcap does: lower-cased tokens joined by single spaces.

    The whole list is tokenized as one file, as pycocoevalcap does for its references and its
    predictions separately: the lexer sees past the end of a caption into the next one (an
    abbreviation at the end of a caption keeps its period only if the next caption starts with a
    lower-case word, for example), so pass captions in the order of the evaluation.
    """
    captions = [clean(c) for c in captions]
    if backend == "python":
        return _PythonTokenizer.shared().tokenize(captions)
    if backend == "java":
        return tokenize_java(captions)
    raise ValueError(f"unknown tokenizer backend {backend!r}; use 'python' or 'java'")


def filter_line(line: str) -> str:
    """pycocoevalcap's post-processing of one output line of the Java tokenizer."""
    return " ".join(w for w in line.rstrip().split(" ") if w not in PUNCTUATIONS)


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
        proc = subprocess.run(cmd, capture_output=True)
    if proc.returncode != 0:
        raise RuntimeError(f"the Java PTB tokenizer failed: {proc.stderr.decode(errors='replace')[-2000:]}")
    lines = proc.stdout.decode("utf-8").split("\n")
    if len(lines) < len(captions):
        raise RuntimeError(f"the Java PTB tokenizer returned {len(lines)} lines for {len(captions)} captions")
    return [filter_line(line) for line in lines[: len(captions)]]


# --- the Python backend -------------------------------------------------------------------------
_SPACE_NOT_SPLIT = frozenset("\u00a0\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u3000")
_NOT_SPACENL = regex.compile("[^ \t\u00a0\u2000-\u200a\u3000\n]")
# Contexts that exercise every rule able to look past a final period into the next caption.
_PROBES = ("", " ", "\nx", "\nThe x", " \nThe x", " The x", "\tThe y", "\n\nx", "\n 5", "\n5", " 5",
           "\nthe x", " ltd x", "\n<b> x", "  the", "\nA ", "\nIt\n", "\n\n")
_FOLLOW_CHARS = 20  # covers the longest word the lexer checks for after an acronym
_MAX_CACHE = 2_000_000
_DIRECT_CONTEXT = 4000  # characters of following captions the direct path lexes with


def java_lower(token: str) -> str:
    """``String.toLowerCase()`` of Java (final sigma decided within Java's word boundaries)."""
    if "\u03a3" not in token:
        return token.lower()
    return lexer.java_final_sigma(token)


def _lex(text: str, stop: int) -> list[list[str]]:
    """Lower-cased tokens per line of ``text[:stop]``; the rest of ``text`` is only context."""
    u = lexer.to_utf16(text)
    stop = len(lexer.to_utf16(text[:stop])) if len(u) != len(text) else stop
    return [[java_lower(t) for t in line] for line in lexer.lex(u, 0, stop)]


def _tokens(piece: str, follow: str) -> list[str]:
    """Tokens of ``piece``, a part of a caption after a space, followed by ``follow``.

    A piece starting with another space character (no-break, thin...) is lexed after its space:
    the lexer skips both as one run, which keeps it from starting a URL at the thin space.
    """
    lead = " " if piece[0] in _SPACE_NOT_SPLIT else ""
    (tokens,) = _lex(lead + piece + follow, len(lead) + len(piece))
    return tokens


def _filtered(piece: str, follow: str) -> str:
    return " ".join(t for t in _tokens(piece, follow) if t not in PUNCTUATIONS)


class _Word:
    """A space-free piece of a caption, lexed alone, and what decides whether that is allowed."""

    __slots__ = ("text", "dot_end", "num_end", "num_start", "has_lt")

    def __init__(self, word: str):
        self.text = _filtered(word, " ")
        self.dot_end = word[-1] == "."
        self.num_end = word[-1].isdecimal() or word[-1] == ")"
        self.num_start = word[0].isdecimal()
        self.has_lt = "<" in word


class _PythonTokenizer:
    """The Python backend. Lexing results are cached per word and per caption end (per process)."""

    _shared: _PythonTokenizer | None = None

    def __init__(self) -> None:
        self.words: dict[str, _Word] = {}
        self.segments: dict[str, str] = {}
        self.tails: dict[tuple[str, str], str] = {}
        self.follow_free: dict[str, bool] = {}

    @classmethod
    def shared(cls) -> _PythonTokenizer:
        if cls._shared is None or len(cls._shared.words) + len(cls._shared.tails) > _MAX_CACHE:
            cls._shared = _PythonTokenizer()
        return cls._shared

    def tokenize(self, captions: list[str]) -> list[str]:
        out: list[str] = []
        i = 0
        while i < len(captions):
            line = None if "\t" in captions[i] else self.caption(captions, i)
            if line is None:
                lines = self.direct(captions, i)
                out.extend(lines)
                i += len(lines)
            else:
                out.append(line)
                i += 1
        return out

    def word(self, w: str) -> _Word:
        info = self.words.get(w)
        if info is None:
            info = self.words[w] = _Word(w)
        return info

    def caption(self, captions: list[str], i: int) -> str | None:
        """The tokenized caption ``i``, or None when it must be lexed together with what follows."""
        parts = captions[i].split(" ")
        idx = [k for k, p in enumerate(parts) if p]
        if not idx:
            return ""
        if idx[0] == 0 and parts[0][0] in _SPACE_NOT_SPLIT:
            return None
        words = [self.word(parts[k]) for k in idx]
        texts: list[str] = []
        start = 0  # first word of the current segment
        for k in range(len(words) - 1):
            w = words[k]
            if w.dot_end or w.has_lt or (w.num_end and words[k + 1].num_start):
                continue  # the lexer may see past this space: keep the words together
            texts.append(w.text if start == k else self.segment(" ".join(parts[idx[start]: idx[k] + 1])))
            start = k + 1
        tail = " ".join(parts[idx[start]: idx[-1] + 1])
        follow = " " if parts[-1] == "" else ("\n" if i + 1 < len(captions) else "")
        if start == len(words) - 1 and not (words[-1].dot_end or words[-1].has_lt):
            key = (tail, follow)
        elif "<" in tail:
            return None
        elif tail[-1] == "." and not self.is_follow_free(tail):
            key = (tail, self.follow_text(captions, i))
            if key[1] is None:
                return None
        else:
            key = (tail, follow)
        text = self.tails.get(key)
        if text is None:
            text = self.tails[key] = filter_line(" ".join(_tokens(tail, key[1])))
        texts.append(text)
        return " ".join(t for t in texts if t)

    def segment(self, seg: str) -> str:
        text = self.segments.get(seg)
        if text is None:
            text = self.segments[seg] = _filtered(seg, " ")
        return text

    def is_follow_free(self, tail: str) -> bool:
        """Whether the tokens of a caption ending in ``tail`` never depend on the next caption."""
        free = self.follow_free.get(tail)
        if free is None:
            results = {tuple(_tokens(tail, probe)) for probe in _PROBES}
            free = self.follow_free[tail] = len(results) == 1
        return free

    @staticmethod
    def follow_text(captions: list[str], i: int) -> str | None:
        """What follows caption ``i`` up to the point where no rule of the lexer looks further.

        None when the next visible character opens an SGML tag (which may be long): lex directly.
        """
        cap = captions[i]
        text = cap[len(cap.rstrip(" ")):]
        j = i + 1
        while j < len(captions):
            text += "\n" + captions[j]
            j += 1
            m = _NOT_SPACENL.search(text)
            if m is not None and len(text) >= m.start() + _FOLLOW_CHARS:
                break
        m = _NOT_SPACENL.search(text)
        if m is None:
            return text
        if text[m.start()] == "<":
            return None
        return text[: m.start() + _FOLLOW_CHARS]

    @staticmethod
    def direct(captions: list[str], i: int) -> list[str]:
        """Lex caption ``i`` with the full following text as the Java lexer does, up to its end of line.

        Used for captions with tabs or SGML tags (a quoted attribute value may run over the end of
        the line, as in Java, and then the following captions are covered too). Returns the
        tokenized captions ``i``, ``i + 1``, ... up to the first line end the lexer reached.
        """
        j, size = i + 1, len(captions[i])
        while j < len(captions) and size < _DIRECT_CONTEXT:
            size += len(captions[j]) + 1
            j += 1
        text = lexer.to_utf16("\n".join(captions[i:j]))
        pos, lines, line = 0, [], []
        while pos < len(text):
            tok, pos = lexer.next_token(text, pos)
            if tok == "\n":
                break
            if tok is not None:
                line.append(java_lower(lexer.from_utf16(tok)))
        out = " ".join(line).split("\n")
        return [filter_line(ln) for ln in out]
