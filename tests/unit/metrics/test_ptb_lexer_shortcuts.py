"""The PTB lexer's shortcuts at letters against trying every rule, and against the Java tokenizer.

At a letter the lexer skips the rules whose characters (an apostrophe, a period, a hyphen...) are
missing up to the next space, and finds the word rule's match with a plain run of letters and
digits where nothing after the run can take the word on.
"""

from __future__ import annotations

import bisect
import pickle
import random

import pytest
import regex

from captune.metrics import _ptb_lexer as lexer
from captune.metrics.ptb import tokenize

LETTERS = list("abcxyznNdDoOlLcCfFyYSPwWhHtTsMrvgeu") + [
    "\u00e9", "\u03a3", "\u0431", "\u6771", "\u00b5", "\u00ba", "\u212a", "\u0237", "\u00aa", "\u0e01", "\u05d0"]
OTHERS = list("'`\u0092\u0091\u2018\u2019\u201b&.-_@#$/\\:+!?,;()\"<>0123456789 \n\t\u00a0\u00ad\u0301\u0e31"
              "\u2010\u2011\u058a*~%=^|\u00b2\u0660\u2026") + [
    "&apos;", "&amp;", "&aacute;", "&Uuml;", ".com", "www.", "http://", "a.k.a", "n't", "'s", "&lt;", "'ll", "\U0001f600"]
WORDS = ["cannot", "gonna", "Wanna", "pro", "anti", "Mr", "Mrs", "vs", "etc", "Co", "No", "Fig", "http", "https",
         "www", "Calif", "c", "C", "f", "x", "y", "S", "Cap", "nor", "cont", "Dunkin", "somethin", "ol", "O", "U.S",
         "Ltd", "jpg", "txt", "The", "It", "doc", "Pty", "AT", "Jan", "Tex", "Ph", "li", "ev", "em", "twas", "tis",
         "Co. Ltd", "pty. lim", "a.k.a ", "Mr ", "v\t", "I\n", "U.S.-U.K ", "www.a.com/b", "x.org/p", "x.jpg",
         "notes.txt.", "x.,", "x.;", "x.:", "x.\u3001", "Ltd.", "Jan. 5", "Calif.", "etc.", "e.g.,", "a.b.c. ",
         "3-year-old", "co.", "figs. 2", "No.", "Inc. The", "Ph.D.", "x-ray.", "well-known.,", "a-b-c-", "d'Av", "x.1.jpg ", "a-1.,", "C.D.s", "Canada-U.S.", "pro-", "anti-$", "Cap\u2019n", "S&P-500", "c'est", "S&amp;Ls", "d&apos;Av", "ol\u2019", "somethin'", "Dunkin&apos;", "O\u2018o", "nor'easter",
         "she\u2019s", "n\u0092t", "y'k", "l`x", "d\u201bA", "wow!yes", "ok?&eacute;", "a.\u0301",
         "Jan."]


def letter_strings(n: int, seed: int) -> list[str]:
    """Runs of letters (and abbreviations, assimilations...) mixed with the characters the rules need."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        parts = []
        for _ in range(rng.randint(1, 6)):
            r = rng.random()
            if r < 0.25:
                parts.append(rng.choice(WORDS))
            elif r < 0.6:
                parts.append("".join(rng.choice(LETTERS) for _ in range(rng.randint(1, 4))))
            else:
                parts.append(rng.choice(OTHERS))
        out.append("".join(parts))
    return out


def every_rule_token(text: str, pos: int) -> tuple[str | None, int]:
    """The token at ``pos`` with every rule tried: the longest match, ties to the earlier rule."""
    best, best_len = None, -1
    for c in lexer._COMPILED:
        m = c.whole.match(text, pos)
        if m is not None and m.end() - pos > best_len:
            best, best_len = c, m.end() - pos
    end = pos + best_len
    if best.trail is not None:
        end = lexer._split(best, text, pos, end)
    out, used = best.rule.action(text[pos:end])
    return out, pos + max(used, 1)


def test_shortcuts_give_the_tokens_of_every_rule_at_every_position():
    texts = [lexer.to_utf16(t + end) for t in letter_strings(1500, seed=71) for end in (" \nThe x", "")]
    bad = [(t, p) for t in texts for p in range(len(t)) if lexer._next_token(t, p) != every_rule_token(t, p)]
    assert not bad, bad[:5]


def test_word_length_is_the_word_rules_longest_match():
    texts = [lexer.to_utf16(t) for t in letter_strings(2000, seed=72)]
    for t in texts:
        for p in range(len(t)):
            m = lexer._WORD.whole.match(t, p)
            letter = lexer._candidates(t[p])[1]
            assert lexer._word_length(t, p, letter) == (-1 if m is None else m.end() - p), (t, p)


def test_character_table_holds_the_rules_classes():
    run = regex.compile(f"[{lexer.LET}{lexer.DIG}]")
    goes_on = regex.compile(f"[{lexer.WORD_EXTRA}&.!?]")
    letter = regex.compile(lexer.LETTER)
    part_start = regex.compile(f"[{lexer.WORD_EXTRA}&]")
    for o in range(0x10000):
        ch = chr(o)
        assert bool(lexer._CHARS[o] & 1) == (run.fullmatch(ch) is not None), hex(o)
        assert bool(lexer._CHARS[o] & 2) == (goes_on.fullmatch(ch) is not None), hex(o)
        assert bool(lexer._CHARS[o] & 4) == (letter.fullmatch(ch) is not None), hex(o)
        assert bool(lexer._CHARS[o] & 8) == (part_start.fullmatch(ch) is not None), hex(o)


def partial_match_rules(ch: str) -> list[str]:
    return [c.rule.name for c in lexer._COMPILED if c.whole.match(ch, partial=True) is not None]


def check_first_char_index(codes) -> None:
    for o in codes:
        assert [c.rule.name for c in lexer._candidates(chr(o))[0]] == partial_match_rules(chr(o)), hex(o)


def test_first_char_index_equals_partial_matching_at_every_stretch_edge(monkeypatch):
    """The rules indexed for a character are those that can match text starting with it."""
    monkeypatch.setattr(lexer, "_BY_FIRST_CHAR", {})
    edges = {e for s in lexer._STARTS for e in (s - 1, s, s + 1) if 0 <= e <= 0xFFFF}
    check_first_char_index(sorted(edges | set(range(0, 0x10000, 61))))


@pytest.mark.slow
def test_first_char_index_equals_partial_matching_on_the_whole_bmp(monkeypatch):
    monkeypatch.setattr(lexer, "_BY_FIRST_CHAR", {})
    check_first_char_index(range(0x10000))


def test_first_char_index_from_the_parse_of_patterns():
    """Literals, negated classes, optional parts; case-insensitive parts and categories count as any character."""
    starts, index = lexer._build_first_char_index(["ab", "[^a]", "(?:x|[0-9])?y", "(?i:q)", "\\d"])

    def rules_at(ch):
        return index[bisect.bisect_right(starts, ord(ch)) - 1]

    assert rules_at("a") == (0, 3, 4) and rules_at("b") == rules_at("z") == (1, 3, 4)
    assert rules_at("x") == rules_at("y") == rules_at("5") == (1, 2, 3, 4)


def test_every_rule_tried_at_a_letter_is_accounted_for():
    """A rule that can start at a letter either names the characters it needs or is always tried."""
    always = {"assim3", "assim2", "word", "miscsymbol", "untokenizable"}  # exact words, the word, one character
    letters = [chr(c) for c in range(0x10000) if lexer._CHARS[c] & 4]
    sample = [ch for ch in letters if ch.isascii()] + letters[::97]
    at_letters = {c.rule.name for ch in sample for c in lexer._candidates(ch)[0]}
    assert at_letters - always == at_letters & set(lexer._NEEDS)
    assert "untokenizable" in at_letters and "word" in at_letters


def test_a_missing_character_drops_its_rules():
    rules, letter = lexer._candidates("a")
    assert letter
    names = [c.rule.name for c in lexer._letter_candidates("abc def.com", 0, rules)]
    assert "word" in names and "likelyurl" not in names and "email" not in names
    names = [c.rule.name for c in lexer._letter_candidates("abc@def.com", 0, rules)]
    assert "likelyurl" in names and "email" in names and "apoword" not in names


@pytest.mark.java
def test_letter_strings_equal_java():
    corpus = letter_strings(6000, seed=73)
    corpus += [" ".join(letter_strings(4, seed=74 + k)) for k in range(1000)]
    assert tokenize(corpus) == tokenize(corpus, backend="java")


def test_text_outside_utf16_units_is_refused():
    with pytest.raises(ValueError, match="to_utf16"):
        lexer._next_token("\U0001f600", 0)
    assert lexer._next_token(lexer.to_utf16("\U0001f600"), 0) == (None, 1)  # the lexer drops each unit


PATTERNS = ["[a-z]+", "x[^y]"]


def test_first_char_index_comes_from_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CAPTUNE_HOME", str(tmp_path))
    built = lexer._first_char_index(PATTERNS)
    monkeypatch.setattr(lexer, "_build_first_char_index", lambda patterns: pytest.fail("built again"))
    assert lexer._first_char_index(PATTERNS) == built


class _Runs:
    def __reduce__(self):
        import os

        return os.system, ("echo planted",)


@pytest.mark.parametrize("content", [b"", b"not a pickle", pickle.dumps(([0], [(5,)])), pickle.dumps(_Runs())])
def test_a_broken_first_char_cache_is_rebuilt(tmp_path, monkeypatch, content):
    monkeypatch.setenv("CAPTUNE_HOME", str(tmp_path))
    built = lexer._first_char_index(PATTERNS)
    (path,) = (tmp_path / "cache" / "ptb-lexer").glob("*.pickle")
    path.write_bytes(content)
    called = []
    monkeypatch.setattr("os.system", lambda *a: called.append(a))
    assert lexer._first_char_index(PATTERNS) == built and called == []


@pytest.mark.parametrize(("caption", "expected"), [
    ("'tis x", "'t is x"), ("'Tis x", "'t is x"), ("\u2019tis x", "tis x"), ("\x92tis x", "tis x"),
    ("&apos;tis x", "tis x"), ("a \u2019Tisk", "a tisk"),
])
def test_only_an_ascii_apostrophe_makes_tis_two_tokens(caption, expected):
    """As in the Java lexer (checked against the jar with the rest of this file's strings)."""
    assert tokenize([caption]) == [expected]
