"""The Python PTB tokenizer: its cached fast path against its own exact lexer, and known cases.

The exact lexer is checked against the Java tokenizer in ``test_ptb_java.py``; here (no Java
needed) the cached, word-by-word path must give what lexing the whole file at once gives.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
import regex
from ptb_corpus import captions, odd_strings, pair_captions

from captune.metrics import MetricResources, _ptb_python
from captune.metrics import _ptb_lexer as lexer
from captune.metrics.ptb import PUNCTUATIONS, clean, filter_line, tokenize


def lex_whole_file(caps: list[str]) -> list[str]:
    """Tokenize by lexing the joined file in one go, as the Java program reads it."""
    text = lexer.to_utf16("\n".join(clean(c) for c in caps))
    out, line, pos = [], [], 0
    while pos < len(text):
        tok, pos = lexer.next_token(text, pos)
        if tok == "\n":
            out.append(" ".join(line))
            line = []
        elif tok is not None:
            line.append(_ptb_python.java_lower(lexer.from_utf16(tok)))
    out.append(" ".join(line))
    lines = "\n".join(out).split("\n")
    return [filter_line(ln) for ln in lines[: len(caps)]]


# Outputs of the Java tokenizer (stanford-corenlp-3.4.1, -preserveLines -lowerCase) + pycocoevalcap's filter.
KNOWN = [
    ("A man can't go.", "a man ca n't go"),
    ("I won't do it", "i wo n't do it"),
    ("(brackets) [square] {curly}", "-lrb- brackets -rrb- -lsb- square -rsb- -lcb- curly -rcb-"),
    ('She said "hello" to me', "she said hello to me"),
    ("3.5 1,000 10:30 3/4 1 1/2", "3.5 1,000 10:30 3/4 1\u00a01/2"),
    ("Mr. Smith, U.S. etc. Dr. Jones", "mr. smith u.s. etc. dr. jones"),
    ("wait... what.. ok.....", "wait what ok"),
    ("caf\u00e9 gonna wanna cannot", "caf\u00e9 gon na wan na can not"),
    ("@user #hashtag http://www.example.com/a?b=c", "@user #hashtag http://www.example.com/a?b=c"),
    ("A & B, $5, 50% off", "a & b $ 5 50 % off"),
    ("emoji \U0001f600 here \u2605", "emoji here \u2605"),
    ("", ""),
]


def test_known_cases():
    caps = [c for c, _ in KNOWN]
    assert tokenize(caps) == [e for _, e in KNOWN]


def test_fast_path_equals_whole_file_lexing():
    caps = captions(3000, seed=11) + odd_strings(1000, seed=12)
    assert tokenize(caps) == lex_whole_file(caps)


def test_context_across_captions():
    # an abbreviation at the end of a caption duplicates its period only before a capital
    caps = ["He lives in Calif.", "The sun", "He lives in Calif.", "the sun", "No. 5", "Fig.", "5 dogs"]
    assert tokenize(caps) == lex_whole_file(caps)
    assert tokenize(["x etc.", "A"])[0] == "x etc."  # "etc." then "." (dropped): not "etc"


def test_sgml_attribute_may_run_over_the_line_end():
    caps = ["x <a b='c", "d'> y", "z"]
    assert tokenize(caps) == lex_whole_file(caps)


def test_plain_word_shortcuts_match_the_lexer():
    rng = random.Random(5)
    words = ["Mr", "etc", "Co", "Pty", "PTY", "U", "cannot", "Fig", "No", "Inc", "vs", "v", "Calif", "mass", "Mass"]
    words += ["".join(rng.choice("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(rng.randint(1, 7)))
              for _ in range(400)]
    for word in words:
        for piece in (word, word + ".", word + ",", word + ":"):
            for follow in ("", " ", "\n", "\nThe x", "\n5", " ltd", "\n\nx"):
                (exact,) = _ptb_python.lex_lines(piece + follow, len(piece))
                assert _ptb_python.piece_tokens(piece, follow) == exact, (piece, follow)


def test_line_breaks_inside_a_caption_become_spaces():
    assert tokenize(["a\nb", "c\r\nd", "e\u2028f", "g"]) == ["a b", "c d", "e f", "g"]


def test_punctuation_list_is_pycocoevalcaps():
    from pycocoevalcap.tokenizer.ptbtokenizer import PUNCTUATIONS as REFERENCE

    assert PUNCTUATIONS == frozenset(REFERENCE)


def test_unknown_backend():
    with pytest.raises(ValueError, match="unknown tokenizer backend"):
        tokenize(["a"], backend="perl")


def test_token_ids_are_those_of_the_returned_lines():
    caps = captions(2000, seed=13) + odd_strings(500, seed=14) + ["", "a  b", "x\u00a0y"]
    res = MetricResources()
    lines = tokenize(caps, resources=res)
    (encoding,) = _ptb_python.encodings(res.recent_tokenizer(), lines)
    words = {i: w for w, i in res.recent_tokenizer().vocab.items()}
    assert [words[i] for i in encoding.ids.tolist()] == [t for line in lines for t in line.split()]
    assert encoding.lens.tolist() == [len(line.split()) for line in lines]
    assert not encoding.plain  # empty lines, tokens with no-break spaces: split(" ") differs
    plain_lines = tokenize(["A man can't ride a bike.", "Two dogs, one cat"], resources=res)
    assert plain_lines == ["a man ca n't ride a bike", "two dogs one cat"]
    assert _ptb_python.encodings(res.recent_tokenizer(), plain_lines)[0].plain


def test_lines_not_made_by_the_tokenizer_have_no_token_ids():
    res = MetricResources()
    tokenize(["A dog."], resources=res)
    tokenizer = res.recent_tokenizer()
    assert _ptb_python.encodings(tokenizer, ["a dog"]) is not None
    assert _ptb_python.encodings(tokenizer, ["a cat"]) is None
    assert _ptb_python.encodings(tokenizer, ["a dog"], ["a cat"]) is None
    assert _ptb_python.encodings(None, ["a dog"]) is None  # no tokenizer kept: no token ids


def test_repeated_batch_is_not_lexed_again(monkeypatch):
    caps = captions(300, seed=15)
    res = MetricResources()
    first = tokenize(caps, resources=res)
    first.append("changed by the caller")
    monkeypatch.setattr(_ptb_python.PythonTokenizer, "lex_batch", lambda *a: pytest.fail("lexed again"))
    assert tokenize(list(caps), resources=res) == first[:-1]


def test_batches_kept_are_bounded(monkeypatch):
    monkeypatch.setattr(_ptb_python, "_BATCH_CAPTIONS", 10)
    res = MetricResources()
    tokenize([f"caption {i}" for i in range(11)], resources=res)  # too many captions to keep
    for k in range(6):
        tokenize([f"batch {k}"], resources=res)
    tokenizer = res.recent_tokenizer()
    assert list(tokenizer.batches) == [(f"batch {k}",) for k in range(2, 6)]
    assert len(tokenizer.encoded) == 4


def test_tokenizer_is_replaced_past_its_bound():
    res = MetricResources(tokenizer_entries=500)
    caps = captions(300, seed=16)
    first = tokenize(caps, resources=res)
    grown = res.recent_tokenizer()
    assert grown.size() > 500
    assert tokenize(caps, resources=res) == first == tokenize(caps)
    assert res.recent_tokenizer() is not grown and res.recent_tokenizer().size() <= grown.size()


def test_threads_share_the_tokenizer():
    from concurrent.futures import ThreadPoolExecutor

    batches = [captions(400, seed=40 + k) for k in range(8)]
    expected = [lex_whole_file(b) for b in batches]
    res = MetricResources()
    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(lambda b: tokenize(b, resources=res), batches)) == expected


def test_lexer_rule_index_stays_within_its_bound(monkeypatch):
    text = " ".join(chr(c) for c in range(0x4E00, 0x4E00 + 60)) + " A.B. (x)"  # 60 distinct first characters
    expected = tokenize([text])
    monkeypatch.setattr(lexer, "_MAX_FIRST_CHARS", 20)
    monkeypatch.setattr(lexer, "_BY_FIRST_CHAR", {})
    monkeypatch.setattr(lexer, "_BY_REST", {})  # else the tokens come from there, not from the rules
    assert tokenize([text]) == expected
    assert 0 < len(lexer._BY_FIRST_CHAR) <= 20


def test_tokens_of_short_remainders_are_kept_within_their_bound(monkeypatch):
    text = " ".join(chr(c) for c in range(0x4E00, 0x4E00 + 60)) + " A.B. (x)"
    monkeypatch.setattr(lexer, "_BY_REST", {})
    expected = lex_whole_file([text])
    assert lexer._BY_REST  # the last few tokens, 32 characters or fewer from the end
    assert all(len(rest) <= lexer._REST_CHARS for rest in lexer._BY_REST)
    monkeypatch.setattr(lexer, "_MAX_RESTS", 20)
    monkeypatch.setattr(lexer, "_BY_REST", {})
    assert tokenize([text]) == expected == lex_whole_file([text])
    assert 0 < len(lexer._BY_REST) <= 20


def test_a_token_depends_only_on_the_text_after_it():
    """The premise of the remainders' cache: a token is the same after any text before it."""
    caps = captions(300, seed=24) + odd_strings(300, seed=25)
    for cap in caps:
        text = lexer.to_utf16(cap + "\nThe x")
        pos = 0
        while pos < len(cap):
            tok, end = lexer._next_token(text, pos)
            assert lexer._next_token(text[pos:], 0) == (tok, end - pos), (cap, pos)
            pos = end


PUNCT_BASES = ["bench", "A", "x", "I", "Mr", "etc", "Co", "No", "Fig", "vs", "http", "cannot", "gonna", "Calif",
               "pro", "anti", "l", "d", "O", "y", "C", "c", "f", "S", "Cap", "n", "AT", "and", "w", "www", "US",
               "caf\u00e9", "na\u00efve", "\u03a3\u03bf\u03c6\u03af\u03b1", "\u03a3\u039f\u03a6\u0399\u0391",
               "\uc544\uc774\ub4e4", "\u0431\u0435\u0436\u0438\u0442", "\u6771\u4eac", "\u00df", "\u0130stanbul",
               "\u00aa", "\u01c5", "\u0645\u0631\u062d\u0628\u0627", "\u0915\u092a", "\U0001f600",
               "\U0001f44d\U0001f3fd", "\U00010000"]
FOLLOWS = [" ", "", "\n", "\nThe x", " 5", "\n<b> x", "\n\nx", " (x)"]


def punctuation_runs(rng: random.Random) -> list[str]:
    chars = sorted(_ptb_python._PUNCT_RUN)
    runs = chars + ["".join(rng.choice(chars) for _ in range(rng.randint(2, 4))) for _ in range(100)]
    dotted = chars + [".", " ", "  "]
    runs += ["." + "".join(rng.choice(dotted) for _ in range(rng.randint(1, 5))) for _ in range(100)]
    return [r for r in runs if r.strip(" ") == r.rstrip(" ")]  # a run does not start with a space


def exact_text(piece: str, follow: str) -> str:
    """What the lexer makes of ``piece`` followed by ``follow``, filtered as pycocoevalcap does."""
    return filter_line(" ".join(_ptb_python.lex_lines(piece + follow, len(piece))[0]))


def test_words_before_a_punctuation_run_are_lexed_apart_as_the_lexer_does():
    tokenizer = _ptb_python.PythonTokenizer()
    checked = 0
    for base in PUNCT_BASES:
        for run in punctuation_runs(random.Random(21)):
            piece = base + run
            if _ptb_python.punctuation_run(piece) != len(base):
                assert run[0] == "." and (run[1:2] in (",", ";", ":") or lexer.is_abbreviation(base + "."))
                continue
            checked += 1
            if " " not in piece:
                assert tokenizer.word_text[tokenizer.word_id[piece]] == exact_text(piece, " "), piece
            assert tokenizer.segment(piece.split(" ")) == exact_text(piece, " "), piece
            for follow in FOLLOWS:
                assert tokenizer.tail(piece, follow) == exact_text(piece, follow), (piece, follow)
            free = len({exact_text(piece, follow) for follow in _ptb_python._PROBES}) == 1
            assert tokenizer.is_follow_free(piece) == free, piece
    assert checked > 7000


def test_punctuation_runs_in_captions_match_whole_file_lexing():
    rng = random.Random(22)
    chars = sorted(_ptb_python._PUNCT_RUN) + [".", ". ", "'", "-", "@", "#", "/", "&"]
    caps = []
    for caption in captions(1500, seed=23):
        words = caption.split(" ")
        for _ in range(rng.randint(1, 3)):
            k = rng.randrange(len(words))
            words[k] += "".join(rng.choice(chars) for _ in range(rng.randint(1, 3)))
        caps.append(" ".join(words))
    assert tokenize(caps) == lex_whole_file(caps)


def test_words_read_together_across_spaces_match_whole_file_lexing():
    caps = pair_captions(4000, seed=26)
    tokenizer = _ptb_python.PythonTokenizer()
    assert tokenizer.tokenize(caps) == lex_whole_file(caps)
    assert tokenizer.tokenize(caps[::-1]) == lex_whole_file(caps[::-1])  # words known, contexts new


def test_a_period_after_a_word_that_keeps_its_tokens_joins_nothing():
    tokenizer = _ptb_python.PythonTokenizer()
    caps = ["A dog in the room. It sleeps", "No. 5 and No. x. The end", "a room. . . x", "5 1/2 dogs (555) 123-4567"]
    lines = tokenizer.tokenize(caps)
    assert lines == lex_whole_file(caps) == ["a dog in the room it sleeps", "no. 5 and no x the end", "a room x",
                                             "5\u00a01/2 dogs -lrb-555-rrb-\u00a0123-4567"]
    parts = " \n ".join(caps).split(" ")
    wid = np.array([tokenizer.word_id[w] for w in parts], np.int32)
    last = np.append(np.flatnonzero(wid == _ptb_python.NL) - 1, len(parts) - 1)
    joins = tokenizer.joins(wid, last)
    assert 0 not in joins  # "room." keeps its tokens before "It"
    assert joins[1] == [(0, 1), (3, 4), (4, 5)]  # "No." before a number is "no.", else "no" "."; so is "x."
    assert joins[2] == [(1, 2), (2, 3)]  # "room." before ".", then a spaced ellipsis (the last "." keeps its own)
    assert joins[3] == [(0, 1), (3, 4)]  # a fraction, a phone number
    assert tokenizer.slow_captions(wid, last, joins) == {1, 2, 3}


_OLD_QUOTES = [(r"[\u0091\u2018\u201B\u2039]", "`"), (r"[\u0092\u2019\u203A]", "'"), (r"[\u0093\u201C\u00AB]", "``"),
               (r"[\u0094\u201D\u00BB]", "''")]


def regex_latex_quotes(tok: str, probably_left: bool) -> str:
    """The lexer's quote normalisation as the Java code writes it: one regex replacement after another."""
    tok = regex.sub(r"&apos;|'", "`" if probably_left else "'", tok)
    tok = regex.sub(r"\"|&quot;", "``" if probably_left else "''", tok)
    for pattern, repl in _OLD_QUOTES:
        tok = regex.sub(pattern, repl, tok)
    return tok


def test_normalisations_equal_the_java_codes_regex_replacements():
    pieces = ["&apos;", "'", '"', "&quot;", "&Quot;", "&amp;", "&AMP;", "&", "a", "`", "$", "uot;", "apos;", "\u00a2",
              "\u00a3", "\u0080", "\u00a4", "\u20a0", "\u20ac"]
    pieces += ["\u0091", "\u2018", "\u201b", "\u2039", "\u0092", "\u2019", "\u203a", "\u0093", "\u201c", "\u00ab",
               "\u0094", "\u201d", "\u00bb"]
    rng = random.Random(27)
    for _ in range(20_000):
        tok = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 8)))
        assert lexer.latex_quotes(tok, True) == regex_latex_quotes(tok, True), tok
        assert lexer.latex_quotes(tok, False) == regex_latex_quotes(tok, False), tok
        assert lexer.normalize_amp(tok) == regex.sub("&amp;", "&", tok, flags=regex.I), tok
        currency = regex.sub("[\u0080\u00A4\u20A0\u20AC]", "$", tok.replace("\u00a2", "cents").replace("\u00a3", "#"))
        assert lexer.normalize_currency(tok) == currency, tok
