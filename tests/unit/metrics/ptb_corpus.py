"""Generators of varied, adversarial captions for checking the PTB tokenizer against the Java one.

Realistic caption templates are mixed with fragments from every category the COCO tokenizer
treats specially: contractions, quotes, brackets, numbers, dashes, slashes, abbreviations,
ellipses, accents and other scripts, emoji, odd whitespace, handles, hashtags, URLs, symbols.
"""

from __future__ import annotations

import random

SUBJECTS = ["a man", "a woman", "two dogs", "the cat", "a group of people", "a young boy", "an old lady",
            "three kids", "a red car", "a large elephant", "the baseball player", "some birds", "a chef"]
VERBS = ["riding", "holding", "standing next to", "sitting on", "looking at", "eating", "walking past",
         "playing with", "jumping over", "parked near", "flying above", "cooking"]
OBJECTS = ["a surfboard", "a bench", "the street", "a pizza", "a frisbee", "the beach", "a kite",
           "a table", "some vegetables", "a building", "the water", "a skateboard", "a laptop"]
PLACES = ["in the park", "on a sunny day", "at night", "near the ocean", "in a kitchen", "on the field",
          "in front of a store", "under a tree", "during the game", "at the station"]

CONTRACTIONS = ["can't", "won't", "don't", "isn't", "it's", "he's", "she'll", "we'd", "they've", "I'm",
                "you're", "y'all", "o'clock", "ain't", "'em", "'90s", "rock'n'roll", "ma'am", "let's",
                "shouldn't've", "DON'T", "It'S", "couldn't", "who's", "that'll", "dog's", "dogs'", "James'",
                "boss's", "'tis", "'twas", "cannot", "Cannot", "gonna", "wanna", "gotta", "lemme", "gimme",
                "dunno", "c'mon", "li'l", "ol'", "nor'easter", "cont'd", "d'Avignon", "l'amour", "O'Neil",
                "can\u2019t", "it\u2019s", "don\u2019t", "'n'", "'til", "'cause", "Cap'n", "c'est", "e'er"]
QUOTES = ['"{}"', "'{}'", "``{}''", "`{}'", "\u201c{}\u201d", "\u2018{}\u2019", "\u00ab{}\u00bb", "\u201e{}\u201c",
          '"{}', "{}'", "'{}", '{}"', "\u2039{}\u203a", "&quot;{}&quot;"]
BRACKETS = ["({})", "[{}]", "{{{}}}", "<{}>", "( {} )", "[ {} ]", "({}", "{})", "-LRB- {} -RRB-"]
NUMBERS = ["3.5", "1,000", "10:30", "3/4", "1 1/2", "5-7/8", "12/25/99", "22/7/2014", "2-3", "-5", "+7",
           "100%", "50 %", "2nd", "3rd", "21st", "4th", "3x4", "1.5m", "$5", "$ 5", "US$5", "\u00a35",
           "\u20ac10", "\u00a5500", "5\u00a2", "(555) 123-4567", "555-123-4567", "555.123.4567", "1990s",
           "'80s", "0.5", ".5", "1.000.000", "3:45pm", "9am", "24/7", "7/11", "1/2/3", "10\u00b0", "30\u00b0C",
           "\u00bd", "\u00bc", "2\u00bd", "x\u00b2", "H\u2082O", "6'2\"", "5'10", "007", "1e5", "#1", "No. 5"]
DASHES = ["well-known", "state-of-the-art", "e-mail", "x-ray", "co-op", "--", "---", "----", "-----", "-",
          "\u2013", "\u2014", "\u2015", "\u2012", "\u2010", "a\u2011b", "up-to-date", "pre-", "anti-war",
          "t-shirt", "T-Shirt", "non-U.S.", "U.S.-U.K", "mid-1990s", "1-on-1", "_", "__init__", "a_b"]
SLASHES = ["and/or", "km/h", "a/b/c", "w/", "w/o", "1/2", "50/50", "he/she", "/", "//", "A/C", "TCP/IP"]
ABBREVS = ["Mr.", "Mrs.", "Ms.", "Dr.", "Prof.", "St.", "Mt.", "Jr.", "Sr.", "Gen.", "Col.", "Capt.",
           "etc.", "e.g.", "i.e.", "vs.", "vs", "U.S.", "U.S", "U.K.", "a.m.", "p.m.", "A.M.", "Inc.",
           "Corp.", "Ltd.", "Co.", "Jan.", "Feb.", "Sept.", "Dec.", "Mon.", "Fri.", "Calif.", "Mass.",
           "Ill.", "Ark.", "No.", "Nos.", "Fig.", "fig.", "ca.", "approx.", "Ave.", "Blvd.", "Rd.",
           "Ph.D.", "Ed.D.", "a.k.a.", "cf.", "al.", "et al.", "Bros.", "Esq.", "Dept.", "Univ.", "Ft.",
           "Ste.", "Rep.", "Sen.", "Gov.", "Rev.", "Lt.", "Sgt.", "Wash.", "Pa.", "Va.", "Tex.", "Ore.",
           "Wis.", "Miss.", "Op.", "Art.", "Sec.", "Prop.", "Tel.", "est.", "ext.", "sq.", "ft.", "oz.",
           "A.", "B.", "I.", "x.", "Z.", "p.", "S.p.A.", "U.S.A.", "N.Y.", "D.C.", "L.A.", "Ph.", "Pty.",
           "seq.", "Messrs.", "Wm.", "Jos.", "Alex.", "Cie.", "Natl.", "Mfg.", "Intl.", "Assn.", "Bhd."]
AFTER_ABBREV = [" The dog", " the dog", " 5", " Smith", "", ",", " ,", "  The", ".", " A", " a", " It",
                " He said", " \"Yes\"", " <b>", " (x)", " I"]
ELLIPSES = ["...", ". . .", "\u2026", "....", ".....", "......", "..", ". .", "!!!", "?!", "??", "!?", "?",
            "!", ";", ":", ",", ".", "\u00a1", "\u00bf", "\u3002", "\u0085"]
UNICODE = ["caf\u00e9", "na\u00efve", "r\u00e9sum\u00e9", "\u00dcber", "STRA\u00dfE", "\u00c5ngstr\u00f6m",
           "\u00f1and\u00fa", "\u00e7a", "\u65e5\u672c\u8a9e", "\u4e2d\u6587", "\ud55c\uad6d\uc5b4",
           "\u0627\u0644\u0639\u0631\u0628\u064a\u0629", "\u05e2\u05d1\u05e8\u05d9\u05ea",
           "\u0440\u0443\u0441\u0441\u043a\u0438\u0439", "\u0395\u039b\u039b\u0397\u039d\u0399\u039a\u0391",
           "\u0939\u093f\u0928\u094d\u0926\u0940", "\u0130stanbul", "\u0131\u015f\u0131k", "\u1e9e",
           "\u01c5", "\u2102", "\u212a", "\ufb01", "\u0149", "\u00b5", "\u0386\u03b8\u03ae\u03bd\u03b1",
           "e\u0301", "\u0237", "\u02c8", "\u2160", "\uff21\uff22", "\u3042\u3044", "\u00aa", "\u00ba",
           "\u0e44\u0e17\u0e22", "\u1000\u102c", "\u2c65", "\ua7b8", "\u0560", "\u08a0"]
EMOJI = ["\U0001f600", "\U0001f436\U0001f431", "\U0001f468\u200d\U0001f469\u200d\U0001f467",
         "\U0001f1fa\U0001f1f8", "\u2600", "\u2603", "\u2605", "\u2665", "\u2713", "\u2764\ufe0f",
         "\u266a", "\U0001f44d\U0001f3fd", "\u263a", ":)", ":-(", ";)", ":D", "<3", "^_^", ":P", "=)",
         "(^_^)", "o_O", ":-/", ":'(", "xD", "\u00a9", "\u00ae", "\u2122", "\u00b0", "\u00a7", "\u00b6",
         "\u2020", "\u2022", "\u00b7", "\u2192", "\u221e", "\u2260", "\u00d7", "\u00f7", "\u00b1"]
SPACES = ["  ", "\t", " \t ", "\u00a0", "\u2009", "\u200b", "\u3000", "\ufeff", "\u200e", " \n ", "\u2002"]
WEB = ["@user", "@John_Doe99", "#hashtag", "#100days", "#caf\u00e9", "http://www.example.com/a?b=c",
       "https://x.y/z?q=1&r=2", "www.google.com", "example.org/page", "john.doe@example.com", "foo@bar",
       "a@b.co.uk", "http://foo.com/bar.", "(http://foo.com)", "ftp://x.y", "node.js", ".NET", "C++", "C#",
       "F#", "file.jpg", "index.html", "AT&T", "S&P", "S&P-500", "R&D", "A&M", "&amp;", "&lt;", "&gt;",
       "&", "$", "%", "#", "@", "*", "**", "\\*", "~", "^", "|", "=", "==", "+", "<", ">", "<<", ">>",
       "&mdash;", "&nbsp;", "&eacute;", "&apos;", "&#39;", "<b>", "</b>", "<br/>", "<a href='x'>",
       "a < b > c", "<a  b c>", "x*y", "a=b", "a+b", "q&a", "Q&A", "\u00a0&\u00a0", "e.g.,", "i.e.:", "U.S.-based"]
CASES = [str, str.lower, str.upper, str.title, str.capitalize]
ENDINGS = ["", ".", ".", ".", " .", "!", "?", "...", " ", "  ", ". ", ",", ";", ":", "'", '"', ")"]
POOLS = [CONTRACTIONS, NUMBERS, DASHES, SLASHES, UNICODE, EMOJI, WEB, ELLIPSES]


def _base(rng: random.Random) -> list[str]:
    words = f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)}".split()
    if rng.random() < 0.5:
        words += rng.choice(PLACES).split()
    return words


def _fragment(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.15:
        return rng.choice(ABBREVS) + rng.choice(AFTER_ABBREV)
    if kind < 0.25:
        return rng.choice(QUOTES).format(rng.choice(OBJECTS + CONTRACTIONS))
    if kind < 0.32:
        return rng.choice(BRACKETS).format(rng.choice(OBJECTS + NUMBERS))
    if kind < 0.36:
        return "".join(rng.choice("abcXYZ019.,;:!?'\"`-_/\\()[]{}<>@#$%&*+=~^|") for _ in range(rng.randint(1, 6)))
    if kind < 0.39:
        return "".join(chr(rng.randint(0x20, 0x2FFF)) for _ in range(rng.randint(1, 3)))
    return rng.choice(rng.choice(POOLS))


def _join(rng: random.Random, words: list[str]) -> str:
    out = words[0]
    for w in words[1:]:
        out += (rng.choice(SPACES) if rng.random() < 0.08 else " ") + w
    return out


def caption(rng: random.Random) -> str:
    """One caption: a realistic sentence with zero to four special fragments."""
    r = rng.random()
    if r < 0.02:
        return rng.choice(["", " ", "  ", "\t", ".", "...", "\u00a0"])
    words = _base(rng)
    for _ in range(rng.choice([0, 1, 1, 2, 2, 3, 4])):
        words.insert(rng.randint(0, len(words)), _fragment(rng))
    if r < 0.04:
        words = words * rng.randint(5, 20)
    text = _join(rng, words)
    text = rng.choice(CASES)(text) if rng.random() < 0.3 else text[:1].upper() + text[1:]
    text += rng.choice(ENDINGS)
    if rng.random() < 0.05:
        text = rng.choice(SPACES) + text
    return text


def captions(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [caption(rng) for _ in range(n)]


_ODD = list("aeinostxyAEIMNOSTUWX0123456789 .,,--''\"/:;!?()<>=&$#%@_*") + [
    "\u00a0", " . . .", "...", "1/2", " 1/2", "555 ", "(555)", "123-4567", "+1", "\u20ac", "\u00a3", "'s",
    "'ll", "n't", "'re", "o'", "y'", "'90s", "<a b='c'>", "</a>", "<br/>", "&amp;", "&lt;", "&nbsp;",
    "AT&T", "www.", ".com", "http://", "@x", "#y", "Mr.", "No.", "fig.", "etc.", "Inc.", "Co.", "Ltd",
    "U.S.", "U.S", "e.g.", "The", "He", "\u2013", "\u2026", "\u201c", "\u2019", "\u00ab", "\u00e9",
    "\u00df", "\u0130", "\u0301", "\u4e2d", "\u00bd", "\u00b2", "\u200b", "\t", "\u3000", "\u2009",
    "\U0001f600", ":)", ";-)", "^_^", "C++", "gonna", "cannot", "'tis", ".jpg", "jr.", "vs.", "v.",
]


def odd_strings(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(_ODD) for _ in range(rng.randint(1, 18))) for _ in range(n)]


# Words around the spaces the lexer may read across: periods after words that do or do not depend
# on what follows, words starting with a period, numbers and ")" before numbers, empty words.
_PAIR_WORDS = ["room.", "Room.", "dog", "The", "A", "a", "It", "Mr.", "etc.", "U.S.", "Calif.", "Co.", "Ltd",
               "No.", "fig.", "I.", "x.", ".", "..", "...", ". .", ".x", "5", "12", "1/2", "3)", "(555)",
               "123-4567", "555", ")", "5.", "\u0665", "\u0665.", "caf\u00e9.", "\U0001f600.", "!.", "bench!!!.",
               "room.,", "e.g.", "p.m.", "<b>", "\tx", "\u00a0y", "\u3000.", "", "Smith", "ltd", "5/8"]


def pair_captions(n: int, seed: int) -> list[str]:
    """Captions of 1 to 8 words from ``_PAIR_WORDS`` joined by one or two spaces, some with spaces
    at either end, some empty."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        words = [rng.choice(_PAIR_WORDS) for _ in range(rng.randint(0, 8))]
        text = "".join(w + rng.choice([" ", " ", " ", "  "]) for w in words)[:-1] if words else ""
        out.append(rng.choice(["", "", "", " "]) + text + rng.choice(["", "", "", " "]))
    return out
