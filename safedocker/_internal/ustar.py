"""Plain tar, read strictly and written plainly: the only tar code that touches an archive
a user hands safe-docker. Standard library only.

Python's ``tarfile`` and Go's ``archive/tar`` (what docker reads with) disagree on PAX
global headers, PAX ``path``/``size`` records, GNU long names, sparse members and the
data of directories; an archive can mean one thing to each. This reader accepts only what
both read the same way: 512-byte ustar or GNU headers of regular files and directories,
checksums that add up, names that are relative, normalized UTF-8 without ``.``/``..``
parts. Every other member kind is refused, naming it. Each size is checked against the
caller's :class:`Limits` before any byte of the member is read, and data is handed out in
chunks, never whole.

``lenient=True`` is for tars docker itself wrote (``docker save`` on this machine): links
are reported (not followed) and PAX extended headers are read when they only carry times,
owners or extended attributes; a PAX header that renames or resizes a member is refused
in both modes, and a PAX global header always.

The writer writes plain ustar headers only (base-256 sizes from 8 GiB on, as GNU tar and
Go do), for names the caller chose.
"""

from __future__ import annotations

import enum
import posixpath
import re
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

BLOCK = 512
RECORD = 20 * BLOCK  # what tar(1), Go and Python pad an archive to
NAME_MAX = 256  # ustar: 155 bytes of prefix, "/", 100 bytes of name
PAX_HEADER_MAX = 64 * 1024
_OCTAL_MAX = 8**11  # an 11-digit octal size field; larger sizes are written base-256
_POSIX_MAGIC = b"ustar\x0000"
_GNU_MAGIC = b"ustar  \x00"
_OCTAL_FIELD = re.compile(rb"^ *([0-7]*)[ \x00]*$")
# PAX records a lenient read may skip: they change neither a member's name nor its size.
_HARMLESS_PAX = re.compile(r"^(mtime|atime|ctime|uid|gid|uname|gname|comment"
                           r"|(SCHILY|LIBARCHIVE)\.xattr\..+)$")
_KIND_NAMES = {
    b"1": "a hard link", b"2": "a symbolic link", b"3": "a character device",
    b"4": "a block device", b"6": "a FIFO", b"7": "a contiguous file",
    b"x": "a PAX extended header", b"g": "a PAX global header",
    b"L": "a GNU long name", b"K": "a GNU long link name", b"S": "a GNU sparse file",
    b"M": "a GNU multi-volume member", b"V": "a GNU volume header",
    b"D": "a GNU directory dump", b"N": "a GNU old long name",
}


class TarFormatError(ValueError):
    """The archive is not a plain tar this module reads, or breaks a limit."""


class Kind(enum.Enum):
    FILE = "file"
    DIRECTORY = "directory"
    LINK = "link"  # reported only by a lenient reader; its data is elsewhere


@dataclass(frozen=True)
class Limits:
    """What a reader allows before it reads: members, one member's size, all of them."""

    members: int
    member_size: int
    total: int


@dataclass(frozen=True)
class Member:
    name: str  # directories without their trailing "/"
    kind: Kind
    size: int
    offset: int  # where the member's data starts in the stream


def _octal(field: bytes, what: str) -> int:
    match = _OCTAL_FIELD.match(field)
    if match is None:
        raise TarFormatError(f"the {what} field of a header is not a number")
    return int(match[1] or b"0", 8)


def _number(field: bytes, what: str) -> int:
    """An octal field, or GNU's base-256 form (high bit set) that Go and Python read too."""
    if field[:1] == b"\x80":
        return int.from_bytes(field[1:], "big")
    if field[:1] and field[0] & 0x80:
        raise TarFormatError(f"the {what} field of a header is negative")
    return _octal(field, what)


def _text(field: bytes) -> bytes:
    return field.split(b"\x00", 1)[0]


def _checksum_ok(block: bytes) -> bool:
    stored = _octal(block[148:156], "checksum")
    rest = block[:148] + block[156:]
    unsigned = sum(rest) + 8 * 32  # the checksum field counts as eight spaces
    signed = unsigned - 256 * sum(1 for b in rest if b > 127)  # old tars summed signed bytes
    return stored in (unsigned, signed)


def check_name(raw: bytes) -> str:
    """A member name as both readers see it: UTF-8, relative, normalized, no ``.``/``..``."""
    try:
        name = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise TarFormatError(f"member name {raw[:80]!r} is not UTF-8") from None
    shown = repr(name[:200])
    if not name or len(raw) > NAME_MAX:
        raise TarFormatError(f"member name {shown} is empty or too long")
    if name.startswith("/") or "\\" in name or any(ord(c) < 32 or c == "\x7f" for c in name):
        raise TarFormatError(f"member name {shown} is absolute or has control characters")
    parts = name.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise TarFormatError(f"member name {shown} is not a plain relative path")
    if posixpath.normpath(name) != name:
        raise TarFormatError(f"member name {shown} is not normalized")
    return name


class TarReader:
    """Members of a tar stream, one after the other; nothing is read ahead of its check."""

    def __init__(self, stream: IO[bytes], limits: Limits, *, lenient: bool = False) -> None:
        self._stream = stream
        self._limits = limits
        self._lenient = lenient
        self._position = 0
        self._count = 0
        self._total = 0
        self._left = 0  # unread data of the current member
        self._padding = 0
        self._done = False

    @property
    def position(self) -> int:
        return self._position

    def _read(self, size: int) -> bytes:
        data = self._stream.read(size)
        if len(data) != size:
            raise TarFormatError("the archive is truncated")
        self._position += size
        return data

    def _discard(self, size: int) -> None:
        while size:
            step = min(size, 1024 * 1024)
            self._read(step)
            size -= step

    def next(self) -> Member | None:
        """The next member's header (the rest of the previous member is skipped)."""
        if self._done:
            return None
        self._discard(self._left + self._padding)
        self._left = self._padding = 0
        while True:
            block = self._read(BLOCK)
            if block == b"\x00" * BLOCK:
                if self._read(BLOCK) != b"\x00" * BLOCK:
                    raise TarFormatError("a zero block is followed by data")
                self._done = True
                return None
            member = self._header(block)
            if member is not None:
                return member

    def _count_member(self, size: int) -> None:
        self._count += 1
        if self._count > self._limits.members:
            raise TarFormatError(f"more than {self._limits.members} members")
        self._total += BLOCK + size
        if self._total > self._limits.total:
            raise TarFormatError(f"more than {self._limits.total} bytes in all")

    def _header(self, block: bytes) -> Member | None:
        if not _checksum_ok(block):
            raise TarFormatError("a header's checksum is wrong (not a tar, or damaged)")
        magic = block[257:265]
        if magic not in (_POSIX_MAGIC, _GNU_MAGIC):
            raise TarFormatError("a header is neither ustar nor GNU (an old v7 tar?)")
        typeflag = block[156:157]
        size = _number(block[124:136], "size")
        self._count_member(size)
        if typeflag == b"x" and self._lenient:
            self._pax_records(size)
            return None
        if typeflag not in (b"0", b"\x00", b"5") and not (
            self._lenient and typeflag in (b"1", b"2")
        ):
            named = _KIND_NAMES.get(typeflag, f"of unknown type {typeflag!r}")
            raise TarFormatError(f"a member is {named}; only files and directories are read")
        raw = _text(block[0:100])
        prefix_area = block[345:500]
        if magic == _POSIX_MAGIC and _text(prefix_area):
            raw = _text(prefix_area) + b"/" + raw
        elif magic == _GNU_MAGIC and prefix_area.strip(b"\x00"):
            raise TarFormatError("a GNU header uses extension fields (sparse or incremental)")
        if typeflag == b"5":
            if raw.endswith(b"/"):
                raw = raw[:-1]
            kind = Kind.DIRECTORY
        elif typeflag in (b"1", b"2"):
            kind = Kind.LINK
        else:
            if raw.endswith(b"/"):
                raise TarFormatError("a file's name ends with '/'")
            kind = Kind.FILE
        name = check_name(raw)
        if kind is not Kind.FILE and size:
            raise TarFormatError(f"{name[:200]!r} is a {kind.value} with data")
        if size > self._limits.member_size:
            raise TarFormatError(f"{name[:200]!r} has {size} bytes, more than "
                                 f"{self._limits.member_size}")
        self._left = size
        self._padding = -size % BLOCK
        return Member(name, kind, size, self._position)

    def _pax_records(self, size: int) -> None:
        """Read a PAX extended header; refuse it unless every record is harmless."""
        if size > PAX_HEADER_MAX:
            raise TarFormatError(f"a PAX header has {size} bytes, more than {PAX_HEADER_MAX}")
        data = self._read(size)
        self._discard(-size % BLOCK)
        while data:
            length_text, space, _ = data.partition(b" ")
            if not space or not length_text.isdigit() or int(length_text) > len(data):
                raise TarFormatError("a PAX header is malformed")
            record, data = data[: int(length_text)], data[int(length_text):]
            key, equals, _value = record[len(length_text) + 1:].partition(b"=")
            if not equals or not record.endswith(b"\n"):
                raise TarFormatError("a PAX header is malformed")
            shown = key.decode("utf-8", "replace")[:80]
            if not _HARMLESS_PAX.match(shown):
                raise TarFormatError(f"a PAX header sets {shown!r}; only times, owners and "
                                     "extended attributes are read")

    def chunks(self, size: int = 1024 * 1024) -> Iterator[bytes]:
        """The current member's data, in chunks of at most ``size`` bytes."""
        while self._left:
            chunk = self._read(min(size, self._left))
            self._left -= len(chunk)
            yield chunk

    def read_member(self, cap: int) -> bytes:
        """The whole current member; its size was checked against ``cap`` first."""
        if self._left > cap:
            raise TarFormatError(f"a member has {self._left} bytes, more than {cap}")
        return b"".join(self.chunks())


# --- writing ------------------------------------------------------------------------------


def _field(value: int, width: int) -> bytes:
    return b"%0*o\x00" % (width - 1, value)


def _size_field(size: int) -> bytes:
    if size < _OCTAL_MAX:
        return _field(size, 12)
    return b"\x80" + size.to_bytes(11, "big")


def _split_name(name: str) -> tuple[bytes, bytes]:
    raw = name.encode("ascii")
    if len(raw) <= 100:
        return b"", raw
    cut = raw.rfind(b"/", 0, 156)
    if cut <= 0 or len(raw) - cut - 1 > 100:
        raise ValueError(f"name {name!r} does not fit a ustar header")
    return raw[:cut], raw[cut + 1:]


def header(name: str, size: int, *, directory: bool = False, mtime: int = 0) -> bytes:
    """One plain ustar header (mode 0644/0755, owner 0, no user or group names)."""
    check_name(name.encode("ascii"))
    prefix, short = _split_name(name)
    block = bytearray(BLOCK)
    block[0:100] = short.ljust(100, b"\x00")
    block[100:108] = _field(0o755 if directory else 0o644, 8)
    block[108:116] = _field(0, 8)
    block[116:124] = _field(0, 8)
    block[124:136] = _size_field(0 if directory else size)
    block[136:148] = _field(mtime, 12)
    block[148:156] = b" " * 8
    block[156:157] = b"5" if directory else b"0"
    block[257:265] = _POSIX_MAGIC
    block[329:337] = _field(0, 8)
    block[337:345] = _field(0, 8)
    block[345:500] = prefix.ljust(155, b"\x00")
    block[148:156] = b"%06o\x00 " % sum(block)
    return bytes(block)


def resized_header(block: bytes, size: int) -> bytes:
    """A member's header (as read strictly) with a new size, its checksum recomputed;
    every other field (mode, owner, times, names) unchanged."""
    if len(block) != BLOCK or not _checksum_ok(block):
        raise TarFormatError("not a tar header")
    out = bytearray(block)
    out[124:136] = _size_field(size)
    out[148:156] = b" " * 8
    out[148:156] = b"%06o\x00 " % sum(out)
    return bytes(out)


class TarWriter:
    """Writes plain ustar members to ``stream``; a file's data may come in chunks."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._left = 0
        self._padding = 0
        self.size = 0

    def _write(self, data: bytes) -> None:
        self._stream.write(data)
        self.size += len(data)

    def directory(self, name: str) -> None:
        self._check_idle()
        self._write(header(name, 0, directory=True))

    def begin(self, name: str, size: int) -> None:
        """Start a file of ``size`` bytes; :meth:`write` its data, then :meth:`end`."""
        self._check_idle()
        self._write(header(name, size))
        self._left, self._padding = size, -size % BLOCK

    def write(self, data: bytes) -> None:
        if len(data) > self._left:
            raise ValueError("more data than the member's size")
        self._write(data)
        self._left -= len(data)

    def end(self) -> None:
        if self._left:
            raise ValueError(f"member ended {self._left} bytes short")
        self._write(b"\x00" * self._padding)
        self._padding = 0

    def file(self, name: str, data: bytes) -> None:
        self.begin(name, len(data))
        self.write(data)
        self.end()

    def close(self) -> None:
        """The end marker (two zero blocks), padded to a whole record."""
        self._check_idle()
        self._write(b"\x00" * (2 * BLOCK))
        self._write(b"\x00" * (-self.size % RECORD))

    def _check_idle(self) -> None:
        if self._left or self._padding:
            raise ValueError("the previous member is not finished")
