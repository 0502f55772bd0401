"""The audit log's file: JSON lines appended under a shared lock, rotated past a size.

Standard library only, and little of it: the express path (gate/express.py) writes its
audit line through this module alone, without :mod:`json`, :mod:`re` or the audit module's
summarizing (the line's body was written by :mod:`safedocker.audit` when the decision was
first made). Every line starts with when, who and which process.
"""

from __future__ import annotations

import fcntl
import os
import pwd
import time

from safedocker._internal.files import flock_within

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import TracebackType

# The audit log's file and its rotation (audit.AuditLog's defaults; the express path writes
# the same file without importing the audit module).
AUDIT_NAME = "audit.jsonl"
AUDIT_MAX_BYTES = 5 * 1024 * 1024
AUDIT_BACKUPS = 3


def utc_now() -> str:
    """The current UTC time, to the millisecond, as ISO 8601 with ``Z`` (the audit log's
    form), without importing datetime."""
    seconds, nanoseconds = divmod(time.time_ns(), 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + (
        f".{nanoseconds // 1_000_000:03d}Z")


def user_name() -> str:
    uid = os.getuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def json_string(text: str) -> str:
    """``json.dumps(text)`` (ASCII, as the audit log writes every string)."""
    try:
        from _json import encode_basestring_ascii  # type: ignore[attr-defined, unused-ignore]
    except ImportError:
        from json import dumps

        return dumps(text)
    return encode_basestring_ascii(text)


def stamped(body: str, user: str | None = None) -> bytes:
    """One line: ``{"time":…,"user":…,"pid":…`` then ``body``, the rest of a JSON object
    (``,"key":value…}``) or ``}``; ``user`` is :func:`user_name`'s, when looked up before."""
    who = user_name() if user is None else user
    head = f'{{"time":"{utc_now()}","user":{json_string(who)},"pid":{os.getpid()}'
    return (head + body + "\n").encode("utf-8")


class Locked:
    """flock on ``<log>.lock`` for the span of a ``with`` (bounded: TimeoutError is an
    OSError, as callers expect)."""

    def __init__(self, path: str, mode: int) -> None:
        self.path = path
        self.mode = mode
        self.fd = -1

    def __enter__(self) -> None:
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                          0o600)
        try:
            flock_within(self.fd, self.mode)
        except BaseException:
            os.close(self.fd)
            raise

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        os.close(self.fd)


class RotatingLog:
    """``<directory>/<name>``, rotated to ``.1`` … ``.backups`` past ``max_bytes``."""

    def __init__(self, directory: str, name: str, max_bytes: int, backups: int) -> None:
        self.directory = directory
        self.name = name
        self.max_bytes = max_bytes
        self.backups = backups

    @property
    def current(self) -> str:
        return os.path.join(self.directory, self.name)

    def backup(self, index: int) -> str:
        return os.path.join(self.directory, f"{self.name}.{index}")

    def locked(self, mode: int) -> Locked:
        return Locked(os.path.join(self.directory, f"{self.name}.lock"), mode)

    def size(self) -> int:
        try:
            return os.stat(self.current).st_size
        except FileNotFoundError:
            return 0

    def append(self, line: bytes) -> None:
        """Append one whole line (rotating first when it would pass ``max_bytes``); raises
        OSError when the directory or the file cannot be written."""
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        if self.size() + len(line) > self.max_bytes:
            with self.locked(fcntl.LOCK_EX):
                if self.size() + len(line) > self.max_bytes and self.size() > 0:
                    self.rotate()
        with self.locked(fcntl.LOCK_SH):
            fd = os.open(self.current,
                         os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                         0o600)
            try:
                if os.fstat(fd).st_mode & 0o077:
                    try:
                        os.fchmod(fd, 0o600)
                    except OSError:
                        pass  # not ours to change: the line is still written
                written = os.write(fd, line)
                if written != len(line):  # only on a full disk; finish the line anyway
                    os.write(fd, line[written:])
            finally:
                os.close(fd)

    def rotate(self) -> None:
        """Shift ``.i`` to ``.i+1`` (dropping the oldest), current to ``.1``; caller locks."""
        if self.backups == 0:
            _gone(os.unlink, self.current)
            return
        _gone(os.unlink, self.backup(self.backups))
        for index in range(self.backups - 1, 0, -1):
            _gone(os.replace, self.backup(index), self.backup(index + 1))
        _gone(os.replace, self.current, self.backup(1))


def _gone(operation: object, *paths: str) -> None:
    try:
        operation(*paths)  # type: ignore[operator]
    except FileNotFoundError:
        pass  # another process rotated it first
