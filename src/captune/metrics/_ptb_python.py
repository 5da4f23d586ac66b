"""The Python backend of ``captune.metrics.ptb.tokenize``: the ported lexer behind caches.

Lexing every caption with the rule-by-rule lexer would be slow, so captions are cut at spaces
into words, and each distinct word is lexed once. That gives the Java result wherever no rule
of the lexer can see past the space between two words; the exceptions are known from the rules:
a word ending in a period (abbreviations, acronyms, spaced ellipses), a number or ``)`` followed
by a word starting with a digit (fractions like "1 1/2", phone numbers), and ``<`` (SGML tags
may contain spaces). Such words are lexed together with their neighbours. The last word of a
caption is lexed with what follows it (the lexer reads on into the next line), cached by the
part of that context the rules can examine. Whole batches go through C-level ``map``/``join``
calls; only unusual captions take the per-caption path.

Each word has an id and each distinct text the ids of its tokens, so the token ids of a batch
(``str.split()`` of every returned line) come out of a few numpy gathers; ``encodings(lines)``
hands them to the n-gram counter, which then neither splits nor interns the text again. The last
few batches are kept with their lines and ids: references tokenized evaluation after evaluation
are looked up, not tokenized.
"""

from __future__ import annotations

import threading
from array import array
from collections import OrderedDict
from collections.abc import Sequence
from itertools import repeat
from typing import NamedTuple

import numpy as np
import regex

from captune.metrics import _ptb_lexer as lexer

PUNCTUATIONS = frozenset(
    ["''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!", ",", ":", "-", "--", "...", ";"]
)
"""Tokens pycocoevalcap drops after tokenizing. Its list is upper case and the tokens are lower-cased
first, so brackets survive as ``-lrb-``, ``-rrb-``, ``-lsb-``..."""


# Characters the Java lexer reads as line ends; in a caption they would shift every later line.
_LINE_BREAKS = regex.compile("[\n\r\u000b\u000c\u2028\u2029]")
_OTHER_BREAKS = "\r\u000b\u000c\u2028\u2029"


def clean(caption: str) -> str:
    """The caption as it is written to the tokenizer's input file (line breaks become spaces)."""
    return _LINE_BREAKS.sub(" ", caption)


def filter_line(line: str) -> str:
    """pycocoevalcap's post-processing of one output line of the Java tokenizer."""
    return " ".join(w for w in line.rstrip().split(" ") if w not in PUNCTUATIONS)


_SPACE_START = frozenset("\t\u00a0\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u3000")
_NOT_SPACENL = regex.compile("[^ \t\u00a0\u2000-\u200a\u3000\n]")
# Contexts that exercise every rule able to look past a final period into the next caption.
_PROBES = ("", " ", "\nx", "\nThe x", " \nThe x", " The x", "\tThe y", "\n\nx", "\n 5", "\n5", " 5",
           "\nthe x", " ltd x", "\n<b> x", "  the", "\nA ", "\nIt\n", "\n\n")
_FOLLOW_CHARS = 20  # covers the longest word the lexer checks for after an acronym
_DIRECT_CONTEXT = 4000  # characters of the following captions the direct path lexes with

# What a word tells about the spaces around it: it ends in a period, starts with one, ends in a digit
# or ")", starts with a digit (fractions, phone numbers), holds "<" (SGML tags may contain spaces),
# starts with another space character, is a word of a caption (not empty, not the separator).
DOT, DOT_START, NUM_END, NUM_START, SGML_OPEN, SPACE_LEAD, REAL = 1, 2, 4, 8, 16, 32, 64


def java_lower(token: str) -> str:
    """Java's ``String.toLowerCase()`` (a capital sigma follows Java's final-sigma rule)."""
    if "\u03a3" not in token:
        return token.lower()
    return lexer.java_final_sigma(token)


def lex_lines(text: str, stop: int) -> list[list[str]]:
    """Lower-cased tokens per line of ``text[:stop]``; the rest of ``text`` is only context."""
    u = lexer.to_utf16(text)
    if len(u) != len(text):
        stop = len(lexer.to_utf16(text[:stop]))
    return [[java_lower(t) for t in line] for line in lexer.lex(u, 0, stop)]


# The lexer splits no plain ASCII word but these (checked in the tests); other words keep whole.
_ASSIMILATIONS = {"cannot": ["can", "not"], "gonna": ["gon", "na"], "gotta": ["got", "ta"],
                  "lemme": ["lem", "me"], "gimme": ["gim", "me"], "wanna": ["wan", "na"]}


def piece_tokens(piece: str, follow: str) -> list[str]:
    """Tokens of ``piece``, a space-separated part of a caption, followed by ``follow``.

    A piece starting with another space character (tab, no-break, thin...) is lexed after its
    space: the lexer skips both as one run, which keeps it from, e.g., starting a URL there.
    """
    if piece.isascii():
        if piece.isalpha():
            low = piece.lower()
            return _ASSIMILATIONS.get(low) or [low]
        word, end = piece[:-1], piece[-1]
        if word.isalpha() and (end in ",;:" or (end == "." and not lexer.is_abbreviation(piece))):
            return piece_tokens(word, "") + [end]
    lead = " " if piece[0] in _SPACE_START else ""
    (tokens,) = lex_lines(lead + piece + follow, len(lead) + len(piece))
    return tokens


# Closing punctuation that no token starting in a run of letters before it can take in: a word
# of letters (or of characters outside the BMP, which the lexer drops one by one) followed by a
# run of these, periods and spaces ("bench!!!", "cat),", "dog...", "room. ...") gives the tokens of
# the word, then those of the run, which the lexer reads as if nothing came before it (it has no
# look-behind). A period right after the word may belong to it (abbreviations, "word.," and
# "word." before a line end), so there the run must go on, with a character other than ",;:",
# and the word must not be an abbreviation (tested against the lexer).
_PUNCT_RUN = frozenset('!?,;:()[]{}"*~\u2026\u2014\u2013\u00ab\u00bb\u201c\u201d\u201e')
_RUN_CHARS = _PUNCT_RUN | {".", " "}


def punctuation_run(piece: str) -> int:
    """Where a run of punctuation ending ``piece`` starts after a word it cannot change; 0 if none."""
    k = len(piece)
    while k and piece[k - 1] in _RUN_CHARS:
        k -= 1
    if k == 0 or k == len(piece) or piece[k] == " ":
        return 0
    word = piece[:k]
    if not (word.isalpha() or min(word) > "\uffff"):
        return 0
    if piece[k] == "." and (piece[k + 1 : k + 2] in ("", ",", ";", ":") or lexer.is_abbreviation(word + ".")):
        return 0
    return k


def _follow_free_word(piece: str) -> bool:
    """Whether ``piece_tokens`` gives ``piece`` its tokens without looking at what follows."""
    if not piece.isascii():
        return False
    word, end = piece[:-1], piece[-1:]
    return piece.isalpha() or (word.isalpha() and (end in ",;:" or (end == "." and not lexer.is_abbreviation(piece))))


def word_flags(word: str) -> int:
    """The flags above of a space-separated piece of a caption."""
    if word in ("", "\n"):
        return 0
    flags = REAL | (DOT if word[-1] == "." else 0) | (DOT_START if word[0] == "." else 0)
    flags |= NUM_END if word[-1].isdecimal() or word[-1] == ")" else 0
    flags |= NUM_START if word[0].isdecimal() else 0
    return flags | (SGML_OPEN if "<" in word else 0) | (SPACE_LEAD if word[0] in _SPACE_START else 0)


class _WordIds(dict):
    """Word -> word id; a word not seen yet is learnt (lexed) when it is looked up."""

    def __init__(self, learn) -> None:
        super().__init__()
        self.learn = learn

    def __missing__(self, word: str) -> int:
        return self.learn(word)


class Encoding(NamedTuple):
    """Token ids of tokenized lines (``str.split()`` of each), in the vocabulary of a tokenizer."""

    ids: np.ndarray  # (T,) int32, line after line
    lens: np.ndarray  # (L,) tokens per line
    plain: bool  # no line is empty and every ``line.split(" ") == line.split()``


# Word ids of the caption separator and of an empty word (two spaces in a row); the entries of
# their texts. A word's tail state: as a caption's last word followed by a newline its text is an
# entry id (>= 0), the same as elsewhere, depends on the next caption, or is not known yet.
NL, EMPTY = 0, 1
TAIL_SAME, TAIL_CONTEXT, TAIL_UNKNOWN = -1, -2, -3


class PythonTokenizer:
    """Caches lexing results per word and per caption end; ``MetricResources.tokenizer()`` keeps
    one across calls and replaces it when ``size()`` passes its bound.

    A word (a space-separated piece of a caption) has an id, and its text (the tokens pycocoevalcap
    keeps, space-joined) an entry with the ids of its tokens, so a batch's token ids are gathered
    with numpy from the words' ids (``Encoding``, kept for the last few batches).
    """

    def __init__(self) -> None:
        self.word_id = _WordIds(self.learn_word)
        self.words: list[str] = []
        self.word_text: list[str] = []
        self.word_entry = array("i")
        self.word_tail = array("i")
        self.word_flags = array("B")
        self.word_free = array("b")  # a word ending in a period: follow-free (1), not (0), not known (-1)
        self.text_table = np.zeros(0, object)  # ``entry_text`` as an array, for gathers
        self.entry_id: dict[str, int] = {}
        self.entry_text: list[str] = []
        self.entry_start, self.entry_len, self.entry_first = array("q"), array("i"), array("i")
        self.token_ids = array("i")
        self.odd_entries: list[int] = []  # texts where split(" ") and split() differ
        self.ragged_entries: list[int] = []  # texts with spaces at an end, no tokens, or a line break
        self.vocab: dict[str, int] = {}
        self.tails: dict[tuple[str, str], str] = {}
        self.segments: dict[str, str] = {}
        self.follow_free: dict[str, bool] = {}
        self.batches: OrderedDict[tuple[str, ...], tuple[tuple[str, ...], Encoding]] = OrderedDict()
        self.encoded: OrderedDict[tuple[str, ...], Encoding] = OrderedDict()
        self.lock = threading.Lock()  # numpy views of the growing tables must not see them grow
        for word in ("\n", ""):
            self.add_word(word, word)

    def size(self) -> int:
        return len(self.words) + len(self.entry_text) + len(self.tails) + len(self.segments)

    def learn_word(self, word: str) -> int:
        cut = punctuation_run(word)
        if cut:  # "bench!!!": the texts of "bench" and "!!!", each learnt once
            text = _join(self.word_text[self.word_id[word[:cut]]], self.word_text[self.word_id[word[cut:]]])
        else:
            text = " ".join(t for t in piece_tokens(word, " ") if t not in PUNCTUATIONS)
        return self.add_word(word, text)

    def add_word(self, word: str, text: str) -> int:
        wid = self.word_id[word] = len(self.words)
        self.words.append(word)
        self.word_text.append(text)
        self.word_entry.append(self.entry(text))
        self.word_tail.append(TAIL_UNKNOWN)
        self.word_flags.append(word_flags(word))
        self.word_free.append(-1)
        return wid

    def entry(self, text: str) -> int:
        """The entry of ``text`` (added with its token ids if new)."""
        e = self.entry_id.get(text)
        if e is None:
            e = self.entry_id[text] = len(self.entry_text)
            tokens = text.split()
            self.entry_text.append(text)
            self.entry_start.append(len(self.token_ids))
            self.entry_len.append(len(tokens))
            self.token_ids.extend([self.vocab.setdefault(t, len(self.vocab)) for t in tokens])
            self.entry_first.append(self.token_ids[self.entry_start[e]] if tokens else -1)
            if text not in ("", "\n") and tokens != text.split(" "):
                self.odd_entries.append(e)
                if not tokens or text[0] == " " or text[-1] == " " or "\n" in text:
                    self.ragged_entries.append(e)
        return e

    def tokenize(self, captions: list[str]) -> list[str]:
        if not captions:
            return []
        key = tuple(captions)
        with self.lock:
            hit = self.batches.pop(key, None)  # the same batch again: references, evaluation after evaluation
            lines, encoding = self.lex_batch(captions) if hit is None else hit
            self.remember(key, lines, encoding)
        return list(lines)

    def remember(self, key: tuple[str, ...], lines: tuple[str, ...], encoding: Encoding) -> None:
        """Keep the last few batches (their lines and token ids) for repeated calls."""
        if len(key) <= _BATCH_CAPTIONS:
            self.batches[key] = (lines, encoding)
        while len(self.batches) > _BATCHES or sum(map(len, self.batches)) > _BATCH_CAPTIONS:
            self.encoded.pop(self.batches.popitem(last=False)[1][0], None)
        self.encoded.pop(lines, None)
        self.encoded[lines] = encoding
        while len(self.encoded) > _BATCHES:
            self.encoded.popitem(last=False)

    def lex_batch(self, captions: list[str]) -> tuple[tuple[str, ...], Encoding]:
        joined = " \n ".join(captions)
        if joined.count("\n") >= len(captions) or any(c in joined for c in _OTHER_BREAKS):
            captions = [clean(c) for c in captions]
            joined = " \n ".join(captions)
        parts = joined.split(" ")  # each caption's words, then "\n"
        wid = np.fromiter(map(self.word_id.__getitem__, parts), np.int32, len(parts))  # new words are lexed
        last = np.append(np.flatnonzero(wid == NL) - 1, len(parts) - 1)  # each caption's last word
        entry = np.frombuffer(self.word_entry, np.int32).take(wid)
        joins = self.joins(wid, last)
        slow = self.slow_captions(wid, last, joins)
        for k, text in self.tail_texts(captions, wid[last], last, slow):
            entry[k] = self.entry(text)
        covered, last_list = 0, last.tolist()
        for i in sorted(slow):
            if i >= covered:  # else a token of an earlier caption ran over this one: already done
                covered = i + self.slow_caption(captions, i, parts, joins.get(i, []), entry, last_list)
        encoding = self.encode(entry, last)
        return self.lines(entry, last, encoding.lens), encoding

    def lines(self, entry: np.ndarray, last: np.ndarray, lens: np.ndarray) -> tuple[str, ...]:
        """The batch's lines from the entries of its words (the separators' entry is "\n") and
        the tokens per line.

        Texts with tokens and neither spaces at their ends nor line breaks (all but odd ones) make
        the lines with tokens by one join and one cut at " \n " (with only the separators between
        those lines); lines without tokens are then empty. Otherwise: cut at "\n", strip spaces.
        """
        if len(self.text_table) != len(self.entry_text):
            self.text_table = np.array(self.entry_text, dtype=object)
        keep = entry != EMPTY  # "": no text
        if self.ragged_entries and np.isin(entry, self.ragged_entries).any():
            lines = " ".join(self.text_table.take(entry[keep]).tolist()).split("\n")
            return tuple(map(str.strip, lines, repeat(" ", len(lines))))
        full = lens != 0
        if full.all():
            return tuple(" ".join(self.text_table.take(entry[keep]).tolist()).split(" \n "))
        if not full.any():
            return ("",) * len(lens)
        apart = full[:-1].copy()  # the separators after lines with tokens, but the last such line
        apart[np.flatnonzero(full)[-1] :] = False
        keep[last[:-1] + 1] = apart
        out = np.full(len(lens), "", dtype=object)
        out[full] = np.array(" ".join(self.text_table.take(entry[keep]).tolist()).split(" \n "), dtype=object)
        return tuple(out.tolist())

    def tail_texts(self, captions: list[str], tail_wid: np.ndarray, last: np.ndarray, slow: set[int]):
        """(word index, text) for the last words of captions whose text differs from the word's.

        Adds to ``slow`` the captions whose last word must be lexed with the caption after it.
        """
        state = np.frombuffer(self.word_tail, np.int32)[tail_wid]
        if (state == TAIL_UNKNOWN).any():
            for w in dict.fromkeys(tail_wid[state == TAIL_UNKNOWN].tolist()):  # (np.unique imports numpy.ma)
                self.word_tail[w] = self.tail_state(w)
            state = np.frombuffer(self.word_tail, np.int32)[tail_wid]
        state[-1] = min(state[-1], TAIL_CONTEXT)  # the last caption is followed by the end of the file
        out = []
        for i in np.flatnonzero(state != TAIL_SAME).tolist():
            if i in slow:
                continue
            if state[i] >= 0:
                out.append((last[i], self.entry_text[state[i]]))
                continue
            follow = follow_text(captions, i)
            if follow is None:
                slow.add(i)
            else:
                out.append((last[i], self.tail(self.words[tail_wid[i]], follow)))
        return out

    def tail_state(self, wid: int) -> int:
        if _follow_free_word(self.words[wid]):
            return TAIL_SAME
        text = self.tail_entry(self.words[wid])
        if text is False:
            return TAIL_CONTEXT
        return TAIL_SAME if text == self.word_text[wid] else self.entry(text)

    def encode(self, entry: np.ndarray, last: np.ndarray) -> Encoding:
        """Token ids of the batch from the entries of its words."""
        count = np.frombuffer(self.entry_len, np.int32).take(entry)
        ids = np.repeat(np.frombuffer(self.entry_first, np.int32).take(entry), count)
        end = np.cumsum(count)
        multi = np.flatnonzero(count > 1)  # words of several tokens ("can't"): the rest of their tokens
        if len(multi):
            k = count[multi].astype(np.int64)
            offsets = np.cumsum(k) - k
            run = np.arange(int(k.sum())) - np.repeat(offsets, k)  # 0, 1, ... within each word
            src = np.repeat(np.frombuffer(self.entry_start, np.int64).take(entry[multi]), k) + run
            ids[np.repeat(end[multi] - k, k) + run] = np.frombuffer(self.token_ids, np.int32).take(src)
        lens = np.diff(end[last], prepend=0)
        plain = bool(lens.all()) and not (self.odd_entries and np.isin(entry, self.odd_entries).any())
        return Encoding(ids, lens, plain)

    def joins(self, wid: np.ndarray, last: np.ndarray) -> dict[int, list[tuple[int, int]]]:
        """Caption -> (word, next word) of the pairs of its words that the lexer may read together.

        It may after a period (abbreviations, acronyms before a capital, spaced ellipses) unless
        the word's text does not depend on what follows and the next word does not start with a
        period; and between a number or ")" and a number (fractions, phone numbers). Word
        indices count from the caption's first word; empty words (spaces in a row) are skipped.
        """
        flags = np.frombuffer(self.word_flags, np.uint8).take(wid)
        at = np.flatnonzero(wid != EMPTY) if (wid == EMPTY).any() else None  # separators stay: they pair with none
        pair = flags if at is None else flags[at]
        word, after = pair[:-1], pair[1:]
        num = ((word & NUM_END) != 0) & ((after & NUM_START) != 0)
        dot = ((word & DOT) != 0) & ((after & REAL) != 0)
        if dot.any():
            k = np.flatnonzero(dot & ((after & DOT_START) == 0))  # else joined whatever the word is
            dot[k] = self.follow_free_words(wid[k if at is None else at[k]]) == 0
        k = np.flatnonzero(num | dot)
        if not len(k):
            return {}
        k, a = (k, k + 1) if at is None else (at[k], at[k + 1])
        caption = np.searchsorted(last, k)  # the caption's last word is at or after k
        first = np.append(0, last[:-1] + 2)[caption]
        out: dict[int, list[tuple[int, int]]] = {}
        for i, pair in zip(caption.tolist(), zip((k - first).tolist(), (a - first).tolist())):
            out.setdefault(i, []).append(pair)
        return out

    def follow_free_words(self, wid: np.ndarray) -> np.ndarray:
        """``is_follow_free`` of the words ``wid`` (ending in a period): 1 or 0, kept per word."""
        free = np.frombuffer(self.word_free, np.int8).take(wid)
        if (free < 0).any():
            for w in dict.fromkeys(wid[free < 0].tolist()):
                self.word_free[w] = self.is_follow_free(self.words[w])
            free = np.frombuffer(self.word_free, np.int8).take(wid)
        return free

    def slow_captions(self, wid: np.ndarray, last: np.ndarray, joins: dict) -> set[int]:
        """Captions where the lexer may see across a space, with spaces at either end or in a row,
        an SGML tag, another space character at their start, or no words."""
        flags = np.frombuffer(self.word_flags, np.uint8).take(wid)
        odd = np.flatnonzero((wid == EMPTY) | ((flags & SGML_OPEN) != 0))
        first = np.append(0, last[:-1] + 2)
        lead = np.flatnonzero(flags.take(first) & SPACE_LEAD)
        return set(joins) | set(np.searchsorted(last, odd).tolist()) | set(lead.tolist())

    def tail_entry(self, word: str) -> str | bool:
        """Text of a caption's last word followed by a newline, or False if it depends on more."""
        if not word or "<" in word or (word[-1] == "." and not self.is_follow_free(word)):
            return False
        return self.tail(word, "\n")

    def tail(self, piece: str, follow: str) -> str:
        key = (piece, follow)
        text = self.tails.get(key)
        if text is None:
            cut = punctuation_run(piece)
            if cut:
                text = _join(self.word_text[self.word_id[piece[:cut]]], self.tail(piece[cut:], follow))
            else:
                text = filter_line(" ".join(piece_tokens(piece, follow)))
            self.tails[key] = text
        return text

    def is_follow_free(self, tail: str) -> bool:
        """Whether the text of a caption ending in ``tail``, or of ``tail`` before a space and
        more words, never depends on what follows (an acronym that repeats its period before a
        capital still gives the same text: the period is dropped)."""
        free = self.follow_free.get(tail)
        if free is None:
            cut = punctuation_run(tail)
            if cut:
                free = self.is_follow_free(tail[cut:])  # the word's tokens are its own
            elif tail[:-1].isascii() and tail[:-1].isalpha() and not lexer.is_abbreviation(tail):
                free = True  # "word." is always "word" + "." (see piece_tokens)
            else:
                free = len({filter_line(" ".join(piece_tokens(tail, p))) for p in _PROBES}) == 1
            self.follow_free[tail] = free
        return free

    def slow_caption(self, captions: list[str], i: int, parts: list[str], joins: list[tuple[int, int]],
                     entry: np.ndarray, last: list[int]) -> int:
        """Put the entries of caption ``i``'s runs of words (or of its whole line, lexed directly)
        in place of its words' entries. ``parts``: the batch's words; ``joins``: the caption's
        pairs of words that the lexer reads together (see ``joins``).

        Returns the number of captions done (more than one when a token runs over a line end).
        """
        a = last[i - 1] + 2 if i else 0
        runs = self.caption_runs(captions, i, parts[a : last[i] + 1], joins)
        if runs is not None:
            for first, end, text in runs:
                entry[a + first : a + end], entry[a + end] = EMPTY, self.entry(text)
            return 1
        lines = direct(captions, i)
        for k, line in enumerate(lines):
            a, b = last[i + k - 1] + 2 if i + k else 0, last[i + k]
            entry[a:b], entry[b] = EMPTY, self.entry(line)
        return len(lines)

    def caption_runs(self, captions: list[str], i: int, parts: list[str],
                     joins: list[tuple[int, int]]) -> list[tuple[int, int, str]] | None:
        """(first word, last word, text) of the runs of caption ``i``'s words (``parts``) that the
        lexer reads together (chains of ``joins``), and of the run that ends it; every other word
        has its own text. None: lex the caption directly."""
        if "<" in captions[i]:
            return None  # an SGML tag may span any number of words (and lines)
        if parts[0][:1] in _SPACE_START:
            return None
        runs: list[list[int]] = []
        for k, after in joins:
            if runs and runs[-1][1] == k:
                runs[-1][1] = after
            else:
                runs.append([k, after])
        end = len(parts) - 1
        while end >= 0 and not parts[end]:
            end -= 1
        if end < 0:
            return []  # no words: every text is empty already
        first = runs.pop()[0] if runs and runs[-1][1] == end else end
        tail = " ".join(parts[first : end + 1])
        follow = " " if parts[-1] == "" else ("\n" if i + 1 < len(captions) else "")
        if tail[-1] == "." and not self.is_follow_free(tail):
            follow = follow_text(captions, i)
            if follow is None:
                return None
        out = [(a, b, self.segment(parts[a : b + 1])) for a, b in runs]
        return [*out, (first, end, self.tail(tail, follow))]

    def segment(self, words: list[str]) -> str:
        """Text of words that the lexer reads as one piece (a single word: its cached text)."""
        if len(words) == 1:
            return self.word_text[self.word_id[words[0]]]
        seg = " ".join(words)
        text = self.segments.get(seg)
        if text is None:
            cut = punctuation_run(seg)
            if cut:  # "room. ...": "room", then ". ..."
                text = _join(self.word_text[self.word_id[seg[:cut]]], self.segment(seg[cut:].split(" ")))
            else:
                text = " ".join(t for t in piece_tokens(seg, " ") if t not in PUNCTUATIONS)
            self.segments[seg] = text
        return text


def _join(a: str, b: str) -> str:
    """Two texts of tokens as one (either may be empty)."""
    return f"{a} {b}" if a and b else a or b


def follow_text(captions: list[str], i: int) -> str | None:
    """What follows caption ``i`` up to where no rule of the lexer looks further.

    None when the next visible character opens an SGML tag (which may be long): lex directly.
    """
    cap = captions[i]
    text = cap[len(cap.rstrip(" ")) :]
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


def direct(captions: list[str], i: int) -> list[str]:
    """Lex caption ``i`` as the Java lexer does, with the following captions as context.

    For SGML tags: a quoted attribute value may run over the end of the line, as in Java, and then
    the following captions are covered too. Returns the tokenized captions ``i``, ``i + 1``, ...
    up to the first line end the lexer reached on its own.
    """
    j, size = i + 1, len(captions[i])
    while j < len(captions) and size < _DIRECT_CONTEXT:
        size += len(captions[j]) + 1
        j += 1
    text = lexer.to_utf16("\n".join(captions[i:j]))
    pos, line = 0, []
    while pos < len(text):
        tok, pos = lexer.next_token(text, pos)
        if tok == "\n":
            break
        if tok is not None:
            line.append(java_lower(lexer.from_utf16(tok)))
    return [filter_line(ln) for ln in " ".join(line).split("\n")]


_BATCHES = 4  # batches kept with their lines and token ids
_BATCH_CAPTIONS = 300_000  # ... holding at most this many captions together


def encodings(tokenizer: PythonTokenizer | None, *batches: Sequence[str]) -> list[Encoding] | None:
    """Token ids of lines that ``tokenizer`` returned lately, one ``Encoding`` per batch (all in
    one vocabulary); None unless every batch is one of those."""
    if tokenizer is None:
        return None
    out = []
    for lines in batches:
        found = tokenizer.encoded.get(tuple(lines)) if len(lines) else Encoding(
            np.zeros(0, np.int32), np.zeros(0, np.int64), True)
        if found is None:
            return None
        out.append(found)
    return out

