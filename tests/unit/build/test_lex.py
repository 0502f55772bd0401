"""buildkit's shell-word lexer: FROM's image is only known once substitution agrees with it."""

from __future__ import annotations

import pytest

from safedocker.build.lex import MAX_DEPTH, Lexer, LexError

ENV = {"A": "alpine", "EMPTY": "", "FOO": "xxyy", "TAG": "3.19", "URL": "http://x.io"}

# (word, expected) with ENV; values follow buildkit v0.32.2 frontend/dockerfile/shell.
WORDS = [
    ("alpine", "alpine"),
    ("$A", "alpine"),
    ("${A}:${TAG}", "alpine:3.19"),
    ("${UNSET}x", "x"),  # unset is empty, as in buildkit
    ("${UNSET:-busybox}", "busybox"),
    ("${EMPTY:-busybox}", "busybox"),
    ("${EMPTY-busybox}", ""),  # "-" without ":" keeps an empty value
    ("${A:+evil}", "evil"),
    ("${EMPTY:+evil}", ""),
    ("${EMPTY+evil}", "evil"),
    ("${A?x}", "alpine"),
    ('"al"pi\'ne\'', "alpine"),  # quotes are removed
    ("al\\pine", "alpine"),  # an escape keeps the next character
    ('"\\$A"', "$A"),
    ("'$A'", "$A"),  # no expansion in single quotes
    ("$", "$"),
    ("$.x", "$.x"),
    ("he$1x", "hex"),
    ("${FOO#x}", "xyy"),
    ("${FOO##*x}", "yy"),
    ("${FOO%y}", "xxy"),
    ("${FOO%%y*}", "xx"),
    ("${FOO/x/z}", "zxyy"),
    ("${FOO//x/z}", "zzyy"),
    ("${URL/http:\\/\\//}", "x.io"),
    ("${FOO//x*/$$}", ""),  # "$$" is the unset variable "$"
    ("${FOO//x/'[$0]'}", "[x][x]yy"),  # Go's template expansion: $0 is the match
    ("${FOO//*/-}", "-"),  # an empty match right after a match is not replaced (Go)
    ("${UNSET:-${A:-x}}", "alpine"),
]
ERRORS = ["he'llo", '"hello', "${A", "${:x}", "${}", "${A:#x}", "${UNSET?gone}",
          "${EMPTY:?empty}", "${A=x}", "${FOO//ww}", "${FOO#\\x}"]


@pytest.mark.parametrize(("word", "expected"), WORDS)
def test_word_expands_like_buildkit(word: str, expected: str) -> None:
    assert Lexer().process_word(word, ENV) == expected


@pytest.mark.parametrize("word", ERRORS)
def test_word_that_buildkit_rejects_is_rejected(word: str) -> None:
    with pytest.raises(LexError):
        Lexer().process_word(word, ENV)


def test_backtick_escape_token_replaces_backslash() -> None:
    assert Lexer("`").process_word("al`pine\\x", {}) == "alpine\\x"


def test_words_split_outside_quotes_and_keep_expanded_spaces() -> None:
    env = {"S": "a  b"}
    assert Lexer().process_words('x${S}y "q  r" z', env) == ["xa", "by", "q  r", "z"]


def test_nesting_beyond_the_bound_is_refused_not_a_crash() -> None:
    word = "${A:-" * (MAX_DEPTH + 1) + "x" + "}" * (MAX_DEPTH + 1)
    with pytest.raises(LexError, match="nested"):
        Lexer().process_word(word, {})


def test_expansion_that_explodes_is_refused() -> None:
    env = {"X": "x" * 40_000}
    with pytest.raises(LexError, match="64 KiB"):
        Lexer().process_word("$X$X", env)
