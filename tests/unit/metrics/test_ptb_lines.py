"""The Python PTB tokenizer's output lines: made from its words' texts by one join and one cut,
with lines without tokens (at either end, in a row, all of them) and texts that need the
stripped cut, against lexing the whole file at once."""

from __future__ import annotations

import random

import pytest
from ptb_corpus import captions, odd_strings
from test_ptb import lex_whole_file

from captune.metrics import MetricResources, _ptb_python
from captune.metrics.ptb import tokenize

NO_TOKENS = ["", " ", "...", "!", "? ?", ". . .", "  ,  ", "\U0001f600", "--"]


@pytest.mark.parametrize("layout", [
    [0, 1, 1], [1, 1, 0], [1, 0, 1], [0, 0, 1, 0, 1, 0, 0], [1, 0, 0, 0, 1], [0], [0, 0, 0], [1], [1, 0],
])
def test_lines_without_tokens_anywhere(layout):
    rng = random.Random(len(layout))
    words = captions(len(layout), seed=21)
    caps = [words[k] if full else rng.choice(NO_TOKENS) for k, full in enumerate(layout)]
    lines = tokenize(caps)
    assert lines == lex_whole_file(caps)
    assert [bool(line) for line in lines] == [bool(full) for full in layout]


def test_many_lines_without_tokens_among_others():
    rng = random.Random(22)
    caps = captions(1500, seed=23) + odd_strings(300, seed=24)
    caps = [rng.choice(NO_TOKENS) if rng.random() < 0.2 else c for c in caps]
    assert tokenize(caps) == lex_whole_file(caps)


def test_texts_with_spaces_at_their_ends_are_stripped_as_lines():
    # No word of the lexer gives such a text; lines are still the texts joined by spaces, cut at
    # line ends and stripped of spaces, as pycocoevalcap reads the Java output.
    tokenizer = MetricResources().tokenizer()
    tokenizer.add_word("zq", " zq ")
    tokenizer.add_word("qz", "  ")
    tokenizer.add_word("zr", "zr ")
    tokenizer.add_word("nb", "\u00a0")  # a text without tokens
    tokenizer.add_word("nl", "x\ny")  # a line break: cut there too
    assert tokenizer.tokenize(["a zq", "zq b", "qz", "c qz d", "e"]) == ["a  zq", "zq  b", "", "c    d", "e"]
    assert tokenizer.tokenize(["e zr", "f"]) == ["e zr", "f"]
    assert tokenizer.tokenize(["a", "nb", "b"]) == ["a", "\u00a0", "b"]
    assert tokenizer.tokenize(["a nl", "b"]) == ["a x", "y", "b"]
    (encoding,) = _ptb_python.encodings(tokenizer, tokenizer.tokenize(["a zq", "zq b"]))
    assert encoding.lens.tolist() == [2, 2]
