"""The PTB lexer's compiled rules come from an on-disk cache after the first compilation."""

from __future__ import annotations

import pickle

import pytest
import regex

from captune.metrics import _ptb_lexer as lexer

PATTERNS = ["[a-z]+", None, r"\d+\.\d+"]


def cache_files(home):
    return sorted((home / "cache" / "ptb-lexer").glob("*.pickle"))


def no_compiling(*args, **kwargs):
    raise AssertionError("compiled although the cache holds the patterns")


def test_second_load_comes_from_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CAPTUNE_HOME", str(tmp_path))
    first = lexer._compile_all(PATTERNS)
    assert len(cache_files(tmp_path)) == 1
    monkeypatch.setattr(regex, "compile", no_compiling)
    again = lexer._compile_all(PATTERNS)
    assert [p and p.pattern for p in again] == PATTERNS
    assert again[0].fullmatch("abc") and not again[2].fullmatch("1.") and first[2].fullmatch("1.5")


def test_other_patterns_get_their_own_file(tmp_path, monkeypatch):
    monkeypatch.setenv("CAPTUNE_HOME", str(tmp_path))
    lexer._compile_all(PATTERNS)
    lexer._compile_all(PATTERNS + ["x"])
    assert len(cache_files(tmp_path)) == 2


@pytest.mark.parametrize("content", [b"", b"not a pickle", pickle.dumps(["[a-z]+"])])
def test_a_broken_cache_file_is_rebuilt(tmp_path, monkeypatch, content):
    monkeypatch.setenv("CAPTUNE_HOME", str(tmp_path))
    lexer._compile_all(PATTERNS)
    (path,) = cache_files(tmp_path)
    path.write_bytes(content)
    assert [p and p.pattern for p in lexer._compile_all(PATTERNS)] == PATTERNS
    monkeypatch.setattr(regex, "compile", no_compiling)
    lexer._compile_all(PATTERNS)  # rewritten: read back without compiling


class _Runs:
    """Pickles as a call of ``os.system``: what a planted cache file could try."""

    def __reduce__(self):
        import os

        return os.system, ("echo planted",)


def test_a_cache_file_cannot_run_code(tmp_path, monkeypatch):
    monkeypatch.setenv("CAPTUNE_HOME", str(tmp_path))
    lexer._compile_all(PATTERNS)
    (path,) = cache_files(tmp_path)
    path.write_bytes(pickle.dumps([_Runs()]))
    called = []
    monkeypatch.setattr("os.system", lambda *a: called.append(a))
    assert [p and p.pattern for p in lexer._compile_all(PATTERNS)] == PATTERNS
    assert called == []


def test_a_read_only_home_still_compiles(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.write_text("a file where the cache folder would be")
    monkeypatch.setenv("CAPTUNE_HOME", str(home))
    assert [p and p.pattern for p in lexer._compile_all(PATTERNS)] == PATTERNS
