"""buildkit's Dockerfile line parser (frontend/dockerfile/parser, buildkit v0.32.2), with the
byte offsets a rewrite needs.

What it mirrors, because an image name hides in each of these:

* Lines end at ``\\n``; trailing ``\\r``/``\\n`` are dropped; a UTF-8 BOM on the first line
  is dropped; a physical line over 64 KiB fails (bufio.Scanner's limit).
* Parser directives (``# escape=``, ``# syntax=``, ``# check=``) only at the very top,
  each once; the first other line (a blank one too) ends them.
* The escape token (``\\`` or a backtick) at the end of a line continues it; comment
  lines and blank lines inside a continuation are skipped.
* Builder flags (``--from=…``) are the leading words starting with ``--``; quotes and the
  escape token are processed byte by byte, as Go does (bytes 0x85 and 0xA0 count as space).
* Heredocs in RUN/COPY/ADD (and ONBUILD of those), not in JSON form: their bodies are
  content, not instructions. Which heredocs a builder sees depends on its version
  (``HeredocMode``), so callers parse once per mode that matters.

Nothing here knows what an image is; ``dockerfile.py`` does.
"""

from __future__ import annotations

import enum
import json
import re
from dataclasses import dataclass

from safedocker.build.lex import Lexer, LexError, go_space
from safedocker.errors import Refused, UsageError

MAX_LINE = 64 * 1024  # bufio.MaxScanTokenSize: a longer line fails the build
BOM = b"\xef\xbb\xbf"
KNOWN_DIRECTIVES = ("syntax", "escape", "check")
# Instructions every buildkit and the classic builder know; anything else fails the parse.
INSTRUCTIONS = frozenset(
    "add arg cmd copy entrypoint env expose from healthcheck label maintainer onbuild run "
    "shell stopsignal user volume workdir".split()
)
_HEREDOC_INSTRUCTIONS = frozenset({"add", "copy", "run"})
_JSON_INSTRUCTIONS = frozenset({"add", "copy", "volume", "cmd", "entrypoint", "run", "shell"})

_DIRECTIVE = re.compile(rb"([a-zA-Z][a-zA-Z0-9]*)[\t\n\f\r ]*=[\t\n\f\r ]*(.+?)[\t\n\f\r ]*\Z")
_WHITESPACE = re.compile(rb"[\t\v\f\r ]+")
# Docker 20.10's parser (buildkit 0.8) matched `^#\s*name=`: only Go's ASCII \s after '#'.
_OLD_DIRECTIVE_START = re.compile(rb"#[\t\n\f\r ]*[a-zA-Z]")
_GO_SPACE_BYTES = frozenset(b"\t\n\v\f\r \x85\xa0")  # unicode.IsSpace(rune(b)) for one byte
_HEREDOC_SPACED = re.compile(r"([0-9]*)<<(-?)[\t\n\f\r ]*([^<]*)\Z")
_HEREDOC_TIGHT = re.compile(r"([0-9]*)<<(-?)([^<]*)\Z")


class DockerfileSyntaxError(UsageError):
    """The Dockerfile does not parse; docker would fail it too."""


class HeredocMode(enum.Enum):
    """How a builder version reads ``<<WORD``."""

    SPACED = "spaced"  # Dockerfile frontend 1.16+ (buildkit 0.22+): "<< EOF" too
    TIGHT = "tight"  # frontend 1.4-1.15, buildkit 0.10-0.21, Docker 23-28 classic parser
    NONE = "none"  # Docker 20.10 (buildkit 0.8), frontends before 1.4 (not labs)


def decode(raw: bytes) -> str:
    """Bytes as text for the lexer; invalid UTF-8 survives as surrogates (never a name)."""
    return raw.decode("utf-8", "surrogateescape")


def encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


@dataclass(frozen=True)
class Segment:
    """A piece of a logical line: ``line[logical:logical+end-start] == file[start:end]``."""

    logical: int
    start: int
    end: int


@dataclass(frozen=True)
class Flag:
    """A builder flag word such as ``--from=alpine`` (quotes already processed)."""

    name: str  # "from"
    value: str | None  # None when the word has no "="
    start: int  # logical offsets of the whole word as written
    end: int


@dataclass(frozen=True)
class Heredoc:
    name: str
    chomp: bool
    expand: bool
    content: bytes


@dataclass(frozen=True)
class Node:
    """One instruction: ``keyword`` as written, flags, and the argument text."""

    keyword: str
    flags: tuple[Flag, ...]
    args: str  # the argument text after the flags, trimmed
    args_at: int  # logical offset of ``args``
    line: bytes  # the logical line (continuations joined)
    segments: tuple[Segment, ...]
    start_line: int  # 1-based physical lines
    end_line: int
    heredocs: tuple[Heredoc, ...] = ()
    sub: Node | None = None  # the instruction an ONBUILD carries
    json: bool = False

    @property
    def command(self) -> str:
        return self.keyword.lower()

    def file_span(self, start: int, end: int) -> tuple[int, int] | None:
        """File offsets of logical ``[start, end)``; None when a continuation splits it."""
        for seg in self.segments:
            if seg.logical <= start and end <= seg.logical + (seg.end - seg.start):
                return seg.start + start - seg.logical, seg.start + end - seg.logical
        return None

    def words(self) -> list[tuple[str, int, int]]:
        """The arguments split on whitespace as FROM/COPY see them: (text, start, end)."""
        out: list[tuple[str, int, int]] = []
        raw = encode(self.args)
        base = self.args_at
        pos = 0
        for match in _WHITESPACE.finditer(raw):
            if match.start() > pos:
                out.append((decode(raw[pos : match.start()]), base + pos, base + match.start()))
            pos = match.end()
        if pos < len(raw):
            out.append((decode(raw[pos:]), base + pos, base + len(raw)))
        return out


@dataclass(frozen=True)
class Directive:
    name: str  # lowercased
    value: str
    line: int


@dataclass(frozen=True)
class Parsed:
    nodes: tuple[Node, ...]
    escape: str
    directives: tuple[Directive, ...]


class _Directives:
    """DirectiveParser plus the escape token it sets."""

    def __init__(self) -> None:
        self.done = False
        self.seen: list[Directive] = []
        self.line = 0
        self.escape = "\\"

    def feed(self, token: bytes) -> bool:
        self.line += 1
        if self.done:
            return False
        if not token.startswith(b"#"):
            self.done = True
            return False
        match = _DIRECTIVE.match(lstrip(token[1:]))
        if match is None:
            self.done = True
            return False
        name = decode(match.group(1)).lower()
        if name not in KNOWN_DIRECTIVES:
            self.done = True
            return False
        if _OLD_DIRECTIVE_START.match(token) is None:
            # "#\vescape=`": a directive for newer builders, a comment ending the directives
            # for Docker 20.10's; the escape token (which lines continue) would differ.
            raise Refused(
                f"refused the build: Dockerfile line {self.line} is a parser directive for "
                "some docker versions and a comment for others",
                why="builders would read the rest of the Dockerfile differently",
                hint=f"write it as '# {name}=…' with plain spaces",
            )
        if any(d.name == name for d in self.seen):
            raise DockerfileSyntaxError(
                f"Dockerfile line {self.line}: only one {name} parser directive can be used"
            )
        value = decode(match.group(2))
        self.seen.append(Directive(name, value, self.line))
        if name == "escape":
            if value not in ("`", "\\"):
                raise DockerfileSyntaxError(
                    f"Dockerfile line {self.line}: invalid escape token '{value}' does not "
                    "match ` or \\"
                )
            self.escape = value
        return True


def lstrip(data: bytes) -> bytes:
    """bytes.TrimLeftFunc(data, unicode.IsSpace): runes; an invalid byte is no space."""
    if not data or (data[0] < 0x80 and data[0] not in _GO_SPACE_BYTES):
        return data  # the common case, without decoding
    text = decode(data)
    i = 0
    while i < len(text) and go_space(text[i]):
        i += 1
    return encode(text[i:])


def _rstrip(data: bytes) -> bytes:
    """The right half of strings.TrimSpace."""
    if not data or (data[-1] < 0x80 and data[-1] not in _GO_SPACE_BYTES):
        return data
    text = decode(data)
    end = len(text)
    while end > 0 and go_space(text[end - 1]):
        end -= 1
    return encode(text[:end])


def _is_comment(line: bytes) -> bool:
    return lstrip(line).startswith(b"#")


def _continuation(escape: str) -> re.Pattern[bytes]:
    e = re.escape(escape.encode())
    return re.compile(rb"([^" + e + rb"])" + e + rb"[ \t]*\Z|\A" + e + rb"[ \t]*\Z")


def _split_lines(data: bytes) -> list[tuple[int, bytes]]:
    """scanLines: each line with its newline, and its offset in the file."""
    out: list[tuple[int, bytes]] = []
    pos = 0
    while pos < len(data):
        nl = data.find(b"\n", pos)
        end = len(data) if nl < 0 else nl + 1
        if end - pos > MAX_LINE:
            raise DockerfileSyntaxError(
                f"Dockerfile line {len(out) + 1} is longer than {MAX_LINE - 1} bytes",
                hint="docker refuses such lines too",
            )
        out.append((pos, data[pos:end]))
        pos = end
    return out


def parse(data: bytes, *, heredocs: HeredocMode = HeredocMode.SPACED) -> Parsed:
    """Parse a Dockerfile as buildkit's ``parser.Parse`` does (the AST, not its meaning)."""
    lines = _split_lines(data)
    d = _Directives()
    cont = _continuation("\\")
    nodes: list[Node] = []
    i = 0
    current = 0
    while i < len(lines):
        offset, raw = lines[i]
        i += 1
        if current == 0 and raw.startswith(BOM):
            raw, offset = raw[len(BOM) :], offset + len(BOM)
        token = raw.rstrip(b"\r\n")
        stripped = lstrip(token)
        offset += len(token) - len(stripped)
        if d.feed(stripped):
            cont = _continuation(d.escape)
        current += 1
        start_line = current
        if stripped.startswith(b"#"):
            continue  # a comment: trimComments leaves nothing
        text, more = _trim_continuation(stripped, cont)
        if not more and not text:
            continue
        pieces = [text]
        segments = [Segment(0, offset, offset + len(text))]
        length = len(text)
        while more and i < len(lines):
            offset, raw = lines[i]
            i += 1
            token = raw.rstrip(b"\r\n")
            if d.feed(token):
                cont = _continuation(d.escape)
            current += 1
            if _is_comment(raw) or not lstrip(token):
                continue
            text, more = _trim_continuation(token, cont)
            pieces.append(text)
            segments.append(Segment(length, offset, offset + len(text)))
            length += len(text)
        line = b"".join(pieces)
        node = _node(line, 0, d.escape, line, tuple(segments), start_line)
        docs: list[Heredoc] = []
        target = node.sub if node.command == "onbuild" and node.sub is not None else node
        if (
            heredocs is not HeredocMode.NONE
            and target.command in _HEREDOC_INSTRUCTIONS
            and not target.json
            and b"<<" in line
        ):
            for name, chomp, expand in _heredocs_in(decode(line), heredocs):
                body: list[bytes] = []
                terminated = False
                while i < len(lines):
                    _, raw = lines[i]
                    i += 1
                    current += 1
                    candidate = raw.rstrip(b"\r\n")
                    if chomp:
                        candidate = candidate.lstrip(b"\t")
                    if candidate == encode(name):
                        terminated = True
                        break
                    body.append(raw)
                if not terminated:
                    raise DockerfileSyntaxError(
                        f"Dockerfile line {start_line}: unterminated heredoc {name!r}"
                    )
                docs.append(Heredoc(name, chomp, expand, b"".join(body)))
        nodes.append(
            Node(
                node.keyword, node.flags, node.args, node.args_at, line, node.segments,
                start_line, current, tuple(docs), node.sub, node.json,
            )
        )
    if not nodes:
        raise DockerfileSyntaxError("the Dockerfile has no instructions")
    return Parsed(tuple(nodes), d.escape, tuple(d.seen))


def _trim_continuation(token: bytes, cont: re.Pattern[bytes]) -> tuple[bytes, bool]:
    match = cont.search(token)
    if match is None:
        return token, False
    return token[: match.start()] + (match.group(1) or b""), True


def _node(
    text: bytes,
    at: int,
    escape: str,
    line: bytes,
    segments: tuple[Segment, ...],
    start_line: int,
) -> Node:
    """newNodeFromLine for ``text``, which is ``line[at:]`` (ONBUILD parses its tail)."""
    trimmed = lstrip(text)
    lead = len(text) - len(trimmed)
    trimmed = _rstrip(trimmed)
    split = _WHITESPACE.search(trimmed)
    keyword = trimmed if split is None else trimmed[: split.start()]
    flags: tuple[Flag, ...] = ()
    args, args_at = b"", at + lead + len(trimmed)
    if split is not None:
        rest_at = at + lead + split.end()
        rest = trimmed[split.end() :]
        flags, args_pos = _builder_flags(rest, rest_at, escape)
        tail = rest[args_pos:]
        args = lstrip(tail)
        args_at = rest_at + args_pos + len(tail) - len(args)
        args = _rstrip(args)
    command = decode(keyword).lower()
    sub = None
    is_json = False
    if command == "onbuild" and args:
        sub = _node(args, args_at, escape, line, segments, start_line)
    elif command in _JSON_INSTRUCTIONS and args:
        is_json = _json_array(args, start_line)
    return Node(
        decode(keyword), flags, decode(args), args_at, line, segments, start_line, start_line,
        sub=sub, json=is_json,
    )


def _builder_flags(rest: bytes, at: int, escape: str) -> tuple[tuple[Flag, ...], int]:
    """extractBuilderFlags, byte by byte: the flag words and where the arguments start."""
    esc = escape.encode()[0]
    flags: list[Flag] = []
    pos = 0
    n = len(rest)
    while True:
        while pos < n and rest[pos] in _GO_SPACE_BYTES:
            pos += 1
        if pos >= n:
            return tuple(flags), n
        if not (rest[pos] == 0x2D and pos + 1 < n and rest[pos + 1] == 0x2D):  # "--"
            return tuple(flags), pos
        start = pos
        word = bytearray()
        quote = 0
        blank_ok = False
        while pos < n:
            ch = rest[pos]
            if quote:
                if ch == quote:
                    quote = 0
                elif ch == esc:
                    if pos + 1 == n:
                        quote = 0
                    else:
                        pos += 1
                        word.append(rest[pos])
                else:
                    word.append(ch)
                pos += 1
                continue
            if ch in _GO_SPACE_BYTES:
                break
            if ch in (0x27, 0x22):  # ' "
                quote = ch
                blank_ok = True
            elif ch == esc:
                if pos + 1 < n:
                    pos += 1
                    word.append(rest[pos])
            else:
                word.append(ch)
            pos += 1
        if bytes(word) == b"--":
            return tuple(flags), pos  # "--" ends the flags; arguments start after it
        if blank_ok or word:
            # Go writes each byte as the rune of that value: Latin-1, not UTF-8.
            text = bytes(word).decode("latin-1")
            name, eq, value = text[2:].partition("=")
            flags.append(Flag(name, value if eq else None, at + start, at + pos))


def _json_array(args: bytes, line: int) -> bool:
    """parseJSON: a JSON array of strings is the exec form; a non-string element fails."""
    text = decode(lstrip(args))
    if not text.startswith("["):
        return False

    def no_constants(name: str) -> object:
        raise ValueError(name)  # Go's encoding/json has no NaN/Infinity

    try:
        value = json.loads(text, parse_constant=no_constants)
    except ValueError:
        return False
    if not isinstance(value, list):
        return False
    if not all(isinstance(item, str) for item in value):
        raise DockerfileSyntaxError(f"Dockerfile line {line}: JSON arguments must be strings")
    return True


def _heredocs_in(line: str, mode: HeredocMode) -> list[tuple[str, bool, bool]]:
    """heredocsFromLine: (name, chomp, expand) for each ``<<WORD`` of the line."""
    spaced = mode is HeredocMode.SPACED
    words_lexer = Lexer(raw_quotes=True, raw_escapes=True, skip_unset_env=True,
                        heredoc_spaces=spaced)
    try:
        words = words_lexer.process_words(line, {})
    except LexError:
        return []  # Go ignores the error: no heredocs
    pattern = _HEREDOC_SPACED if spaced else _HEREDOC_TIGHT
    docs: list[tuple[str, bool, bool]] = []
    for word in words:
        match = pattern.match(word)
        if match is None or not match.group(3):
            continue
        rest = match.group(3)
        plain = Lexer(skip_unset_env=True, heredoc_spaces=spaced)
        raw = Lexer(raw_quotes=True, skip_unset_env=True, heredoc_spaces=spaced)
        try:
            names = plain.process_words(rest, {})
            if len(names) != 1:
                continue
            raw_names = raw.process_words(rest, {})
        except LexError as e:
            raise DockerfileSyntaxError(f"heredoc {rest!r}: {e.what}") from None
        if len(raw_names) != len(names):
            raise DockerfileSyntaxError(f"heredoc {rest!r} lexes inconsistently")
        quotes = names[0].count("'") + names[0].count('"')
        raw_quotes = raw_names[0].count("'") + raw_names[0].count('"')
        docs.append((names[0], match.group(2) == "-", quotes == raw_quotes))
    return docs
