"""Identity regexps read as Go's regexp (RE2) reads them (attack N13).

Each row states what Go's ``regexp.MatchString(pattern, text)`` returns (from the Go
regexp/syntax documentation and source) where Python's ``re.search`` differs or could.
"""

from __future__ import annotations

import re
import time
import warnings

import pytest

from safedocker._internal.goregexp import GoRegexpError, full_match, search, translate

SUBJECT = "https://github.com/org/repo/.github/workflows/release.yml@refs/heads/main"
ANCHORED = r"^https://github\.com/org/repo/\.github/workflows/release\.yml@refs/heads/main$"

# (pattern, text, Go's answer, why the row is here)
GO_TABLE = [
    (ANCHORED, SUBJECT, True, "an anchored workflow identity"),
    (ANCHORED, SUBJECT + "\n", False, "$ is the end of the text, not before a final newline"),
    (r"^ci-\d+@example\.com$", "ci-12@example.com", True, "ASCII digits"),
    (r"^ci-\d+@example\.com$", "ci-\u0661\u0662@example.com", False, r"\d is ASCII only"),
    (r"^\w+@example\.com$", "caf\u00e9@example.com", False, r"\w is ASCII only"),
    (r"^a\sb$", "a\u00a0b", False, r"\s is ASCII only"),
    (r"^a\sb$", "a\vb", False, r"\s is [\t\n\f\r ]: no vertical tab"),
    (r"^a[[:space:]]b$", "a\vb", True, "[[:space:]] has the vertical tab"),
    (r"\bmain$", "refs/heads/main", True, "ASCII word boundary"),
    (r"\bmain", "\u00e9main", True, r"\b is ASCII: é is not a word character"),
    (r"^a.b$", "a\nb", False, ". does not match a newline"),
    (r"(?s)^a.b$", "a\nb", True, "(?s) lets . match a newline"),
    (r"(?m)^main$", "x\nmain\ny", True, "(?m): line anchors"),
    (r"^main$", "x\nmain\ny", False, "without (?m) the anchors are the text's ends"),
    (r"x{,3}", "x{,3}", True, "{,3} is literal text in Go"),
    (r"x{,3}", "xx", False, "{,3} is not a repeat in Go"),
    (r"^x{2}$", "xx", True, "a repeat count"),
    (r"a{", "a{", True, "a lone { is literal"),
    (r"\x{41}\x42", "AB", True, r"\x{…} and \xHH"),
    (r"\101", "A", True, "octal escape"),
    (r"\Qa.b\E", "a.b", True, r"\Q…\E quotes"),
    (r"\Qa.b\E", "axb", False, r"\Q…\E quotes the dot"),
    (r"(?i)GitHub", "github", True, "case folding"),
    (r"(?i:G)itHub", "gITHUB", False, "scoped flags end with their group"),
    (r"a(?i)b|c", "C", True, "(?i) holds across | to the end of the group"),
    (r"(?U)a+", "aaa", True, "(?U) is accepted"),
    (r"[[:alpha:]]+$", "abc", True, "POSIX class"),
    (r"^[^[:digit:]]$", "\u0661", True, "a negated POSIX class is ASCII's complement"),
    (r"^[\D]$", "\u0661", True, r"\D in a class is the complement of [0-9]"),
    (r"[]a]", "]", True, "] first in a class is literal"),
    (r"^(a|b)*$", "abba", True, "groups and repeats"),
    (r"^\z", "", True, r"\z is the end of the text"),
    (r"^(?P<org>[a-z]+)/(?<repo>[a-z]+)$", "org/repo", True, "named groups, both spellings"),
    (r"\.", "a", False, "escaped punctuation"),
    # A2-6: Go folds i only with I (U+0130 and U+0131 are orbits of their own)
    (r"(?i)^admin$", "ADMIN", True, "(?i) folds ASCII letters"),
    (r"(?i)^admin$", "adm\u0131n", False, "(?i) i never matches dotless \u0131"),
    (r"(?i)^admin$", "adm\u0130n", False, "(?i) i never matches dotted capital \u0130"),
    (r"(?i)^ADMIN$", "adm\u0131n", False, "(?i) I never matches dotless \u0131"),
    (r"(?i)^[a-z]+$", "\u0131", False, "(?i) [a-z] never matches \u0131"),
    (r"(?i)^[^a-z]$", "\u0131", True, "(?i) [^a-z] matches \u0131"),
    (r"(?i)^[^a-z]$", "I", False, "(?i) [^a-z] is the complement of the folded class"),
    (r"(?i)^\x{130}$", "i", False, "(?i) \u0130 never matches i"),
    (r"(?i)^k$", "\u212a", True, "(?i) k matches the Kelvin sign, as in Go"),
    (r"(?i)^s$", "\u017f", True, "(?i) s matches long s, as in Go"),
    ("^a{\u0663}$", "aaa", False, "a repeat count is ASCII digits"),
    ("^a{\u0663}$", "a{\u0663}", True, "{\u0663} is literal text"),
]

REFUSED = [
    (r"^(?!evil).*@example\.com$", "look-ahead"),
    (r"(?=a)", "look-ahead"),
    (r"(?<=a)b", "look-behind"),
    (r"(?<!a)b", "look-behind"),
    (r"(a)\1", "back-reference"),
    (r"(?P<x>a)(?P=x)", "back-reference"),
    (r"a*+", "possessive"),
    (r"a++", "possessive"),
    (r"a{2}+", "possessive"),
    (r"(?>a+)", "atomic"),
    (r"(a)?(?(1)b|c)", "conditional"),
    (r"(?#comment)", "comment"),
    (r"a\Z", r"\Z"),
    (r"\G", r"\G"),
    (r"\pL", "Unicode classes"),
    (r"[\p{Greek}]", "Unicode classes"),
    (r"a{1001}", "repeat count"),
    (r"a{3,2}", "repeat count"),
    (r"*a", "missing argument"),
    (r"(", "missing closing )"),
    (r"a)", "unexpected )"),
    (r"[a", "missing closing ]"),
    (r"[b-a]", "class range"),
    (r"[[:nope:]]", "class range"),
    ("a\\", "trailing backslash"),
    (r"\y", "invalid escape"),
    (r"(?x)a", "Perl syntax"),
    (r"(?i-)a", "flags"),
    ("(" * 101 + ")" * 101, "nested"),
]


@pytest.mark.parametrize(("pattern", "text", "go", "why"), GO_TABLE,
                         ids=[row[3] for row in GO_TABLE])
def test_identity_regexp_matches_as_go_regexp_does(pattern: str, text: str, go: bool,
                                                   why: str) -> None:
    assert search(pattern, text) is go, why


def test_the_table_covers_the_places_where_python_re_reads_differently() -> None:
    differs = [row for row in GO_TABLE
               if _python_compiles(row[0]) and bool(re.search(row[0], row[1])) is not row[2]]
    # $ before "\n", Unicode \d \w \s, \v in \s, Unicode \b, x{,3} as a repeat, ...
    assert len(differs) >= 7


def _python_compiles(pattern: str) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        try:
            re.compile(pattern)
        except re.error:
            return False
    return True


@pytest.mark.parametrize(("pattern", "why"), REFUSED, ids=[row[0][:20] for row in REFUSED])
def test_constructs_re2_lacks_are_refused(pattern: str, why: str) -> None:
    with pytest.raises(GoRegexpError) as refused:
        translate(pattern)
    assert why.lower() in str(refused.value).lower()


def test_full_match_is_anchored_and_cannot_be_escaped_by_a_parenthesis() -> None:
    assert full_match(r"[a-z0-9-]+-docker\.pkg\.dev/x", "us-west2-docker.pkg.dev/x")
    assert not full_match(r"[a-z0-9-]+-docker\.pkg\.dev/x", "evil/us-docker.pkg.dev/x")
    with pytest.raises(GoRegexpError):
        full_match(r"a)|(.*", "anything")


# --- A2-6: linear time, whatever the subject (the certificate's owner chooses it) ----------

# Each takes exponential or high-polynomial time in a backtracking engine (Python's re:
# `^(?:a|aa)*b` on 40 a's, `^.*.*.*.*x` on 2000 characters: minutes to days).
CATASTROPHIC = [
    (r"^(a|aa)*b$", "a" * 2000),
    (r"^(a+)+b$", "a" * 2000),
    (r"^(a|a)*b$", "a" * 2000),
    (r"^.*.*.*.*.*x", "a" * 2000),
    (r"^https://github\.com/.*/.*/\.github/workflows/.*@.*$", "https://github.com/" + "/" * 2000),
    (r"^(\w+\s?)*$", "a " * 1000 + "!"),
]


@pytest.mark.parametrize(("pattern", "text"), CATASTROPHIC, ids=[p for p, _ in CATASTROPHIC])
def test_patterns_that_make_a_backtracking_engine_explode_answer_in_bounded_time(
        pattern: str, text: str) -> None:
    started = time.monotonic()
    assert search(pattern, text) is False
    assert time.monotonic() - started < 5.0


def test_repeats_and_alternations_still_match_what_go_matches() -> None:
    assert search(r"^(a|aa)*b$", "a" * 50 + "b")
    assert search(r"^(a+)+b$", "aaab")
    assert search(r"^x(ab|cd){2,3}y$", "xabcdaby") and not search(r"^x(ab|cd){2,3}y$", "xaby")
    assert search(r"^(a*)*$", "") and search(r"^(|a)+$", "aaa")  # empty loops end
    assert search(r"^a{2}?$", "aa") and search(r"(?U)^a+?$", "aaa")


def test_a_subject_longer_than_the_cap_never_matches() -> None:
    from safedocker._internal.goregexp import MAX_SUBJECT

    assert search(r"^a+$", "a" * MAX_SUBJECT)
    assert not search(r"^a+$", "a" * (MAX_SUBJECT + 1))
    assert not search(r"", "a" * (MAX_SUBJECT + 1))


def test_a_pattern_whose_repeats_expand_too_far_is_refused() -> None:
    with pytest.raises(GoRegexpError, match="too large"):
        translate(r"((a{1000}){1000}){10}")
    translate(r"^[a-z0-9-]{1,63}\.example\.com$")  # an ordinary bounded repeat is fine
