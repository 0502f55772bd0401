"""What a cache row may hold: names, tags, digests, sizes, times and hashes, checked on the
way in (a refusal is a :class:`CacheError`) and on the way out (a :class:`BadRow`, removed
and reported as absent by the store)."""

from __future__ import annotations

import contextlib
import math
import re

from safedocker.errors import CacheError, SafeDockerError
from safedocker.reference import Digest

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

MAX_ROW_BYTES = 8 * 1024 * 1024  # largest blob or verdict stored in one row

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/\[\]-]{0,511}$")
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$", re.ASCII)
_KIND_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+/:=-]{0,254}$")
_MEDIA_TYPE_RE = re.compile(r"^[\x21-\x7e]{0,255}$")
_POLICY_HASH_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9:._+-]{0,254}$")


class BadRow(Exception):
    """A row read back from the database failed a type, size or hash check."""


def refuse(what: str, why: str) -> CacheError:
    return CacheError(what, why=why)


def check_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise refuse("invalid repository name for the cache", f"{name!r}")
    return name


def check_tag(tag: object) -> str:
    if not isinstance(tag, str) or not _TAG_RE.match(tag):
        raise refuse("invalid tag for the cache", f"{tag!r}")
    return tag


def check_kind(kind: object) -> str:
    if not isinstance(kind, str) or not _KIND_RE.match(kind):
        raise refuse("invalid material kind for the cache", f"{kind!r}")
    return kind


def check_media_type(media_type: object) -> str:
    if not isinstance(media_type, str) or not _MEDIA_TYPE_RE.match(media_type):
        raise refuse("invalid media type for the cache", f"{media_type!r}")
    return media_type


def check_digest(digest: object) -> Digest:
    text = str(digest) if isinstance(digest, Digest) else digest
    if not isinstance(text, str):
        raise refuse("invalid digest for the cache", f"{digest!r}")
    try:
        return Digest.parse(text)
    except SafeDockerError as e:
        raise refuse("invalid digest for the cache", e.why or e.what) from e


def check_blob(data: object, what: str) -> bytes:
    if isinstance(data, memoryview):
        data = data.tobytes()
    if not isinstance(data, (bytes, bytearray)):
        raise refuse(f"invalid {what} for the cache", "expected bytes")
    if len(data) > MAX_ROW_BYTES:
        raise refuse(
            f"{what} too large for the cache",
            f"{len(data)} bytes, at most {MAX_ROW_BYTES}",
        )
    return bytes(data)


def check_time(value: object, what: str = "timestamp") -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise refuse(f"invalid {what} for the cache", f"{value!r}")
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise refuse(f"invalid {what} for the cache", f"{value!r}")
    return number


def check_hash(digest: Digest, data: bytes, what: str) -> None:
    if not digest.matches(data):
        raise refuse(
            f"refusing to cache {what} {digest}",
            "its bytes do not hash to that digest",
        )


@contextlib.contextmanager
def untrusted() -> Iterator[None]:
    """Checks of a row read back: any failure makes it a :class:`BadRow`."""
    try:
        yield
    except SafeDockerError as e:
        raise BadRow(e.why or e.what) from e


def row_blob(value: object) -> bytes:
    if not isinstance(value, bytes):
        raise BadRow("stored data is not a blob")
    with untrusted():
        return check_blob(value, "data")


