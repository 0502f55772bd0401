"""What a build reads, read once and kept: the Dockerfile, and a build context on stdin.

Docker must build exactly what was scanned. So the Dockerfile is read once (``-f PATH``,
the context's ``Dockerfile``, ``-f -``, or inside a ``-`` context) and docker is handed
a copy in a private directory (``-f``), or the bytes read from stdin (its standard input
is then that file), never the original again: a file swapped between safe-docker's read
and docker's changes nothing.

A ``-`` context is read whole into the private directory (at most ``MAX_CONTEXT`` bytes;
gzip, bzip2 and xz are decompressed there, as docker would). A tar is read with the
strict reader (:mod:`safedocker._internal.ustar`: plain files and directories, read the
same way by Go), so the Dockerfile found in it is the one the builder reads; anything
else in it is refused, naming it.
"""

from __future__ import annotations

import bz2
import enum
import lzma
import os
import posixpath
import stat
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

from safedocker._internal import ustar
from safedocker.build.argv import DockerfileSource
from safedocker.build.dockerfile import MAX_DOCKERFILE
from safedocker.build.model import Builder
from safedocker.errors import Refused, UsageError, reason_of

if TYPE_CHECKING:
    from collections.abc import Iterator

    from safedocker.build.argv import BuildInvocation

MAX_CONTEXT = 1024**3  # a build context on stdin, decompressed
MAX_MEMBERS = 1_000_000
CHUNK = 1024 * 1024
DEFAULT_NAME = "Dockerfile"
STDIN_FILE = "stdin"  # what was read from stdin, in the private directory
_HINT = "build from a directory (docker build DIR), which safe-docker reads in place"


class InputKind(enum.Enum):
    FILE = "file"  # -f PATH, or the context directory's Dockerfile
    STDIN_FILE = "stdin"  # -f -
    STDIN_DOCKERFILE = "stdin context that is a Dockerfile"  # `docker build - < Dockerfile`
    STDIN_TAR = "stdin context archive"  # `docker build - < context.tar`


@dataclass(frozen=True)
class BuildInput:
    """The Dockerfile as scanned, and what docker must be handed instead of the original.

    ``path``: the original file (FILE), whose ``<name>.dockerignore`` and ``<name>.rego``
    sit next to it. ``buffered``: what was read from stdin (a tar decompressed).
    ``header``: STDIN_TAR, where the Dockerfile's header starts in ``buffered``.
    """

    kind: InputKind
    data: bytes
    name: str
    shown: str
    path: Path | None = None
    buffered: Path | None = None  # STDIN_*: the bytes read (a tar: decompressed)
    header: int | None = None
    size: int = 0  # STDIN_TAR: the member's size in ``buffered``


def read_input(inv: BuildInvocation, workdir: Path, stdin: IO[bytes]) -> BuildInput:
    """Read the build's Dockerfile (and a context on stdin) once, as docker would find it."""
    location = inv.dockerfile_location()
    match location.source:
        case DockerfileSource.PATH:
            given = location.path or DEFAULT_NAME
            path = Path(given if inv.dockerfile else _default_file(inv.context_text))
            return BuildInput(InputKind.FILE, _read_file(path), path.name, str(path), path)
        case DockerfileSource.STDIN:
            raw = workdir / STDIN_FILE
            _copy_bounded(stdin, raw)
            with raw.open("rb") as handle:
                data = handle.read(MAX_DOCKERFILE + 1)
            return BuildInput(InputKind.STDIN_FILE, data, DEFAULT_NAME,
                              "the Dockerfile on stdin", buffered=raw)
        case DockerfileSource.IN_STDIN_CONTEXT:
            return _stdin_context(inv, workdir, stdin, location.path)
        case DockerfileSource.REMOTE:
            raise Refused(f"the Dockerfile {location.path} is remote",
                          why="safe-docker cannot read it before the build starts", hint=_HINT)


def _default_file(context: str) -> str:
    """The context's ``Dockerfile``, else ``dockerfile`` when only that exists (docker's
    getDockerfileRelPath and the daemon's lower-case fallback)."""
    first = os.path.join(context, DEFAULT_NAME)
    other = os.path.join(context, DEFAULT_NAME.lower())
    return other if not os.path.lexists(first) and os.path.lexists(other) else first


def _read_file(path: Path) -> bytes:
    """A regular file's first bytes (a FIFO or a device is never read: it could block, or
    give docker other bytes than it gave us)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        raise UsageError(f"cannot read the Dockerfile {path}", why=reason_of(e),
                         hint="check the -f path and the build context") from e
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UsageError(f"the Dockerfile {path} is not a regular file",
                             hint="give the Dockerfile on stdin with -f - instead")
        return handle.read(MAX_DOCKERFILE + 1)


# --------------------------------------------------------------------------- `-` contexts

_GZIP = b"\x1f\x8b\x08"
_BZIP2 = b"BZh"
_XZ = b"\xfd7zXZ\x00"
_ZSTD = b"\x28\xb5\x2f\xfd"


def _stdin_context(inv: BuildInvocation, workdir: Path, stdin: IO[bytes],
                   wanted: str | None) -> BuildInput:
    raw = workdir / STDIN_FILE
    _copy_bounded(stdin, raw)
    with raw.open("rb") as handle:
        head = handle.read(2 * ustar.BLOCK)
    buffered = raw
    if head.startswith((_GZIP, _BZIP2, _XZ)):
        buffered = workdir / "context.tar"
        _decompress(raw, buffered, head)
    elif head.startswith(_ZSTD):
        raise Refused("the build context on stdin is zstd-compressed",
                      why="safe-docker cannot read zstd to see the Dockerfile in it",
                      hint="decompress it first (zstd -dc FILE | docker build -), or "
                           + _HINT)
    elif not _is_tar(head):
        if inv.dockerfile and inv.builder is Builder.BUILDKIT:
            raise UsageError("ambiguous Dockerfile source: both stdin and flag correspond "
                             "to Dockerfiles")
        data = raw.read_bytes() if raw.stat().st_size <= MAX_DOCKERFILE else b"\x00" * (
            MAX_DOCKERFILE + 1)
        return BuildInput(InputKind.STDIN_DOCKERFILE, data, DEFAULT_NAME,
                          "the Dockerfile on stdin", buffered=raw)
    return _find_in_tar(buffered, wanted or DEFAULT_NAME)


def _copy_bounded(stream: IO[bytes], target: Path) -> None:
    size = 0
    with target.open("wb") as out:
        while chunk := stream.read(CHUNK):
            size += len(chunk)
            if size > MAX_CONTEXT:
                raise _too_large()
            out.write(chunk)


def _too_large() -> Refused:
    return Refused(f"the build context on stdin is larger than {MAX_CONTEXT // 1024**3} GiB",
                   why="safe-docker reads it whole before the build starts", hint=_HINT)


def _decompress(source: Path, target: Path, head: bytes) -> None:
    """gzip, bzip2 or xz (concatenated streams too), as docker decompresses a context;
    at most MAX_CONTEXT bytes are written, CHUNK at a time (a small input may expand a
    thousandfold)."""
    kind = "gzip" if head.startswith(_GZIP) else "bzip2" if head.startswith(_BZIP2) else "xz"
    size = 0
    with source.open("rb") as src, target.open("wb") as out:
        try:
            for data in (_gunzip(src) if kind == "gzip" else _unpack(src, kind)):
                size += len(data)
                if size > MAX_CONTEXT:
                    raise _too_large()
                out.write(data)
        except (OSError, EOFError, zlib.error, lzma.LZMAError) as e:
            raise Refused("cannot read the build context on stdin",
                          why=f"its {kind} data is damaged ({reason_of(e)})",
                          hint=_HINT) from e


def _chunks(src: IO[bytes]) -> Iterator[bytes]:
    while chunk := src.read(CHUNK):
        yield chunk


def _gunzip(src: IO[bytes]) -> Iterator[bytes]:
    decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
    fed = False
    for chunk in _chunks(src):
        data = chunk
        while data:
            fed = True
            out = decoder.decompress(data, CHUNK)
            if out:
                yield out
            if decoder.eof:  # another gzip member may follow (Go reads them all)
                data = decoder.unused_data
                decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
                fed = False
            else:
                data = decoder.unconsumed_tail
    if fed and not decoder.eof:
        raise EOFError("the compressed data ends early")


def _unpack(src: IO[bytes], kind: str) -> Iterator[bytes]:
    def new() -> bz2.BZ2Decompressor | lzma.LZMADecompressor:
        return bz2.BZ2Decompressor() if kind == "bzip2" else lzma.LZMADecompressor()

    decoder = new()
    fed = False
    for chunk in _chunks(src):
        data = chunk
        while True:
            if decoder.eof:
                data = decoder.unused_data + data
                if not data:
                    break
                decoder, fed = new(), False
            if not data and decoder.needs_input:
                break
            fed = fed or bool(data)
            out = decoder.decompress(data, CHUNK)
            data = b""
            if out:
                yield out
    if fed and not decoder.eof:
        raise EOFError("the compressed data ends early")


def _is_tar(head: bytes) -> bool:
    """docker's IsArchive for an uncompressed stream: Go's tar reader reads a header."""
    block = head[: ustar.BLOCK]
    if len(block) < ustar.BLOCK or block == b"\x00" * ustar.BLOCK:
        return False
    stored = block[148:156].split(b"\x00", 1)[0].strip(b" ")
    if not stored or any(c not in b"01234567" for c in stored):
        return False
    rest = block[:148] + block[156:]
    unsigned = sum(rest) + 8 * 32
    signed = unsigned - 256 * sum(1 for b in rest if b > 127)
    return int(stored, 8) in (unsigned, signed)


def member_name(given: str) -> str:
    """Where the builder opens ``-f NAME`` in a context: scoped to its root."""
    name = posixpath.normpath("/" + given).lstrip("/")
    if not name or name == ".":
        raise UsageError(f"invalid Dockerfile name {given!r} in the build context")
    return name


def _find_in_tar(path: Path, given: str) -> BuildInput:
    """The Dockerfile member of a strictly read tar: exactly one file of that name."""
    wanted = member_name(given)
    names = {wanted}
    if wanted == DEFAULT_NAME:
        names.add(DEFAULT_NAME.lower())
    found: dict[str, list[ustar.Member]] = {name: [] for name in names}
    data: dict[str, bytes] = {}
    limits = ustar.Limits(members=MAX_MEMBERS, member_size=MAX_CONTEXT, total=MAX_CONTEXT)
    try:
        with path.open("rb") as handle:
            reader = ustar.TarReader(handle, limits)
            while (member := reader.next()) is not None:
                if member.name in found:
                    found[member.name].append(member)
                    if member.kind is ustar.Kind.FILE and member.name not in data:
                        data[member.name] = reader.read_member(MAX_DOCKERFILE + 1) \
                            if member.size <= MAX_DOCKERFILE else b"\x00" * (
                                MAX_DOCKERFILE + 1)
    except ustar.TarFormatError as e:
        raise Refused("cannot read the build context on stdin", why=str(e),
                      hint=_HINT + "; or give a plain tar of files and directories") from e
    name = wanted if found[wanted] or wanted != DEFAULT_NAME else DEFAULT_NAME.lower()
    members = found.get(name, [])
    if not members:
        raise UsageError(f"cannot locate the Dockerfile {wanted} in the build context on stdin",
                         hint="name it with -f NAME (a path inside the archive)")
    if len(members) > 1 or members[0].kind is not ustar.Kind.FILE:
        raise Refused(f"the build context on stdin holds {name!r} more than once, or not "
                      "as a file", why="tar readers disagree on which copy counts",
                      hint="write the archive again with one Dockerfile")
    member = members[0]
    return BuildInput(InputKind.STDIN_TAR, data[name], posixpath.basename(name),
                      f"{name} in the build context on stdin", buffered=path,
                      header=member.offset - ustar.BLOCK, size=member.size)


def replace_member(source: BuildInput, data: bytes, target: Path) -> None:
    """``source``'s tar with its Dockerfile's bytes replaced by ``data`` (the header's size
    and checksum updated, every other byte of the archive as it was)."""
    if source.buffered is None or source.header is None:
        raise ValueError("not a tar context")
    old_end = source.header + ustar.BLOCK + source.size + (-source.size % ustar.BLOCK)
    with source.buffered.open("rb") as src, target.open("wb") as out:
        _copy_span(src, out, source.header)
        out.write(ustar.resized_header(src.read(ustar.BLOCK), len(data)))
        out.write(data + b"\x00" * (-len(data) % ustar.BLOCK))
        src.seek(old_end)
        while chunk := src.read(CHUNK):
            out.write(chunk)


def _copy_span(src: IO[bytes], out: IO[bytes], size: int) -> None:
    while size:
        chunk = src.read(min(CHUNK, size))
        if not chunk:
            raise ValueError("the archive is shorter than it was")
        out.write(chunk)
        size -= len(chunk)


def sibling(path: Path, suffix: str) -> Path | None:
    """``<path><suffix>`` when it is there (``Dockerfile.dockerignore``)."""
    candidate = path.with_name(path.name + suffix)
    return candidate if candidate.exists() else None
