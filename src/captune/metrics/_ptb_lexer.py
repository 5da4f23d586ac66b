"""A Python re-implementation of the Stanford PTB lexer (CoreNLP 3.4.1) used by COCO evaluation.

``lex(text)`` returns the tokens the Java ``PTBTokenizer`` prints for ``text`` with the options
pycocoevalcap passes (``-preserveLines -lowerCase``): one list of tokens per line, tokens not yet
lower-cased. It follows the lexer's rules in their order, with JFlex semantics: at each position
the longest match wins (trailing context ``a/b`` counts towards the length), ties go to the
earlier rule, and the token of ``a/b`` is the longest ``a`` whose remainder matches ``b``.
Patterns use the ``regex`` module's POSIX (leftmost-longest) mode so that every rule yields its
longest match. At a letter, the rules that need a character missing before the next space (an
apostrophe, a period in place, a hyphen before a letter...) are not tried, and the word rule's run
of letters and digits is found with a character table. This is the slow, exact path;
``captune.metrics.ptb`` caches it per word.
"""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import pickle
import re
import sys
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import regex

try:  # the standard library's pattern parser, for the rules' first characters
    from re import _constants as _sre
    from re import _parser as _sre_parse
except ImportError:  # Python 3.10
    import sre_constants as _sre
    import sre_parse as _sre_parse

from captune.io import atomic_write, captune_home
from captune.metrics._ptb_tables import DIGIT_RANGES, LETTER_RANGES, UPPER_RANGES, char_class


def ci(word: str) -> str:
    """A literal matched without case, as JFlex ``%caseless`` does (classes stay case-sensitive)."""
    # A cased character is a letter, which needs no escape.
    return "".join(f"[{ch.lower()}{ch.upper()}]" if ch.lower() != ch.upper() else regex.escape(ch) for ch in word)


def alt(*words: str) -> str:
    return "(?:" + "|".join(ci(w) for w in words) + ")"


# --- character classes --------------------------------------------------------------------------
LET = char_class(LETTER_RANGES)
DIG = char_class(DIGIT_RANGES)
LETTER = f"[{LET}]"
DIGIT = f"[{DIG}]"
LETTER_OR_DIGIT = f"[{LET}{DIG}]"
# Characters the lexer joins into words although Unicode does not call them letters.
WORD_EXTRA = (  # literal characters (not escapes): faster to compile
    "\u00AD\u0237-\u024F\u02C2-\u02C5\u02D2-\u02DF\u02E5-\u02FF\u0300-\u036F\u0370-\u037D\u0384"
    "\u0385\u03CF\u03F6\u03FC-\u03FF\u0483-\u0487\u04CF\u04F6-\u04FF\u0510-\u0525\u055A-\u055F"
    "\u0591-\u05BD\u05BF\u05C1\u05C2\u05C4\u05C5\u05C7\u0615-\u061A\u063B-\u063F\u064B-\u065E"
    "\u0670\u06D6-\u06EF\u06FA-\u06FF\u070F\u0711\u0730-\u074F\u0750-\u077F\u07A6-\u07B1"
    "\u07CA-\u07F5\u07FA\u0900-\u0903\u093C\u093E-\u094E\u0951-\u0955\u0962-\u0963\u0981-\u0983"
    "\u09BC-\u09C4\u09C7\u09C8\u09CB-\u09CD\u09D7\u09E2\u09E3\u0A01-\u0A03\u0A3C\u0A3E-\u0A4F"
    "\u0A81-\u0A83\u0ABC-\u0ACF\u0B82\u0BBE-\u0BC2\u0BC6-\u0BC8\u0BCA-\u0BCD\u0C01-\u0C03"
    "\u0C3E-\u0C56\u0D3E-\u0D44\u0D46-\u0D48\u0E30-\u0E3A\u0E47-\u0E4E\u0EB1-\u0EBC\u0EC8-\u0ECD"
)
SPLET = r"&[aeiouAEIOU](?:" + alt("acute", "grave", "uml") + ");"
WLETTER = f"(?:[{LET}{WORD_EXTRA}]|{SPLET})"
SPACE_CH = r" \t\u00A0\u2000-\u200A\u3000"
SPACE = f"[{SPACE_CH}]"
SPACES = f"{SPACE}+"
NEWLINE = r"(?:\r\n|[\r\n\u2028\u2029\u000B\u000C\u0085])"
SPACENL = f"(?:{SPACE}|{NEWLINE})"

# --- macros -----------------------------------------------------------------------------------
SGML_NAME = r"[A-Za-z][A-Za-z0-9_:.\-]*"
SGML = (
    rf"<(?:[!?][A-Za-z\-][^>\r\n]*|{SGML_NAME}(?:[ ]+(?:{SGML_NAME}|{SGML_NAME}[ ]*=[ ]*"
    rf"(?:'[^']*'|\"[^\"]*\")))*[ ]*\/?|\/{SGML_NAME})[ ]*>"
)
SPMDASH = "(?:&" + alt("MD", "mdash", "ndash") + r";|[\u0096\u0097\u2013\u2014\u2015])"
SPAMP = ci("&amp;")
SPPUNC = "&(?:" + alt("HT", "TL", "UR", "LR", "QC", "QL", "QR", "odq", "cdq") + "|#[0-9]+);"
SENTEND = f"{SPACENL}(?:{SPACENL}|[{char_class(UPPER_RANGES)}]|{SGML})"
DATE = f"{DIGIT}{{1,2}}[\\-\\/]{DIGIT}{{1,2}}[\\-\\/]{DIGIT}{{2,4}}"
NUM = f"(?:{DIGIT}+|{DIGIT}*(?:[.:,\\u00AD\\u066B\\u066C]{DIGIT}+)+)"
NUMBER = f"[\\-+]?{NUM}"
SUBSUPNUM = r"[\u207A\u207B\u208A\u208B]?(?:[\u2070\u00B9\u00B2\u00B3\u2074-\u2079]+|[\u2080-\u2089]+)"
FRAC = f"(?:{DIGIT}{{1,4}}[- \\u00A0])?{DIGIT}{{1,4}}(?:\\\\?\\/|\\u2044){DIGIT}{{1,4}}"
FRAC2 = r"[\u00BC\u00BD\u00BE\u2153-\u215E]"
DOLSIGN = r"(?:[A-Z]*\$|#)"
DOLSIGN2 = r"[\u00A2\u00A3\u00A4\u00A5\u0080\u20A0\u20AC\u060B\u0E3F\u20A4\uFFE0\uFFE1\uFFE5\uFFE6]"
WORD = f"{WLETTER}(?:{WLETTER}|{DIGIT})*(?:[.!?]{WLETTER}(?:{WLETTER}|{DIGIT})*)*"
APOS = r"(?:['\u0092\u2019]|" + ci("&apos;") + ")"
APOSETCETERA = f"(?:{APOS}|[`\\u0091\\u2018\\u201B])"
HYPHEN = r"[-_\u058A\u2010\u2011]"
THING = (
    f"(?:[dDoOlL]{APOSETCETERA}{LETTER_OR_DIGIT})?{LETTER_OR_DIGIT}+"
    f"(?:{HYPHEN}(?:[dDoOlL]{APOSETCETERA}{LETTER_OR_DIGIT})?{LETTER_OR_DIGIT}+)*"
)
THINGA = f"[A-Z]+(?:(?:[+&]|{SPAMP})[A-Z]+)+"
THING3 = r"[A-Za-z0-9]+(?:-[A-Za-z]+){0,2}(?:\\?\/[A-Za-z0-9]+(?:-[A-Za-z]+){0,2}){1,2}"
ACRO_TAIL = (
    alt("Canada", "Sino", "Korean", "EU", "Japan", "non") + "-" + ci("U.S")
    + "|" + ci("U.S.-") + "(?:" + ci("U.K") + "|" + ci("U.S.S.R") + ")"
)
ACRO = rf"(?:[A-Za-z](?:\.[A-Za-z])*|{ACRO_TAIL})"
ACRO2 = rf"(?:[A-Za-z](?:\.[A-Za-z])+|{ACRO_TAIL})"
HTHING = f"[A-Za-z0-9][A-Za-z0-9.,\\u00AD]*(?:-(?:[A-Za-z0-9\\u00AD]+|{ACRO2}\\.))+"
REDAUX = f"{APOS}(?:[msdMSD]|" + alt("re", "ve", "ll") + ")"
SWORD = r"[A-Za-z\u00AD]*[A-MO-Za-mo-z]\u00AD*"
SREDAUX = ci("n") + APOSETCETERA + ci("t")
APOWORD = (
    f"(?:{APOS}{ci('n')}{APOS}?|[lLdDjJ]{APOS}|{ci('Dunkin')}{APOS}|{ci('somethin')}{APOS}"
    f"|{ci('ol')}{APOS}|{APOS}{ci('em')}|[A-HJ-XZn]{APOSETCETERA}{LETTER}{{2}}{LETTER}*"
    f"|{APOS}[2-9]0{ci('s')}|{APOS}{ci('til')}{ci('l')}?"
    f"|{LETTER}{LETTER}*[aeiouyAEIOUY]{APOSETCETERA}[aeiouA-Z]{LETTER}*|{APOS}{ci('cause')}"
    f"|{ci('cont')}'{ci('d')}\\.?|'{ci('twas')}|{ci('nor')}'{ci('easter')}|{ci('c')}'{ci('mon')}"
    f"|{ci('e')}'{ci('er')}|{ci('s')}'{ci('mores')}|{ci('ev')}'{ci('ry')}|{ci('li')}'{ci('l')}"
    f"|{ci('nat')}'{ci('l')}|{ci('O')}{APOSETCETERA}{ci('o')})"
)
APOWORD2 = ci("y") + APOS
FULLURL = ci("http") + ci("s") + r"?:\/\/[^ \t\n\f\r\"<>|(){}]+[^ \t\n\f\r\"<>|.!?(){},-]"
URL_END = r"[^ \t\n\f\r\"<>|.!?(){},-]"
# ",-_" is a range in the Java pattern (it excludes digits and capitals), kept as such.
LIKELYURL = (
    r"(?:(?:" + ci("www") + r"\.(?:[^ \t\n\f\r\"<>|.!?(){},]+\.)+[a-zA-Z]{2,4})|(?:(?:[^ \t\n\f\r\"`'<>|.!?(){},-_$]+\.)+"
    + alt("com", "net", "org", "edu")
    + r"))(?:\/[^ \t\n\f\r\"<>|()]+" + URL_END + ")?"
)
EMAIL_CH = r"[^ \t\n\f\r\"<>|(){}.\u00A0]"
EMAIL = (
    "(?:" + ci("&lt;") + r"|<)?[a-zA-Z0-9][^ \t\n\f\r\"<>|()\u00A0{}]*@" + f"(?:{EMAIL_CH}+\\.)*{EMAIL_CH}+"
    + "(?:" + ci("&gt;") + "|>)?"
)
TWITTER = f"(?:@[a-zA-Z_][a-zA-Z_0-9]*|#{WLETTER}+)"
ABMONTH = alt("Jan", "Feb", "Mar", "Apr", "Jun", "Jul", "Aug", "Sep", "Sept", "Oct", "Nov", "Dec")
ABDAYS = alt("Mon", "Tue", "Tues", "Wed", "Thu", "Thurs", "Fri")
# A capital in brackets is case-sensitive (these states are also common words).
ABSTATE = "(?:" + "|".join(
    f"{w[1]}{ci(w[3:])}" if w.startswith("[") else ci(w)
    for w in ["Ala", "Ariz", "[A]z", "[A]rk", "Calif", "Colo", "Conn", "Ct", "Dak", "[D]el", "Fla", "Ga",
              "[I]ll", "Ind", "Kans", "Kan", "Ky", "[L]a", "[M]ass", "Md", "Mich", "Minn", "[M]iss", "Mo",
              "Mont", "Neb", "Nev", "Okla", "[O]re", "[P]a", "Penn", "Tenn", "[T]ex", "Va", "Vt", "[W]ash",
              "Wisc", "Wis", "Wyo"]
) + ")"
ABCOMP = (
    alt("Inc", "Cos", "Co", "Corp") + "|" + ci("P") + ci("p") + "?" + ci("t") + "[ye]" + ci("s") + "?|"
    + alt("Ltd", "Plc", "Rt", "Bancorp", "Bhd", "Assn", "Univ", "Intl", "Sys")
)
ABNUM = alt("tel", "est", "ext", "sq")
ABPTIT = "(?:" + alt("Jr", "Sr", "Bros", "Blvd", "Rd", "Esq") + "|" + alt("Ed", "Ph") + r"\." + ci("D") + ")"
ABBREV1 = f"(?:{ABMONTH}|{ABDAYS}|{ABSTATE}|{ABCOMP}|{ABNUM}|{ABPTIT}|{alt('etc', 'al', 'seq', 'Bldg')})\\."
ABTITLE = (
    "(?:"
    + alt("Mr", "Mrs", "Ms", "Dr", "Drs", "Prof", "Profs", "Sen", "Sens", "Rep", "Reps", "Atty", "Attys",
          "Lt", "Col", "Gen", "Messrs", "Gov", "Govs", "Adm", "Rev", "Maj", "Sgt", "Cpl", "Pvt", "Capt",
          "St", "Ste", "Ave", "Pres", "Lieut", "Rt", "Hon", "Brig", "Cmdr", "Comdr", "Pfc", "Spc", "Supt",
          "Supts", "Det", "Mt", "Ft", "Adj", "Adv", "Asst", "Assoc", "Ens", "Insp", "Mlle", "Mme", "Msgr",
          "Sfc")
    + "|M"
    + ci("iss")
    + ")"
)
ABCOMP2 = "(?:" + alt("Invt", "Elec", "Natl", "Dept") + "|" + ci("M") + "[ft]" + ci("g") + ")"
ABBREV4 = (
    f"(?:{ABTITLE}|{alt('vs', 'Alex', 'Wm', 'Jos', 'Cie', 'cf', 'TREAS', 'Ph')}|v|{ci('a.k.a')}|{ACRO}|{ABCOMP2})"
)
ABBREV2 = f"{ABBREV4}\\."
FILENAME_EXT = alt("bat", "bmp", "c", "class", "cgi", "cpp", "dll", "doc", "docx", "exe", "gif", "gz", "h",
                   "htm", "html", "jar", "java", "jpeg", "jpg", "mov", "mp3", "pdf", "php", "pl", "png", "ppt",
                   "ps", "py", "sql", "tar", "txt", "wav", "x", "xml", "zip")
FILENAME = f"(?:{WLETTER}|{DIGIT})+(?:\\.(?:{WLETTER}|{DIGIT})+)*\\.{FILENAME_EXT}"
ABBREV3 = alt("ca", "figs", "fig", "prop", "nos", "no", "art", "bldg", "pp", "op") + r"\."
ACRONYM = f"{ACRO}\\."
ACRONYM_NEXT = "(?:" + "|".join(
    f"[{w[0]}]{ci(w[1:])}" for w in [
        "About", "According", "Additionally", "After", "An", "A", "As", "At", "But", "Earlier", "He", "Her",
        "Here", "However", "If", "In", "It", "Last", "Many", "More", "Mr.", "Ms.", "Now", "Once", "One",
        "Other", "Our", "She", "Since", "So", "Some", "Such", "That", "The", "Then", "There", "These",
        "Their", "They", "This", "We", "When", "While", "What", "Yet", "You"]
) + f"|{SGML})"
PHONE = (
    r"(?:\([0-9]{2,3}\)[ \u00A0]?|(?:\+\+?)?(?:[0-9]{2,4}[\- \u00A0])?[0-9]{2,4}[\- \u00A0])[0-9]{3,4}"
    r"[\- \u00A0]?[0-9]{3,5}|(?:(?:\+\+?)?[0-9]{2,4}\.)?[0-9]{2,4}\.[0-9]{3,4}\.[0-9]{3,5}"
)
HYPHENS = r"\-+"
LDOTS = r"(?:\.{3,5}|(?:\.[ \u00A0]){2,4}\.|[\u0085\u2026])"
FNMARKS = r"(?:@+|#+|_+)"
ASTS = r"(?:\*+|(?:\\\*){1,3})"
INSENTP = r"[,;:\u3001]"
QUOTES = f"(?:{APOS}|''|[`\\u2018\\u2019\\u201A\\u201B\\u201C\\u201D\\u0091\\u0092\\u0093\\u0094\\u201E\\u201F\\u2039\\u203A\\u00AB\\u00BB]{{1,2}})"
DBLQUOT = r"(?:\"|" + ci("&quot;") + ")"
TBSPEC = (
    "(?:-" + alt("RRB", "LRB", "RCB", "LCB", "RSB", "LSB") + "-|" + ci("C.D.s") + "|" + alt("pro-", "anti-")
    + "|" + ci("S") + "(?:&|" + SPAMP + ")" + ci("P-500") + "|" + ci("S") + "(?:&|" + SPAMP + ")" + ci("Ls")
    + "|" + ci("Cap") + APOS + ci("n") + "|" + ci("c") + APOS + ci("est") + ")"
)
TBSPEC2 = f"{APOS}[0-9][0-9]"
MISCSYMBOL = (
    r"[+%&~\^|\\\u00A6\u00A7\u00A8\u00A9\u00AC\u00AE\u00AF\u00B0-\u00B3\u00B4-\u00BA\u00D7\u00F7\u0387\u05BE"
    r"\u05C0\u05C3\u05C6\u05F3\u05F4\u0600-\u0603\u0606-\u060A\u060C\u0614\u061B\u061E\u066A\u066D"
    r"\u0703-\u070D\u07F6\u07F7\u07F8\u0964\u0965\u0E4F\u1FBD\u2016\u2017\u2020-\u2023\u2030-\u2038"
    r"\u203B\u203E-\u2042\u2044\u207A-\u207F\u208A-\u208E\u2100-\u214F\u2190-\u21FF\u2200-\u2BFF\u3012"
    r"\u30FB\uFF01-\uFF0F\uFF1A-\uFF20\uFF3B-\uFF40\uFF5B-\uFF65]"
)
SMILEY = r"[<>]?[:;=][\-o\*']?[\(\)DPdpO\\{@\|\[\]]"
ASIANSMILEY = r"(?:[\^x=~<>]\.\[\^x=~<>]|[\-\^x=~<>']_[\-\^x=~<>']|\([\-\^x=~<>'][_.]?[\-\^x=~<>']\)|\([\^x=~<>']-[\^x=~<>'`]\))"
PROG_LANGS = r"(?:[cC][+][+]|[cCfF]#)"
IGNORED = f"(?:\\x00|{SPACES}|[\\u200B\\u200E-\\u200F\\uFEFF]|\\x7F|{ci('&nbsp;')})"


# --- token normalisations (the lexer's ptb3Escaping defaults) -----------------------------------
# The lexer's quote normalisations after the ASCII quotes: each of these characters in one pass.
_QUOTE_CHARS = str.maketrans({"\u0091": "`", "\u2018": "`", "\u201b": "`", "\u2039": "`",
                              "\u0092": "'", "\u2019": "'", "\u203a": "'",
                              "\u0093": "``", "\u201c": "``", "\u00ab": "``",
                              "\u0094": "''", "\u201d": "''", "\u00bb": "''"})


def latex_quotes(tok: str, probably_left: bool) -> str:
    # Case-sensitive, as in the Java code: "&Quot;" is matched by the lexer but left as it is.
    # The Java code's replacements in its order; no replacement makes text that a later one changes.
    single, double = ("`", "``") if probably_left else ("'", "''")
    tok = tok.replace("&apos;", single).replace("'", single)
    tok = tok.replace('"', double).replace("&quot;", double)
    return tok.translate(_QUOTE_CHARS)


def remove_soft_hyphens(tok: str) -> str:
    return tok.replace("\u00ad", "") or "-"


_AMP = regex.compile("&amp;", regex.I)


def normalize_amp(tok: str) -> str:
    return _AMP.sub("&", tok) if "&" in tok else tok


_CURRENCY = str.maketrans({"\u00a2": "cents", "\u00a3": "#", "\u0080": "$", "\u00a4": "$", "\u20a0": "$",
                           "\u20ac": "$"})


def normalize_currency(tok: str) -> str:
    return tok.translate(_CURRENCY)


_FRACTIONS = {"\u00bc": "1/4", "\u00bd": "1/2", "\u00be": "3/4", "\u2153": "1/3", "\u2154": "2/3"}


def normalize_fractions(tok: str) -> str:
    for k, v in _FRACTIONS.items():
        tok = tok.replace(k, v)
    return tok


def parens(tok: str) -> str:
    return tok.replace("(", "-LRB-").replace(")", "-RRB-")


# An action maps the matched token text to (output token or None, characters consumed).
Action = Callable[[str], "tuple[str | None, int]"]


def keep(f: Callable[[str], str | None] = lambda t: t) -> Action:
    return lambda t: (f(t), len(t))


def pushback(n: int) -> Action:
    return lambda t: (t[: len(t) - n], len(t) - n)


def dup_period(t: str) -> tuple[str, int]:
    """Acronym or abbreviation at a sentence end: the token keeps its period, which is lexed again."""
    return t, len(t) - 1


def drop(t: str) -> tuple[None, int]:
    return None, len(t)


@dataclass(frozen=True)
class Rule:
    name: str
    main: str
    trail: str | None
    action: Action


def _acronym(t: str) -> tuple[str, int]:
    """A one-letter acronym ("I.") gives the letter; a longer one keeps and repeats its period."""
    t = t.rstrip(" \t\n\r\x0b\x0c\x85")
    return (t[:1], 1) if len(t) == 2 else dup_period(t)


RULES: list[Rule] = [
    Rule("assim3", alt("cannot") + "|'" + ci("twas"), None, pushback(3)),
    # Only the ASCII apostrophe: "\u2019tis" is a quote, then a word, in the Java lexer.
    Rule("assim2", f"'{ci('tis')}|" + alt("gonna", "gotta", "lemme", "gimme", "wanna"), None, pushback(2)),
    Rule("sgml", SGML, None, keep(lambda t: t.replace(" ", "\u00a0"))),
    Rule("spmdash", SPMDASH, None, keep(lambda t: "--")),
    Rule("spamp", SPAMP, None, keep(normalize_amp)),
    Rule("sppunc", SPPUNC, None, keep()),
    Rule("word_redaux", WORD, REDAUX, keep(remove_soft_hyphens)),
    Rule("sword_sredaux", SWORD, SREDAUX, keep(remove_soft_hyphens)),
    Rule("word", WORD, None, keep(remove_soft_hyphens)),
    Rule("apoword", APOWORD, None, keep()),
    Rule("apoword2", APOWORD2, LETTER, keep()),
    Rule("fullurl", FULLURL, None, keep()),
    Rule("likelyurl", LIKELYURL, None, keep()),
    Rule("email", EMAIL, None, keep()),
    Rule("twitter", TWITTER, None, keep()),
    Rule("redaux_ctx", REDAUX, "[^A-Za-z]", keep(lambda t: latex_quotes(t, False))),
    Rule("sredaux", SREDAUX, None, keep(lambda t: latex_quotes(t, False))),
    Rule("date", DATE, None, keep()),
    Rule("number", NUMBER, None, keep(remove_soft_hyphens)),
    Rule("subsupnum", SUBSUPNUM, None, keep()),
    Rule("frac", FRAC, None, keep(lambda t: t.replace(" ", "\u00a0"))),
    Rule("frac2", FRAC2, None, keep(normalize_fractions)),
    Rule("tbspec", TBSPEC, None, keep(normalize_amp)),
    Rule("thing3", THING3, None, keep()),
    Rule("dolsign", DOLSIGN, None, keep()),
    Rule("dolsign2", DOLSIGN2, None, keep(normalize_currency)),
    Rule("acronym_ctx", ACRONYM, f"{SPACENL}+{ACRONYM_NEXT}{SPACENL}", _acronym),
    Rule("abbrev3", ABBREV3, f"{SPACENL}?{DIGIT}", keep()),
    Rule("co_ltd", "(?:" + ci("pt") + "[eyEY]|" + ci("co") + r")\.", SPACE + alt("ltd", "lim"), keep()),
    Rule("abbrev1_sentend", ABBREV1, SENTEND, dup_period),
    Rule("abbrev1_any2", ABBREV1, "(?s:..)", keep()),
    Rule("abbrev1", ABBREV1, None, dup_period),
    Rule("abbrev2", ABBREV2, None, keep()),
    Rule("abbrev4_space", ABBREV4, SPACE, keep()),
    Rule("acro_spacenl", ACRO, SPACENL, keep()),
    Rule("tbspec2", TBSPEC2, SPACENL, keep()),
    Rule("filename", FILENAME, f"(?:{SPACENL}|[.?!,])", keep()),
    Rule("word_dot_insentp", WORD + r"\.", INSENTP, keep(remove_soft_hyphens)),
    Rule("phone", PHONE, None, keep(lambda t: parens(t.replace(" ", "\u00a0")))),
    Rule("dblquot_left", DBLQUOT, "[A-Za-z0-9$]", keep(lambda t: latex_quotes(t, True))),
    Rule("dblquot", DBLQUOT, None, keep(lambda t: latex_quotes(t, False))),
    Rule("lessthan", "<|" + ci("&lt;"), None, keep(lambda t: "<")),
    Rule("greaterthan", ">|" + ci("&gt;"), None, keep(lambda t: ">")),
    Rule("smiley", SMILEY, "[^A-Za-z0-9]", keep(parens)),
    Rule("asiansmiley", ASIANSMILEY, None, keep(parens)),
    Rule("lcb", r"\{", None, keep(lambda t: "-LCB-")),
    Rule("rcb", r"\}", None, keep(lambda t: "-RCB-")),
    Rule("lsb", r"\[", None, keep(lambda t: "-LSB-")),
    Rule("rsb", r"\]", None, keep(lambda t: "-RSB-")),
    Rule("lrb", r"\(", None, keep(lambda t: "-LRB-")),
    Rule("rrb", r"\)", None, keep(lambda t: "-RRB-")),
    Rule("hyphens", HYPHENS, None, keep(lambda t: "--" if 3 <= len(t) <= 4 else t)),
    Rule("ldots", LDOTS, None, keep(lambda t: "...")),
    Rule("fnmarks", FNMARKS, None, keep()),
    Rule("asts", ASTS, None, keep()),
    Rule("insentp", INSENTP, None, keep()),
    Rule("qmarks", r"[?!]+", None, keep()),
    Rule("period", r"[.\u00A1\u00BF\u037E\u0589\u061F\u06D4\u0700-\u0702\u07FA\u3002]", None, keep()),
    Rule("equals", "=", None, keep()),
    Rule("slash", r"\/", None, keep()),
    Rule("hthing_dot", HTHING + r"\.", INSENTP, keep(remove_soft_hyphens)),
    Rule("hthing", HTHING, None, keep(remove_soft_hyphens)),
    Rule("thing_dot", THING + r"\.", INSENTP, keep()),
    Rule("thing", THING, None, keep()),
    Rule("thinga_dot", THINGA + r"\.", INSENTP, keep(normalize_amp)),
    Rule("thinga", THINGA, None, keep(normalize_amp)),
    Rule("quote_left", "'", "[A-Za-z][^ \\t\\n\\r\\u00A0]", keep(lambda t: latex_quotes(t, True))),
    Rule("redaux", REDAUX, None, keep(lambda t: latex_quotes(t, False))),
    Rule("quotes", QUOTES, None, keep(lambda t: latex_quotes(t, False))),
    Rule("fakeduckfeet", "<<|>>", None, keep()),
    Rule("miscsymbol", MISCSYMBOL, None, keep()),
    Rule("prog_langs", PROG_LANGS, None, keep()),
    Rule("ignored", IGNORED, None, drop),
    Rule("newline", NEWLINE, None, keep(lambda t: "\n")),
    Rule("untokenizable", r"(?s:.)", None, drop),
]

_FLAGS = regex.POSIX | regex.V0


@dataclass(frozen=True)
class _Compiled:
    rule: Rule
    whole: regex.Pattern
    main: regex.Pattern | None
    trail: regex.Pattern | None


# Everything that can make a word followed by a period more than "word" + "." in the lexer:
# abbreviations and acronyms (which look at the next caption) and the "Co. Ltd" rule.
_SPECIAL_BEFORE_PERIOD = f"(?:{ABBREV1}|{ABBREV2}|{ABBREV3}|{ACRONYM}|" + "(?:" + ci("pt") + "[eyEY]|" + ci("co") + r")\.)"


def _patterns() -> list[str | None]:
    """Every pattern the lexer compiles: each rule's whole, head and trail, then the abbreviations."""
    out: list[str | None] = []
    for r in RULES:
        out += [f"(?:{r.main})" + (f"(?:{r.trail})" if r.trail else ""), r.main if r.trail else None, r.trail]
    return out + [_SPECIAL_BEFORE_PERIOD]


class _PatternsOnly(pickle.Unpickler):
    """Unpickles compiled ``regex`` patterns and nothing else (a cache file cannot run code)."""

    def find_class(self, module: str, name: str):
        if name == "compile" and module in ("_regex", "regex._regex"):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"unexpected {module}.{name} in a lexer cache file")


def _cache_path(patterns: list[str | None], kind: str) -> Path:
    """The cache file of ``kind`` for ``patterns``, keyed by them and the versions of ``regex`` and Python."""
    parts = ["\x01" if p is None else p for p in patterns] + [kind, str(int(_FLAGS)), regex.__version__, sys.version]
    key = hashlib.sha256("\x00".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return captune_home() / "cache" / "ptb-lexer" / f"{key}.pickle"


def _compile_all(patterns: list[str | None]) -> list:
    """The compiled patterns, from the on-disk cache when it has them.

    Compiling the rules' large Unicode classes takes about 0.3 s, unpickling them a few ms; the
    file is keyed by the patterns and the versions of ``regex`` and Python, and rebuilt (or not
    written, on a read-only home) when anything about it is off.
    """
    path = _cache_path(patterns, "compiled")
    try:
        with open(path, "rb") as f:
            compiled = _PatternsOnly(f).load()
        if isinstance(compiled, list) and [getattr(c, "pattern", None) for c in compiled] == patterns:
            return compiled
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, TypeError, ValueError, IndexError):
        pass
    compiled = [None if p is None else regex.compile(p, _FLAGS) for p in patterns]
    with contextlib.suppress(OSError), atomic_write(path, "wb") as f:
        pickle.dump(compiled, f, protocol=pickle.HIGHEST_PROTOCOL)
    return compiled


_BMP = [(0, 0xFFFF)]


def _item_first(op, av) -> tuple[list[tuple[int, int]], bool]:
    """First characters (ranges) of one parsed item of a pattern, and whether it can match nothing."""
    if op is _sre.LITERAL:
        return [(av, av)], False
    if op is _sre.NOT_LITERAL:
        return [(0, av - 1), (av + 1, 0xFFFF)], False
    if op is _sre.IN:
        ranges, negate = [], False
        for o, a in av:
            if o is _sre.NEGATE:
                negate = True
            elif o is _sre.LITERAL:
                ranges.append((a, a))
            elif o is _sre.RANGE:
                ranges.append(a)
            else:  # a category (\d, \w...): any character, to be safe
                return _BMP, False
        return (_complement(ranges) if negate else ranges), False
    if op is _sre.BRANCH:
        firsts = [_seq_first(alt) for alt in av[1]]
        return [r for f, _ in firsts for r in f], any(empty for _, empty in firsts)
    if op is _sre.SUBPATTERN and not av[1] & _sre.SRE_FLAG_IGNORECASE:
        return _seq_first(av[3])
    if op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT):
        first, empty = _seq_first(av[2])
        return first, empty or av[0] == 0
    if op is _sre.AT:
        return [], True
    return _BMP, True  # anything else: any character, and maybe nothing


def _complement(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out, lo = [], 0
    for a, b in sorted(ranges):
        if a > lo:
            out.append((lo, a - 1))
        lo = max(lo, b + 1)
    return out + ([(lo, 0xFFFF)] if lo <= 0xFFFF else [])


def _seq_first(seq) -> tuple[list[tuple[int, int]], bool]:
    out: list[tuple[int, int]] = []
    for op, av in seq:
        first, empty = _item_first(op, av)
        out += first
        if not empty:
            return out, False
    return out, True


def _build_first_char_index(patterns: list[str]) -> tuple[list[int], list[tuple[int, ...]]]:
    """Starts of the BMP's stretches where the same patterns can match a first character, and those
    patterns' indices per stretch (from the patterns' parse, a superset if ever in doubt)."""
    firsts = []
    for p in patterns:
        parsed = _sre_parse.parse(p)
        firsts.append(_BMP if parsed.state.flags & _sre.SRE_FLAG_IGNORECASE else _seq_first(parsed)[0])
    starts = sorted({0} | {a for f in firsts for a, _ in f} | {b + 1 for f in firsts for _, b in f if b < 0xFFFF})
    return starts, [tuple(k for k, f in enumerate(firsts) if any(a <= s <= b for a, b in f)) for s in starts]


class _PlainData(pickle.Unpickler):
    """Unpickles lists, tuples and numbers only."""

    def find_class(self, module: str, name: str):
        raise pickle.UnpicklingError(f"unexpected {module}.{name} in a lexer cache file")


def _first_char_index(patterns: list[str]) -> tuple[list[int], list[tuple[int, ...]]]:
    """``_build_first_char_index(patterns)``, from the on-disk cache when it has it (parsing takes ~0.2 s)."""
    path = _cache_path(patterns, "first-chars")
    try:
        with open(path, "rb") as f:
            starts, index = _PlainData(f).load()
        if len(starts) == len(index) and starts[0] == 0 and all(max(t, default=-1) < len(patterns) for t in index):
            return starts, index
    except (OSError, pickle.UnpicklingError, EOFError, TypeError, ValueError, IndexError):
        pass
    starts, index = _build_first_char_index(patterns)
    with contextlib.suppress(OSError), atomic_write(path, "wb") as f:
        pickle.dump((starts, index), f, protocol=pickle.HIGHEST_PROTOCOL)
    return starts, index


_ALL = _compile_all(_patterns())
_COMPILED = [_Compiled(r, *_ALL[3 * k : 3 * k + 3]) for k, r in enumerate(RULES)]


def _split(c: _Compiled, text: str, start: int, end: int) -> int:
    """End of the token part of a trailing-context match: the longest head whose tail matches."""
    for p in range(end, start - 1, -1):
        if c.main.fullmatch(text, start, p) and c.trail.fullmatch(text, p, end):
            return p
    return end


# An index of the fixed rules, not state of any evaluation; bounded so that text in ever new scripts
# cannot grow it without end (past the bound it starts again).
_BY_FIRST_CHAR: dict[str, tuple[list[_Compiled], bool]] = {}
_MAX_FIRST_CHARS = 8192
_STARTS, _INDEX = _first_char_index([c.whole.pattern for c in _COMPILED])
_RULE_LISTS = {ks: [_COMPILED[k] for k in ks] for ks in set(_INDEX)}
_RULES_BY_STRETCH = [_RULE_LISTS[ks] for ks in _INDEX]


def _candidates(ch: str) -> tuple[list[_Compiled], bool]:
    """The rules that can match text starting with ``ch`` (a UTF-16 unit), in rule order, and
    whether ``ch`` is a letter (cached per character)."""
    found = _BY_FIRST_CHAR.get(ch)
    if found is None:
        if len(_BY_FIRST_CHAR) >= _MAX_FIRST_CHARS:
            _BY_FIRST_CHAR.clear()
        o = ord(ch)
        if o > 0xFFFF:
            raise ValueError(f"the lexer reads UTF-16 units, not {ch!r}: pass its text through to_utf16() first")
        found = _BY_FIRST_CHAR[ch] = (_RULES_BY_STRETCH[bisect.bisect_right(_STARTS, o) - 1], _CHARS[o] & 4 != 0)
    return found


# From a letter, the rules below match nothing longer than the letters and digits there unless one of
# their characters comes before the next space or line end (no rule can read past a space or a line
# end from a letter before it has seen one of them): a rule that needs an apostrophe, "&apos;" or
# "&amp;", a period, a hyphen... The rest (the word rule among them) are always tried. Some need a
# period or a hyphen in a given place, noted as a feature of the text up to the space:
_LETTERS_DOT = "\x01"  # ASCII letters from the start, then a period: the abbreviations' form
_DOT_INSENTP = "\x02"  # a period before one of ",;:\u3001": the word/thing + period rules' trail
_DOT_ALPHA = "\x03"  # a period before an ASCII letter: file name extensions, URL domains
_HYPHEN_ALNUM = "\x04"  # a hyphen before a letter, digit or soft hyphen: the thing rules' further parts
_APOS_LETTER = "\x05"  # an apostrophe or open quote before a letter: "she's", "n't", "o'clock", "Cap'n"
_APOS_AFTER = "\x06"  # an apostrophe after one of "lLdDjJnN": "l'", "ol'", "Dunkin'", "somethin'"
_THING_PREFIX = "\x07"  # one of "dDoOlL", then an apostrophe or open quote: "d'Avignon", "O'Neil"
_APOS_CHARS = "'\u0092\u2019"  # "&apos;" too: a rule needing an apostrophe is tried wherever "&" is
_APOSETC_CHARS = _APOS_CHARS + "`\u0091\u2018\u201b"
_APOS_FORMS = _APOS_LETTER + "&"
_HYPHENS = "-_\u058a\u2010\u2011"
# Acronyms and abbreviations with a final period: letters then the period, "a.k.a"/"U.S" forms, "non-U.S".
_ACRO_FORMS = _LETTERS_DOT + _DOT_ALPHA + _HYPHEN_ALNUM
_NEEDS = {
    # The word + contraction rules, "y'" before a letter, "n't" (apostrophes before a letter); the
    # apostrophe words also end in one after "l", "d", "j", "n" ("ol'", "Dunkin'").
    "word_redaux": _APOS_FORMS, "sword_sredaux": _APOS_FORMS, "apoword": _APOS_FORMS + _APOS_AFTER,
    "apoword2": _APOS_FORMS, "sredaux": _APOS_FORMS,
    "fullurl": ":", "likelyurl": _DOT_ALPHA, "email": "@", "tbspec": "-" + _DOT_ALPHA + _APOS_FORMS, "thing3": "/",
    "dolsign": "$",
    "acronym_ctx": _ACRO_FORMS, "abbrev3": _LETTERS_DOT, "co_ltd": _LETTERS_DOT, "abbrev1_sentend": _LETTERS_DOT,
    "abbrev1_any2": _LETTERS_DOT, "abbrev1": _LETTERS_DOT, "abbrev2": _ACRO_FORMS, "filename": _DOT_ALPHA,
    "word_dot_insentp": _DOT_INSENTP, "hthing_dot": _DOT_INSENTP, "thing_dot": _DOT_INSENTP,
    "thinga_dot": _DOT_INSENTP, "hthing": _HYPHEN_ALNUM, "thing": _HYPHEN_ALNUM + _THING_PREFIX + "&",
    "thinga": "+&", "asiansmiley": "._", "prog_langs": "#+",
    # These two read the space after a single letter or an abbreviation like "Mr", and then keep the
    # same token as the word rule; their other forms hold a period or a hyphen before a letter.
    "abbrev4_space": _DOT_ALPHA + _HYPHEN_ALNUM, "acro_spacenl": _DOT_ALPHA + _HYPHEN_ALNUM,
}
_NEED_CHARS = frozenset("".join(_NEEDS.values()) + "." + _HYPHENS + _APOSETC_CHARS)
_BY_NEEDS: dict[tuple[str, frozenset], list[_Compiled]] = {}
_LETTERS_DOT_RE = re.compile("[A-Za-z]+\\.")
_DOT_INSENTP_RE = re.compile("\\.[,;:\u3001]")
_DOT_ALPHA_RE = re.compile("\\.[A-Za-z]")
_HYPHEN_RE = re.compile(f"[{_HYPHENS}]")
_APOSETC_RE = re.compile(f"[{_APOSETC_CHARS}]")


def _features(chunk: str, present: frozenset) -> frozenset:
    """``present`` (the needed characters in ``chunk``) with the features above that ``chunk`` has."""
    found = set(present)
    if "." in present:
        if _LETTERS_DOT_RE.match(chunk):
            found.add(_LETTERS_DOT)
        if _DOT_INSENTP_RE.search(chunk):
            found.add(_DOT_INSENTP)
        if _DOT_ALPHA_RE.search(chunk):
            found.add(_DOT_ALPHA)
    if not present.isdisjoint(_HYPHENS):
        for m in _HYPHEN_RE.finditer(chunk, 0, len(chunk) - 1):
            after = chunk[m.end()]
            if _CHARS[ord(after)] & 1 or after == "\u00ad":
                found.add(_HYPHEN_ALNUM)
                break
    if not present.isdisjoint(_APOSETC_CHARS):
        found |= _apostrophe_features(chunk)
    return frozenset(found)


def _apostrophe_features(chunk: str) -> set[str]:
    found = set()
    if chunk[0] in "dDoOlL" and chunk[1:2] and chunk[1] in _APOSETC_CHARS:
        found.add(_THING_PREFIX)
    for m in _APOSETC_RE.finditer(chunk):
        k = m.start()
        if k + 1 < len(chunk) and _CHARS[ord(chunk[k + 1])] & 4:
            found.add(_APOS_LETTER)
        if k and chunk[k] in _APOS_CHARS and chunk[k - 1] in "lLdDjJnN":
            found.add(_APOS_AFTER)
    return found


def _letter_candidates(text: str, pos: int, rules: list[_Compiled]) -> list[_Compiled]:
    """``rules`` (the candidates at a letter) less those whose characters are missing up to the next space."""
    end = text.find(" ", pos)
    chunk = text[pos:] if end < 0 else text[pos:end]
    present = _NEED_CHARS.intersection(chunk)
    if present:
        present = _features(chunk, present)
    key = (text[pos], present)
    found = _BY_NEEDS.get(key)
    if found is None:
        if len(_BY_NEEDS) >= _MAX_FIRST_CHARS:
            _BY_NEEDS.clear()
        found = _BY_NEEDS[key] = [
            c for c in rules if c.rule.name not in _NEEDS or not present.isdisjoint(_NEEDS[c.rule.name])
        ]
    return found


_UNTOKENIZABLE = _COMPILED[-1]  # one character, any: a candidate everywhere, and the last one
_WORD = next(c for c in _COMPILED if c.rule.name == "word")


def _char_table() -> bytes:
    """Per BMP character: 1 if a letter or digit, 2 if it can take a word on after a run of those
    (marks and other extra letters, ``&`` of an entity, ``.!?`` before a further part), 4 if a letter,
    8 if an extra letter or ``&`` (with the letters: what a further part of a word starts with)."""
    table = bytearray(0x10000)
    for ranges, bits in ((LETTER_RANGES, b"\x05"), (DIGIT_RANGES, b"\x01")):
        for item in ranges.split():
            lo, _, hi = item.partition("-")
            a, b = int(lo, 16), int(hi or lo, 16)
            table[a : b + 1] = bits * (b - a + 1)
    extra = WORD_EXTRA + "&"
    k = 0
    while k < len(extra):  # literal characters and ranges, no escapes
        step = 3 if extra[k + 1 : k + 2] == "-" else 1
        for o in range(ord(extra[k]), ord(extra[k + step - 1]) + 1):
            table[o] |= 10
        k += step
    for ch in ".!?":
        table[ord(ch)] |= 2
    return bytes(table)


_CHARS = _char_table()


def _word_length(text: str, pos: int, letter: bool) -> int:
    """Length of the word rule's match at ``pos`` (-1 for none), ``letter``: whether one starts there.

    From a letter, the match is the run of letters and digits there wherever the character after
    it cannot take the word on; a table lookup per character tests the rule's large classes many
    times faster than the regex.
    """
    if letter:
        end, n = pos + 1, len(text)
        while end < n and _CHARS[ord(text[end])] & 1:
            end += 1
        if end == n or not _CHARS[ord(text[end])] & 2:
            return end - pos
        if text[end] in ".!?" and (end + 1 == n or not _CHARS[ord(text[end + 1])] & 12):
            return end - pos  # a further part must start with a letter, an extra letter or an entity
    m = _WORD.whole.match(text, pos)
    return -1 if m is None else m.end() - pos


# The token at a position depends only on the text from there on (no rule looks behind), so the
# tokens of short remainders are kept: the punctuation after words ("busy--", "man``") and the
# contexts the tokenizer lexes words with repeat from word to word. Bounded like the rule index.
_BY_REST: dict[str, tuple[str | None, int]] = {}
_REST_CHARS = 32
_MAX_RESTS = 65536


def next_token(text: str, pos: int) -> tuple[str | None, int]:
    """The token at ``pos`` (None for skipped text) and the position after it."""
    if len(text) - pos > _REST_CHARS:
        return _next_token(text, pos)
    rest = text[pos:]
    found = _BY_REST.get(rest)
    if found is None:
        if len(_BY_REST) >= _MAX_RESTS:
            _BY_REST.clear()
        found = _BY_REST[rest] = _next_token(rest, 0)
    return found[0], pos + found[1]


def _next_token(text: str, pos: int) -> tuple[str | None, int]:
    best, best_len = None, -1
    rules, letter = _candidates(text[pos])
    if letter:
        rules = _letter_candidates(text, pos, rules)
    for c in rules:
        if c is _UNTOKENIZABLE:  # its match is one character: no call needed
            if best_len < 1:
                best, best_len = c, 1
            break
        if c is _WORD:
            n = _word_length(text, pos, letter)
        else:
            m = c.whole.match(text, pos)
            n = -1 if m is None else m.end() - pos
        if n > best_len:
            best, best_len = c, n
    end = pos + best_len
    if best.trail is not None:
        end = _split(best, text, pos, end)
    out, used = best.rule.action(text[pos:end])
    return out, pos + max(used, 1)


# Java's String.toLowerCase decides a final sigma within the word its BreakIterator finds.
_WLET = r"[\p{L}\p{Mc}--[\u3005\u4e00-\u9fa5\uf900-\ufa2d\u3099-\u309c\u30a1-\u30fe\u3041-\u309e\u30fc]]"
_WIGN = r"[\p{Mn}\p{Me}\p{Cf}--[\u00ad]]"
_WCF = r"[\p{Cf}--[\u00ad]]"
_WLETS = f"(?:{_WLET}{_WIGN}*)+"
_WDIGS = f"(?:\\p{{N}}{_WIGN}*)+"
_JAVA_WORD = regex.compile(
    f"(?:{_WLETS}(?:[\\p{{Pd}}\\p{{Pc}}\\u2027\"'.]{_WCF}*{_WLETS})*|{_WDIGS}(?:[\"',\\u066b.]{_WCF}*{_WDIGS})*)+",
    regex.V1,
)
_JAVA_CASED = [(0x2B0, 0x2B8), (0x2C0, 0x2C1), (0x2E0, 0x2E4), (0x345, 0x345), (0x37A, 0x37A), (0x1D2C, 0x1D61),
               (0x2160, 0x217F), (0x24B6, 0x24E9)]


def _java_cased(ch: str) -> bool:
    o = ord(ch)
    return unicodedata.category(ch) in ("Lu", "Ll", "Lt") or any(a <= o <= b for a, b in _JAVA_CASED)


def java_final_sigma(token: str) -> str:
    """``token`` lower-cased, capital sigmas by Java's final-sigma rule."""
    out = [ch.lower() for ch in token]
    for m in _JAVA_WORD.finditer(token):
        word = m.group()
        for k, ch in enumerate(word):
            if ch == "\u03a3" and any(map(_java_cased, word[:k])) and not any(map(_java_cased, word[k + 1:])):
                out[m.start() + k] = "\u03c2"
    return "".join(out)


def is_abbreviation(word_with_period: str) -> bool:
    """Whether a rule other than "word, then period" can take ``word_with_period``."""
    return _ALL[-1].fullmatch(word_with_period) is not None


_ASTRAL = regex.compile("[\U00010000-\U0010FFFF]")


def to_utf16(text: str) -> str:
    """Split characters outside the BMP into surrogate pairs: the Java lexer sees UTF-16 units."""
    def pair(m: regex.Match) -> str:
        cp = ord(m.group()) - 0x10000
        return chr(0xD800 + (cp >> 10)) + chr(0xDC00 + (cp & 0x3FF))

    return _ASTRAL.sub(pair, text)


def from_utf16(token: str) -> str:
    return token.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")  # pairs rejoin


def lex(text: str, start: int = 0, stop: int | None = None) -> list[list[str]]:
    """Tokens (original case) per line of ``text[start:stop]``.

    Text after ``stop`` is only seen as trailing context, as the lexer sees the following line.
    ``text`` must already be in UTF-16 units (see ``to_utf16``); tokens come back as normal text.
    """
    stop = len(text) if stop is None else stop
    lines: list[list[str]] = [[]]
    pos = start
    while pos < stop:
        tok, pos = next_token(text, pos)
        if tok == "\n":
            lines.append([])
        elif tok is not None:
            lines[-1].append(tok if tok.isascii() else from_utf16(tok))
    return lines
