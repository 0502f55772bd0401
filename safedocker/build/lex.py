"""buildkit's shell-word lexer (frontend/dockerfile/shell/lex.go, buildkit v0.32.2).

FROM's image and ``--platform`` are expanded with it, and the parser finds heredocs with
it, so an image name is only known once this agrees with buildkit character for
character: quotes, the escape token, ``$VAR``, ``${VAR}``, ``${VAR:-w}``, ``${VAR-w}``,
``${VAR:+w}``, ``${VAR+w}``, ``${VAR:?w}``, ``${VAR?w}``, ``${VAR#p}``, ``${VAR##p}``,
``${VAR%p}``, ``${VAR%%p}``, ``${VAR/p/r}``, ``${VAR//p/r}``. Older buildkits reject the
pattern forms (the build then fails), they never read them otherwise.

Unlike Go we bound nesting and the size of results: a value that explodes is refused.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING

from safedocker.errors import UsageError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

MAX_DEPTH = 64  # nested ${…}; Go has no limit, we refuse instead of overflowing the stack
MAX_RESULT = 64 * 1024  # an expanded word larger than this is refused

_SPECIAL_PARAMS = frozenset("@*#?-$!0")
_EOF = ""


class LexError(UsageError):
    """The word does not lex (buildkit fails the build with the same complaint)."""


def _is_letter(ch: str) -> bool:
    return ch.isalpha()  # Lu Ll Lt Lm Lo, as unicode.IsLetter


def _is_digit(ch: str) -> bool:
    return unicodedata.category(ch) == "Nd"  # unicode.IsDigit: decimal digits only


def go_space(ch: str) -> bool:
    """unicode.IsSpace: Go's set, which differs from str.isspace (\\x1c-\\x1f)."""
    if ch <= "\xff":
        return ch in "\t\n\v\f\r \x85\xa0"
    return ch in "\u2028\u2029" or unicodedata.category(ch) == "Zs"


@dataclass
class _Words:
    """wordsStruct: splits on whitespace except where a character was added raw."""

    buf: list[str]
    words: list[str]
    in_word: bool = False

    def add_char(self, ch: str) -> None:
        if go_space(ch) and self.in_word:
            if self.buf:
                self.words.append("".join(self.buf))
                self.buf.clear()
                self.in_word = False
        elif not go_space(ch):
            self.add_raw_char(ch)

    def add_raw_char(self, ch: str) -> None:
        self.buf.append(ch)
        self.in_word = True

    def add_string(self, text: str) -> None:
        for ch in text:
            self.add_char(ch)

    def add_raw_string(self, text: str) -> None:
        self.buf.append(text)
        self.in_word = True

    def get(self) -> list[str]:
        if self.buf:
            self.words.append("".join(self.buf))
            self.buf.clear()
            self.in_word = False
        return self.words


class Lexer:
    """One ``shell.Lex``: the escape token and the raw/skip switches of the Go type."""

    def __init__(
        self,
        escape: str = "\\",
        *,
        raw_quotes: bool = False,
        raw_escapes: bool = False,
        skip_unset_env: bool = False,
        heredoc_spaces: bool = True,
    ) -> None:
        self.escape = escape
        self.raw_quotes = raw_quotes
        self.raw_escapes = raw_escapes
        self.skip_unset_env = skip_unset_env
        # Dockerfile frontends before 1.16 had no '<' handler: "<< EOF" was two words.
        self.heredoc_spaces = heredoc_spaces

    def process_word(self, word: str, env: Mapping[str, str]) -> str:
        """ProcessWord: quotes removed, variables expanded, spaces kept."""
        return _Scan(self, word, env).process()[0]

    def process_words(self, word: str, env: Mapping[str, str]) -> list[str]:
        """ProcessWords: as process_word, then split into words (quotes keep spaces)."""
        return _Scan(self, word, env).process()[1]


class _Scan:
    def __init__(self, lexer: Lexer, text: str, env: Mapping[str, str]) -> None:
        self.lx = lexer
        self.text = text
        self.pos = 0
        self.env = env
        self.raw_escapes = lexer.raw_escapes
        self.depth = 0

    # text/scanner: Peek and Next over runes.
    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else _EOF

    def next(self) -> str:
        if self.pos >= len(self.text):
            return _EOF
        ch = self.text[self.pos]
        self.pos += 1
        return ch

    def process(self) -> tuple[str, list[str]]:
        try:
            return self.stop_on(_EOF, self.raw_escapes)
        except LexError as e:
            raise LexError(f"failed to process {self.text!r}: {e.what}") from None

    def stop_on(self, stop: str, raw_escapes: bool) -> tuple[str, list[str]]:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise LexError("variable substitutions nested too deeply")
        saved = self.raw_escapes
        self.raw_escapes = raw_escapes
        try:
            return self._stop_on(stop)
        finally:
            self.raw_escapes = saved
            self.depth -= 1

    def _stop_on(self, stop: str) -> tuple[str, list[str]]:
        result: list[str] = []
        words = _Words([], [])
        size = 0
        while self.peek() != _EOF:
            ch = self.peek()
            if stop != _EOF and ch == stop:
                self.next()
                return "".join(result), words.get()
            special = self._special(ch)
            if special is not None:
                tmp = special()
                result.append(tmp)
                if ch == "$":
                    words.add_string(tmp)
                else:
                    words.add_raw_string(tmp)
                size += len(tmp)
            else:
                ch = self.next()
                if ch == self.lx.escape:
                    if self.raw_escapes:
                        words.add_raw_char(ch)
                        result.append(ch)
                    ch = self.next()
                    if ch == _EOF:
                        break
                    words.add_raw_char(ch)
                else:
                    words.add_char(ch)
                result.append(ch)
                size += 1
            if size > MAX_RESULT:
                raise LexError("a substitution expands beyond 64 KiB")
        if stop != _EOF:
            raise LexError(f"unexpected end of statement while looking for matching {stop}")
        return "".join(result), words.get()

    def _special(self, ch: str) -> Callable[[], str] | None:
        if ch == "$":
            return self.dollar
        if ch == "<" and self.lx.heredoc_spaces:
            return self.possible_heredoc
        if ch == "'":
            return self.single_quote
        if ch == '"':
            return self.double_quote
        return None

    def single_quote(self) -> str:
        out: list[str] = []
        ch = self.next()
        if self.lx.raw_quotes:
            out.append(ch)
        while True:
            ch = self.next()
            if ch == _EOF:
                raise LexError(
                    "unexpected end of statement while looking for matching single-quote"
                )
            if ch == "'":
                if self.lx.raw_quotes:
                    out.append(ch)
                return "".join(out)
            out.append(ch)

    def double_quote(self) -> str:
        out: list[str] = []
        ch = self.next()
        if self.lx.raw_quotes:
            out.append(ch)
        while True:
            peek = self.peek()
            if peek == _EOF:
                raise LexError(
                    "unexpected end of statement while looking for matching double-quote"
                )
            if peek == '"':
                ch = self.next()
                if self.lx.raw_quotes:
                    out.append(ch)
                return "".join(out)
            if peek == "$":
                out.append(self.dollar())
                continue
            ch = self.next()
            if ch == self.lx.escape:
                if self.raw_escapes:
                    out.append(ch)
                following = self.peek()
                if following == _EOF:
                    continue  # a trailing escape is dropped; the quote is then unterminated
                if following in ('"', "$", self.lx.escape):
                    ch = self.next()
            out.append(ch)

    def possible_heredoc(self) -> str:
        self.next()
        if self.peek() != "<":
            return "<"
        self.next()
        space: list[str] = []
        while self.peek() in ("\t", "\r", " "):
            space.append(self.next())
        return "<<" + "".join(space)

    def name(self) -> str:
        out: list[str] = []
        while self.peek() != _EOF:
            ch = self.peek()
            if not out and _is_digit(ch):
                while self.peek() != _EOF and _is_digit(self.peek()):
                    out.append(self.next())
                return "".join(out)
            if not out and ch in _SPECIAL_PARAMS:
                return self.next()
            if not _is_letter(ch) and not _is_digit(ch) and ch != "_":
                break
            out.append(self.next())
        return "".join(out)

    def get_env(self, name: str) -> tuple[str, bool]:
        if name in self.env:
            return self.env[name], True
        return "", False

    def dollar(self) -> str:
        self.next()
        if self.peek() != "{":
            name = self.name()
            if not name:
                return "$"
            value, found = self.get_env(name)
            if not found and self.lx.skip_unset_env:
                return "$" + name
            return value
        self.next()
        if self.peek() == _EOF:
            raise LexError("syntax error: missing '}'")
        if self.peek() in "{}:":
            raise LexError("syntax error: bad substitution")
        name = self.name()
        ch = self.next()
        chs = ch if ch != _EOF else "\ufffd"
        if ch == "}":
            value, found = self.get_env(name)
            if not found and self.lx.skip_unset_env:
                return "${" + name + "}"
            return value
        if ch == "/":
            return self._replace(name)
        null_is_unset = False
        if ch == ":":
            null_is_unset = True
            ch = self.next()
            chs += ch if ch != _EOF else "\ufffd"
        elif ch not in ("+", "-", "?", "#", "%"):
            raise LexError(f"unsupported modifier ({chs}) in substitution")
        # Go falls through here for ":" whatever follows it.
        raw = ch in ("#", "%")
        if null_is_unset and raw:
            raise LexError(f"unsupported modifier ({chs}) in substitution")
        word = self._until_brace(raw)
        value, found = self.get_env(name)
        if self.lx.skip_unset_env and not found:
            return "${" + name + chs + word + "}"
        empty = not found or (null_is_unset and value == "")
        if ch == "-":
            return word if empty else value
        if ch == "+":
            return "" if empty else word
        if ch == "?":
            if not found:
                raise LexError(f"{name}: {word or 'is not allowed to be unset'}")
            if null_is_unset and value == "":
                raise LexError(f"{name}: {word or 'is not allowed to be empty'}")
            return value
        if ch in ("%", "#"):
            greedy = bool(word) and word[0] == ch
            if greedy:
                word = word[1:]
            if ch == "%":
                return _trim_suffix(word, value, greedy)
            return _trim_prefix(word, value, greedy)
        raise LexError(f"unsupported modifier ({chs}) in substitution")

    def _until_brace(self, raw: bool) -> str:
        try:
            return self.stop_on("}", raw)[0]
        except LexError:
            if self.peek() == _EOF:
                raise LexError("syntax error: missing '}'") from None
            raise

    def _replace(self, name: str) -> str:
        replace_all = self.peek() == "/"
        if replace_all:
            self.next()
        try:
            pattern = self.stop_on("/", True)[0]
        except LexError:
            if self.peek() == _EOF:
                raise LexError("syntax error: missing '/' in ${}") from None
            raise
        replacement = self._until_brace(True)
        value, found = self.get_env(name)
        if self.lx.skip_unset_env and not found:
            return "${" + name + "/" + pattern + "/" + replacement + "}"
        regex = _shell_pattern(pattern, greedy=True, anchored=False)
        if replace_all:
            return _replace_all(regex, value, replacement)
        match = regex.search(value)
        if match is None:
            return value
        return value[: match.start()] + replacement + value[match.end() :]


def _shell_pattern(pattern: str, *, greedy: bool, anchored: bool) -> re.Pattern[str]:
    """convertShellPatternToRegex: ``?`` one char, ``*`` shortest (or longest) run."""
    out = ["^"] if anchored else []
    star = ".*" if greedy else ".*?"
    i = 0
    while i < len(pattern):
        tok = pattern[i]
        i += 1
        if tok == "*":
            out.append(star)
            continue
        if tok == "?":
            out.append(".")
            continue
        if tok == "\\":
            following = pattern[i] if i < len(pattern) else _EOF
            if following in ("}", "/") and following != _EOF:
                continue  # the escape belonged to the ${} syntax, not the pattern
            out.append("\\")
            tok = following
            i += 1
            if tok not in ("*", "?", "\\"):
                shown = tok if tok != _EOF else "\ufffd"
                raise LexError(
                    f"invalid pattern ({pattern}) in substitution: invalid escape '\\{shown}'"
                )
        elif tok in "[]{}.+()|^$":
            out.append("\\")
        out.append(tok)
    return re.compile("".join(out))


def _trim_prefix(pattern: str, value: str, greedy: bool) -> str:
    match = _shell_pattern(pattern, greedy=greedy, anchored=True).search(value)
    return value[match.end() :] if match is not None else value


def _reverse_pattern(pattern: str) -> str:
    """reversePattern: reverse, but keep each ``\\x`` escape in front of its character."""
    out = [""] * len(pattern)
    last = len(pattern) - 1
    i = 0
    while i <= last:
        tok = pattern[i]
        at = last - i
        if tok == "\\" and i != last:
            out[at - 1] = tok
            out[at] = pattern[i + 1]
            i += 2
        else:
            out[at] = tok
            i += 1
    return "".join(out)


def _trim_suffix(pattern: str, value: str, greedy: bool) -> str:
    return _trim_prefix(_reverse_pattern(pattern), value[::-1], greedy)[::-1]


def _replace_all(regex: re.Pattern[str], src: str, template: str) -> str:
    """Go's ReplaceAllString: an empty match right after a match is not replaced (Python's
    re.sub replaces it), and the template is expanded the Go way."""
    out: list[str] = []
    search = 0
    last_end = 0
    while search <= len(src):
        match = regex.search(src, search)
        if match is None:
            break
        start, end = match.span()
        out.append(src[last_end:start])
        if end > last_end or start == 0:
            out.append(_go_expand(template, match))
        last_end = end
        search = search + 1 if search + 1 > end else end
    out.append(src[last_end:])
    return "".join(out)


def _go_expand(template: str, match: re.Match[str]) -> str:
    """Go's Regexp.Expand for ReplaceAllString: ``$$`` is ``$``, ``$0`` the match, any other
    ``$name`` is empty (the pattern has no groups), a malformed ``$`` stays as it is."""
    out: list[str] = []
    rest = template
    while True:
        before, sep, after = rest.partition("$")
        out.append(before)
        if not sep:
            return "".join(out)
        rest = after
        if rest.startswith("$"):
            out.append("$")
            rest = rest[1:]
            continue
        parsed = _extract(rest)
        if parsed is None:
            out.append("$")
            continue
        name, rest = parsed
        if name == "0":
            out.append(match.group(0))


def _extract(text: str) -> tuple[str, str] | None:
    brace = text.startswith("{")
    body = text[1:] if brace else text
    i = 0
    while i < len(body) and (_is_letter(body[i]) or _is_digit(body[i]) or body[i] == "_"):
        i += 1
    if i == 0:
        return None
    name = body[:i]
    if brace:
        if i >= len(body) or body[i] != "}":
            return None
        i += 1
    return name, body[i:]
