"""The Python PTB tokenizer against the Java one (pycocoevalcap's jar), run once on everything."""

from __future__ import annotations

import pytest
from ptb_corpus import captions, odd_strings, pair_captions

from captune.metrics.ptb import tokenize

pytestmark = pytest.mark.java

def every_char_in_contexts(step: int) -> list[str]:
    skip = {0x0A, 0x0D, 0x0B, 0x0C, 0x85, 0x2028, 0x2029} | set(range(0xD800, 0xE000))
    chars = [chr(c) for c in range(1, 0x10000, step) if c not in skip]
    return [t.replace("{}", ch) for ch in chars for t in ("{}", "a{}a", "1{}1", "x Co. {}", "A.{}")]


def test_python_equals_java_on_generated_captions():
    corpus = captions(10_000, seed=1) + odd_strings(3000, seed=2) + every_char_in_contexts(step=17)
    java = tokenize(corpus, backend="java")  # one run of the jar for the whole set
    python = tokenize(corpus)
    bad = [(c, j, p) for c, j, p in zip(corpus, java, python) if j != p]
    assert not bad, f"{len(bad)} of {len(corpus)} differ, e.g. {bad[:3]}"


def test_java_backend_is_pycocoevalcaps_tokenizer():
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    caps = captions(300, seed=3)
    caps = [c.replace("\r", " ").replace("\u2028", " ").replace("\u2029", " ").replace("\x0b", " ").replace("\x0c", " ")
            for c in caps]
    reference = PTBTokenizer().tokenize({i: [{"caption": c}] for i, c in enumerate(caps)})
    assert tokenize(caps, backend="java") == [reference[i][0] for i in range(len(caps))]


@pytest.mark.slow
def test_every_bmp_character_in_contexts():
    corpus = every_char_in_contexts(step=1)
    java = tokenize(corpus, backend="java")
    assert tokenize(corpus) == java


def test_words_read_together_across_spaces_equal_java():
    corpus = pair_captions(4000, seed=28)
    assert tokenize(corpus) == tokenize(corpus, backend="java")
