"""Regular expressions as Go's ``regexp`` (RE2 syntax) reads them, run in linear time.

cosign, policy-controller and containers/image match identity regexps with Go's
``regexp.MatchString``: an unanchored search in RE2 syntax. Python's ``re`` reads the
same text differently in places a policy author relies on, and backtracks (a subject the
certificate's owner chose could take exponential time), so a pattern is never handed to
``re``. It is parsed here with Go's grammar into a program that, like RE2, advances every
state in lock step over the text (:class:`GoRegexp`); only single characters are tested
with ``re``, as classes written out with Go's meaning:

* ``$`` is the end of the text (Python's ``$`` also matches before a final newline);
  ``(?m)`` makes ``^``/``$`` line anchors as in Go;
* ``\\d \\w \\s \\b`` and the ``[[:name:]]`` classes are ASCII, as in Go (``\\s`` is
  ``[\\t\\n\\f\\r ]``: no ``\\v``);
* ``.`` does not match ``\\n`` unless ``(?s)``; ``(?U)`` and lazy quantifiers are read
  (whether a text matches does not depend on them);
* ``(?i)`` folds as Go's simple folding does: ``i`` is ``I`` and never U+0130/U+0131;
* ``x{,3}`` and any ``{`` that does not start a valid repeat are literal text;
  ``\\Q…\\E``, ``\\x{…}`` and octal escapes are Go's.

Constructs RE2 lacks are refused (:class:`GoRegexpError`): look-arounds, back-references,
possessive quantifiers and atomic groups, conditionals, comments, ``\\Z``, ``\\G``, and any
escape Go does not define. Go's Unicode classes (``\\pL``, ``\\p{Greek}``) have no ``re``
equivalent and are refused too, as are repeat counts over 1000 (Go's limit) and patterns
whose expanded repeats exceed :data:`MAX_PROGRAM` steps. Texts longer than
:data:`MAX_SUBJECT` characters never match (no identity is that long).
"""

from __future__ import annotations

import enum
import functools
import re
from dataclasses import dataclass, field, replace

MAX_PATTERN = 8192  # characters; an identity regexp is a line, not a program
MAX_DEPTH = 100  # nested groups
MAX_REPEAT = 1000  # Go's regexp/syntax limit
MAX_PROGRAM = 5000  # steps once repeats are expanded: bounds the work per character
MAX_SUBJECT = 2048  # characters of a text to match; a longer one never matches

_MAX_RUNE = 0x10FFFF
Ranges = list[tuple[int, int]]

_DIGIT: Ranges = [(0x30, 0x39)]
_SPACE: Ranges = [(0x09, 0x0A), (0x0C, 0x0D), (0x20, 0x20)]  # \t \n \f \r space
_WORD: Ranges = [(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)]
_PERL = {"d": _DIGIT, "s": _SPACE, "w": _WORD}
_POSIX: dict[str, Ranges] = {
    "alnum": [(0x30, 0x39), (0x41, 0x5A), (0x61, 0x7A)],
    "alpha": [(0x41, 0x5A), (0x61, 0x7A)],
    "ascii": [(0x00, 0x7F)],
    "blank": [(0x09, 0x09), (0x20, 0x20)],
    "cntrl": [(0x00, 0x1F), (0x7F, 0x7F)],
    "digit": [(0x30, 0x39)],
    "graph": [(0x21, 0x7E)],
    "lower": [(0x61, 0x7A)],
    "print": [(0x20, 0x7E)],
    "punct": [(0x21, 0x2F), (0x3A, 0x40), (0x5B, 0x60), (0x7B, 0x7E)],
    "space": [(0x09, 0x0D), (0x20, 0x20)],
    "upper": [(0x41, 0x5A)],
    "word": _WORD,
    "xdigit": [(0x30, 0x39), (0x41, 0x46), (0x61, 0x66)],
}
_SIMPLE_ESCAPES = {"a": 0x07, "f": 0x0C, "t": 0x09, "n": 0x0A, "r": 0x0D, "v": 0x0B}
_WORD_CHARS = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz")
_REPEAT_RE = re.compile(r"\{([0-9]+)(,([0-9]*))?\}")  # ASCII digits, as Go
_GROUP_NAME_RE = re.compile(r"[A-Za-z0-9_]+")

# What Perl/PCRE/Python accept after "(?" and RE2 does not, in words.
_UNSUPPORTED_GROUPS = (
    ("?=", "look-ahead"), ("?!", "negative look-ahead"), ("?<=", "look-behind"),
    ("?<!", "negative look-behind"), ("?>", "atomic group"), ("?(", "conditional"),
    ("?#", "comment"), ("?P=", "back-reference"), ("?P>", "recursion"), ("?R", "recursion"),
    ("?|", "branch reset"),
)


class GoRegexpError(ValueError):
    """The pattern is not valid in Go's RE2 syntax (or uses what we cannot run)."""

    def __init__(self, why: str, position: int) -> None:
        super().__init__(f"{why} at position {position}")
        self.why = why
        self.position = position


@dataclass(frozen=True)
class _Flags:
    fold: bool = False  # i
    multiline: bool = False  # m
    dot_nl: bool = False  # s
    ungreedy: bool = False  # U


class _Assert(enum.Enum):
    """A zero-width condition: Go's ``^ $ \\A \\z \\b \\B`` (``(?m)``: line anchors)."""

    BEGIN_TEXT = enum.auto()
    END_TEXT = enum.auto()
    BEGIN_LINE = enum.auto()
    END_LINE = enum.auto()
    BOUNDARY = enum.auto()  # ASCII word boundary
    NOT_BOUNDARY = enum.auto()


@dataclass(frozen=True)
class _Char:
    """One character: ``pattern`` is a Python ``re`` pattern matching exactly one."""

    pattern: str


@dataclass(frozen=True)
class _Concat:
    items: tuple[_Node, ...]


@dataclass(frozen=True)
class _Alternation:
    branches: tuple[_Node, ...]


@dataclass(frozen=True)
class _Repeat:
    item: _Node
    low: int
    high: int | None  # None: no upper bound


_Node = _Char | _Assert | _Concat | _Alternation | _Repeat


def _char(code: int) -> str:
    """One code point, escaped for a Python pattern (inside or outside a class)."""
    return f"\\U{code:08x}"


def _complement(ranges: Ranges) -> Ranges:
    out: Ranges = []
    low = 0
    for lo, hi in sorted(ranges):
        if lo > low:
            out.append((low, lo - 1))
        low = max(low, hi + 1)
    if low <= _MAX_RUNE:
        out.append((low, _MAX_RUNE))
    return out


# Python's case-insensitive matching relates i/I to U+0130 and U+0131 (Turkish dotted and
# dotless i); Go's simple folding does not (each of those is its own orbit). These four are
# folded here by hand, Go's way; every other code point is left to ``(?i:…)``.
_GO_FOLD_I = {0x49: (0x49, 0x69), 0x69: (0x49, 0x69), 0x130: (0x130,), 0x131: (0x131,)}


def _without(ranges: Ranges, points: set[int]) -> Ranges:
    out: Ranges = []
    for lo, hi in ranges:
        start = lo
        for point in sorted(p for p in points if lo <= p <= hi):
            if point > start:
                out.append((start, point - 1))
            start = point + 1
        if start <= hi:
            out.append((start, hi))
    return out


def _folded_class_text(ranges: Ranges, negated: bool) -> str:
    """A class under ``(?i)`` with Go's folding: each member matches its simple-folding
    orbit, no more (never İ or ı for i/I)."""
    special = {c for c in _GO_FOLD_I if any(lo <= c <= hi for lo, hi in ranges)}
    by_hand = sorted({p for c in special for p in _GO_FOLD_I[c]})
    plain = _without(ranges, set(_GO_FOLD_I))
    parts = [f"(?i:{_class_text(plain, False)})"] if plain else []
    if by_hand:
        parts.append(_class_text([(c, c) for c in by_hand], False))
    positive = "|".join(parts) or "(?!)"
    # Negated: the complement of the folded set (as Go negates after folding).
    return f"(?:(?!{positive})(?s:.))" if negated else f"(?:{positive})"


def _class_text(ranges: Ranges, negated: bool) -> str:
    if not ranges:
        # An empty class matches nothing (its negation anything); Python has no `[]`.
        return "(?s:.)" if negated else "(?!)"
    body = "".join(_char(lo) if lo == hi else f"{_char(lo)}-{_char(hi)}"
                   for lo, hi in sorted(ranges))
    return f"[{'^' if negated else ''}{body}]"


class _Parser:
    def __init__(self, pattern: str) -> None:
        self.text = pattern
        self.pos = 0
        self.depth = 0

    # -- helpers --

    def error(self, why: str, at: int | None = None) -> GoRegexpError:
        return GoRegexpError(why, self.pos if at is None else at)

    def peek(self, ahead: int = 0) -> str:
        index = self.pos + ahead
        return self.text[index] if index < len(self.text) else ""

    def startswith(self, prefix: str) -> bool:
        return self.text.startswith(prefix, self.pos)

    @staticmethod
    def chars(ranges: Ranges, negated: bool, flags: _Flags) -> _Char:
        """One character of ``ranges`` (or of their complement), folded as Go folds."""
        return _Char(_folded_class_text(ranges, negated) if flags.fold
                     else _class_text(ranges, negated))

    # -- the grammar --

    def parse(self) -> _Node:
        out = self.alternation(_Flags())
        if self.pos < len(self.text):  # only an unmatched ")" stops the top level early
            raise self.error("unexpected )")
        return out

    def alternation(self, flags: _Flags) -> _Node:
        """Branches up to ``)`` or the end; ``(?flags)`` holds to the end of the group."""
        branches: list[_Node] = []
        current: list[_Node] = []
        while self.pos < len(self.text) and self.peek() != ")":
            char = self.peek()
            if char == "|":
                self.pos += 1
                branches.append(_Concat(tuple(current)))
                current = []
                continue
            if char == "(" and self.flag_group_ahead():
                flags = self.flag_group(flags)
                continue
            if char in "*+?" or (char == "{" and self.repeat_ahead() is not None):
                raise self.error("missing argument to repetition operator")
            current.append(self.repeat(self.single(flags)))
        branches.append(_Concat(tuple(current)))
        return branches[0] if len(branches) == 1 else _Alternation(tuple(branches))

    def repeat(self, atom: _Node) -> _Node:
        """``atom`` with its quantifier, if any; a quantified quantifier is refused.

        Lazy or greedy (``?``, ``(?U)``) is read and dropped: whether a text matches does
        not depend on it, and nothing here reports what matched."""
        quantifier = self.quantifier()
        if quantifier is None:
            return atom
        if self.peek() == "?":
            self.pos += 1
        if self.peek() in ("*", "+", "?") or (self.peek() == "{" and self.repeat_ahead()):
            raise self.error("invalid nested repetition operator (RE2 has no possessive "
                             "quantifiers)")
        return _Repeat(atom, *quantifier)

    def repeat_ahead(self) -> tuple[int, int | None, int] | None:
        """(min, max or None, length) when a valid ``{n}``, ``{n,}`` or ``{n,m}`` is next."""
        found = _REPEAT_RE.match(self.text, self.pos)
        if found is None:
            return None
        low = int(found.group(1))
        high = low if found.group(2) is None else (int(found.group(3)) if found.group(3)
                                                    else None)
        if low > MAX_REPEAT or (high is not None and (high > MAX_REPEAT or high < low)):
            raise self.error(f"invalid repeat count {found.group(0)}")
        return low, high, len(found.group(0))

    def quantifier(self) -> tuple[int, int | None] | None:
        """(min, max or None) of the quantifier next, if any."""
        char = self.peek()
        if char in ("*", "+", "?"):
            self.pos += 1
            return {"*": (0, None), "+": (1, None), "?": (0, 1)}[char]
        if char == "{":
            found = self.repeat_ahead()
            if found is None:
                return None  # a literal "{", as in Go
            low, high, length = found
            self.pos += length
            return low, high
        return None

    def single(self, flags: _Flags) -> _Node:
        char = self.peek()
        start = self.pos
        if char == "(":
            return self.group(flags)
        if char == "[":
            return self.chars(*self.char_class(), flags)
        self.pos += 1
        if char == ".":
            return _Char("(?s:.)" if flags.dot_nl else "[^\\n]")
        if char == "^":
            return _Assert.BEGIN_LINE if flags.multiline else _Assert.BEGIN_TEXT
        if char == "$":
            return _Assert.END_LINE if flags.multiline else _Assert.END_TEXT
        if char == "\\":
            return self.escape(flags, start)
        return self.chars([(ord(char), ord(char))], False, flags)

    # -- groups and flags --

    def flag_group_ahead(self) -> bool:
        """Whether ``(?flags)`` (no colon: flags for the rest of the group) is next."""
        found = re.match(r"\(\?[-imsU]*\)", self.text[self.pos:])
        return found is not None

    def parse_flags(self, flags: _Flags, end: str) -> _Flags:
        """Read ``imsU`` / ``-imsU`` up to ``end`` (``)`` or ``:``), as Go checks them."""
        at = self.pos
        negate = False
        seen_any = False
        seen_after_minus = False
        values = {"fold": flags.fold, "multiline": flags.multiline, "dot_nl": flags.dot_nl,
                  "ungreedy": flags.ungreedy}
        names = {"i": "fold", "m": "multiline", "s": "dot_nl", "U": "ungreedy"}
        while True:
            char = self.peek()
            if char == "":
                raise self.error("missing closing )", at)
            self.pos += 1
            if char in names:
                values[names[char]] = not negate
                seen_any = True
                seen_after_minus = seen_after_minus or negate
            elif char == "-" and not negate:
                negate = True
            elif char == end:
                if not seen_any or (negate and not seen_after_minus):
                    raise self.error("missing or invalid flags in (?…)", at)
                return replace(flags, **values)
            else:
                raise self.error(f"invalid or unsupported Perl syntax (?{char}", at)

    def flag_group(self, flags: _Flags) -> _Flags:
        self.pos += 2  # "(?"
        return self.parse_flags(flags, ")")

    def group(self, flags: _Flags) -> _Node:
        start = self.pos
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"groups nested more than {MAX_DEPTH} deep")
        self.pos += 1  # "("
        inner_flags = flags
        if self.peek() == "?":
            for prefix, what in _UNSUPPORTED_GROUPS:
                if self.startswith(prefix):
                    raise self.error(f"RE2 has no {what} ({'(' + prefix}…)", start)
            if self.startswith("?P<") or self.startswith("?<"):
                self.pos += 3 if self.startswith("?P<") else 2
                end = self.text.find(">", self.pos)
                name = self.text[self.pos:end] if end >= 0 else ""
                if end < 0 or not _GROUP_NAME_RE.fullmatch(name):
                    raise self.error("invalid named capture", start)
                self.pos = end + 1
            elif self.startswith("?:"):
                self.pos += 2
            else:
                self.pos += 1
                inner_flags = self.parse_flags(flags, ":")
        body = self.alternation(inner_flags)
        if self.peek() != ")":
            raise self.error("missing closing )", start)
        self.pos += 1
        self.depth -= 1
        return body

    # -- escapes --

    def escape(self, flags: _Flags, start: int) -> _Node:
        """After a backslash outside a class."""
        char = self.peek()
        if char == "":
            raise self.error("trailing backslash at end of expression", start)
        assertion = {"A": _Assert.BEGIN_TEXT, "z": _Assert.END_TEXT, "b": _Assert.BOUNDARY,
                     "B": _Assert.NOT_BOUNDARY}.get(char)
        if assertion is not None:
            self.pos += 1
            return assertion
        if char == "Q":
            self.pos += 1
            end = self.text.find("\\E", self.pos)
            literal = self.text[self.pos:] if end < 0 else self.text[self.pos:end]
            self.pos = len(self.text) if end < 0 else end + 2
            return _Concat(tuple(self.chars([(ord(c), ord(c))], False, flags)
                                 for c in literal))
        perl = self.perl_class()
        if perl is not None:
            ranges, negated = perl
            return self.chars(ranges, negated, flags)
        code = self.escaped_char(start)
        return self.chars([(code, code)], False, flags)

    def perl_class(self) -> tuple[Ranges, bool] | None:
        """``\\d \\D \\s \\S \\w \\W`` (after the backslash); refuses ``\\p``/``\\P``."""
        char = self.peek()
        if char in ("p", "P"):
            raise self.error("Unicode classes (\\p, \\P) are not supported here; "
                             "write the characters or ranges out")
        if char.lower() in _PERL:
            self.pos += 1
            return _PERL[char.lower()], char.isupper()
        return None

    def escaped_char(self, start: int) -> int:
        """The code point of a single-character escape (after the backslash)."""
        char = self.peek()
        self.pos += 1
        if char in "1234567" and not ("0" <= self.peek() <= "7"):
            raise self.error("RE2 has no back-references", start)
        if "0" <= char <= "7":
            value = int(char)
            for _ in range(2):
                if "0" <= self.peek() <= "7":
                    value = value * 8 + int(self.peek())
                    self.pos += 1
            return value
        if char == "x":
            if self.peek() == "{":
                end = self.text.find("}", self.pos)
                digits = self.text[self.pos + 1:end] if end >= 0 else ""
                if end < 0 or not re.fullmatch(r"[0-9A-Fa-f]+", digits) or \
                        int(digits, 16) > _MAX_RUNE:
                    raise self.error("invalid escape sequence \\x{…}", start)
                self.pos = end + 1
                return int(digits, 16)
            digits = self.text[self.pos:self.pos + 2]
            if not re.fullmatch(r"[0-9A-Fa-f]{2}", digits):
                raise self.error("invalid escape sequence \\x", start)
            self.pos += 2
            return int(digits, 16)
        if char in _SIMPLE_ESCAPES:
            return _SIMPLE_ESCAPES[char]
        if char.isascii() and not char.isalnum():
            return ord(char)  # an escaped punctuation character is itself
        raise self.error(f"invalid escape sequence \\{char}", start)

    # -- classes --

    def char_class(self) -> tuple[Ranges, bool]:
        start = self.pos
        self.pos += 1  # "["
        negated = self.peek() == "^"
        if negated:
            self.pos += 1
        ranges: Ranges = []
        first = True
        while True:
            char = self.peek()
            if char == "":
                raise self.error("missing closing ]", start)
            if char == "]" and not first:
                self.pos += 1
                break
            first = False
            if self.startswith("[:"):
                end = self.text.find(":]", self.pos + 2)
                name = self.text[self.pos + 2:end] if end >= 0 else ""
                wanted = name.removeprefix("^")
                if end >= 0 and wanted in _POSIX:
                    self.pos = end + 2
                    found = _POSIX[wanted]
                    ranges += _complement(found) if name.startswith("^") else found
                    continue
                if end >= 0 and re.fullmatch(r"\^?[a-z]+", name):
                    raise self.error(f"invalid character class range [:{name}:]")
            if char == "\\":
                self.pos += 1
                perl = self.perl_class()
                if perl is not None:
                    found, inverse = perl
                    ranges += _complement(found) if inverse else found
                    continue
                low = self.class_char(escaped=True)
            else:
                low = self.class_char(escaped=False)
            high = low
            if self.peek() == "-" and self.peek(1) not in ("]", ""):
                self.pos += 1
                escaped = self.peek() == "\\"
                if escaped:
                    self.pos += 1
                    if self.peek().lower() in _PERL or self.peek() in ("p", "P"):
                        raise self.error("invalid character class range")
                high = self.class_char(escaped=escaped)
                if high < low:
                    raise self.error("invalid character class range")
            ranges.append((low, high))
        return ranges, negated

    def class_char(self, *, escaped: bool) -> int:
        start = self.pos - (1 if escaped else 0)
        if escaped:
            return self.escaped_char(start)
        char = self.peek()
        self.pos += 1
        return ord(char)


# --- the program: a Thompson NFA run in lock step (linear in the text, no backtracking) ---


class _Op(enum.Enum):
    CHAR = enum.auto()  # arg: index of the one-character matcher; then pc + 1
    SPLIT = enum.auto()  # arg, arg2: both
    JUMP = enum.auto()  # arg
    ASSERT = enum.auto()  # arg: an _Assert; then pc + 1
    MATCH = enum.auto()


@dataclass(frozen=True)
class _Inst:
    op: _Op
    arg: int = 0
    arg2: int = 0
    assertion: _Assert | None = None


class _Compiler:
    def __init__(self) -> None:
        self.code: list[_Inst] = []
        self.matchers: dict[str, int] = {}

    def emit(self, inst: _Inst) -> int:
        if len(self.code) >= MAX_PROGRAM:
            raise GoRegexpError(f"too large once its repeats are expanded (more than "
                                f"{MAX_PROGRAM} steps)", 0)
        self.code.append(inst)
        return len(self.code) - 1

    def patch(self, at: int, *, arg: int | None = None, arg2: int | None = None) -> None:
        """Fill in a jump target once it is known."""
        inst = self.code[at]
        self.code[at] = _Inst(inst.op, inst.arg if arg is None else arg,
                              inst.arg2 if arg2 is None else arg2, inst.assertion)

    def node(self, node: _Node) -> None:
        match node:
            case _Char(pattern):
                index = self.matchers.setdefault(pattern, len(self.matchers))
                self.emit(_Inst(_Op.CHAR, index))
            case _Assert():
                self.emit(_Inst(_Op.ASSERT, assertion=node))
            case _Concat(items):
                for item in items:
                    self.node(item)
            case _Alternation(branches):
                jumps = []
                for branch in branches[:-1]:
                    split = self.emit(_Inst(_Op.SPLIT))
                    self.patch(split, arg=len(self.code))
                    self.node(branch)
                    jumps.append(self.emit(_Inst(_Op.JUMP)))
                    self.patch(split, arg2=len(self.code))
                self.node(branches[-1])
                for jump in jumps:
                    self.patch(jump, arg=len(self.code))
            case _Repeat(item, low, high):
                for _ in range(low):
                    self.node(item)
                if high is None:  # a loop: try the item again, or go on
                    split = self.emit(_Inst(_Op.SPLIT))
                    self.patch(split, arg=len(self.code))
                    self.node(item)
                    self.emit(_Inst(_Op.JUMP, split))
                    self.patch(split, arg2=len(self.code))
                    return
                splits = []
                for _ in range(high - low):  # each optional copy may end the repeat
                    split = self.emit(_Inst(_Op.SPLIT))
                    self.patch(split, arg=len(self.code))
                    splits.append(split)
                    self.node(item)
                for split in splits:
                    self.patch(split, arg2=len(self.code))


def _is_word(text: str, at: int) -> bool:
    return 0 <= at < len(text) and text[at] in _WORD_CHARS


def _holds(assertion: _Assert, text: str, at: int) -> bool:
    match assertion:
        case _Assert.BEGIN_TEXT:
            return at == 0
        case _Assert.END_TEXT:
            return at == len(text)
        case _Assert.BEGIN_LINE:
            return at == 0 or text[at - 1] == "\n"
        case _Assert.END_LINE:
            return at == len(text) or text[at] == "\n"
        case _Assert.BOUNDARY:
            return _is_word(text, at - 1) != _is_word(text, at)
        case _Assert.NOT_BOUNDARY:
            return _is_word(text, at - 1) == _is_word(text, at)


@dataclass(frozen=True)
class GoRegexp:
    """A compiled Go (RE2) pattern. :meth:`search` runs in time linear in the text (every
    state advances in lock step, none is tried twice at one position), so a subject a
    certificate's owner chose cannot stall verification; texts over
    :data:`MAX_SUBJECT` characters never match."""

    pattern: str
    code: tuple[_Inst, ...] = field(repr=False)
    matchers: tuple[re.Pattern[str], ...] = field(repr=False)

    def _follow(self, states: list[int], seen: set[int], pc: int, text: str, at: int) -> None:
        """Add ``pc`` and every state reached from it without reading a character."""
        stack = [pc]
        while stack:
            pc = stack.pop()
            if pc in seen:
                continue
            seen.add(pc)
            inst = self.code[pc]
            match inst.op:
                case _Op.JUMP:
                    stack.append(inst.arg)
                case _Op.SPLIT:
                    stack += (inst.arg2, inst.arg)
                case _Op.ASSERT:
                    if inst.assertion is not None and _holds(inst.assertion, text, at):
                        stack.append(pc + 1)
                case _Op.CHAR | _Op.MATCH:
                    states.append(pc)

    def search(self, text: str) -> bool:
        """Go's ``MatchString``: whether the pattern matches anywhere in ``text``."""
        if len(text) > MAX_SUBJECT:
            return False
        states: list[int] = []
        seen: set[int] = set()
        for at in range(len(text) + 1):
            self._follow(states, seen, 0, text, at)  # unanchored: a match may start here
            if any(self.code[pc].op is _Op.MATCH for pc in states):
                return True
            if at == len(text):
                break
            char = text[at]
            following: list[int] = []
            seen = set()
            hits: dict[int, bool] = {}
            for pc in states:
                inst = self.code[pc]
                if inst.op is _Op.CHAR:
                    hit = hits.get(inst.arg)
                    if hit is None:
                        hit = hits[inst.arg] = self.matchers[inst.arg].fullmatch(char) is not None
                    if hit:
                        self._follow(following, seen, pc + 1, text, at + 1)
            states = following
        return False


def translate(pattern: str) -> GoRegexp:
    """``pattern`` read with Go's grammar and meaning, as a program (uncached); raises
    :class:`GoRegexpError` where Go would refuse it or we cannot run it."""
    if len(pattern) > MAX_PATTERN:
        raise GoRegexpError(f"longer than {MAX_PATTERN} characters", MAX_PATTERN)
    compiler = _Compiler()
    compiler.node(_Parser(pattern).parse())
    compiler.emit(_Inst(_Op.MATCH))
    try:
        matchers = tuple(re.compile(text) for text in compiler.matchers)
    except re.error as e:  # a character class the parser let through; refuse, never guess
        raise GoRegexpError(f"cannot be compiled ({e.msg})", e.pos or 0) from e
    return GoRegexp(pattern, tuple(compiler.code), matchers)


@functools.lru_cache(maxsize=512)
def compile_go(pattern: str) -> GoRegexp:
    """Compile a Go (RE2) pattern; raises :class:`GoRegexpError` when Go would refuse it."""
    return translate(pattern)


def search(pattern: str, text: str) -> bool:
    """Go's ``regexp.MatchString(pattern, text)``: an unanchored search."""
    return compile_go(pattern).search(text)


def full_match(pattern: str, text: str) -> bool:
    """Whether the whole of ``text`` matches (Go: ``^(?:pattern)$``)."""
    compile_go(pattern)  # alone first: a stray ")" must not escape the wrapping group
    return compile_go(f"^(?:{pattern})$").search(text)
