"""Files written so that readers see the old or the new content, never a mix; durable
directory entries."""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path


def atomic_write(path: str | os.PathLike[str], data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` so readers see the old or the new file, never a mix.

    The temporary file beside it is made as tempfile.mkstemp makes one (a random name,
    O_EXCL, 0600) without importing tempfile or pathlib: the warm path writes a plan."""
    target = os.fspath(path)
    directory = os.path.dirname(target) or "."
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, f".{os.path.basename(target)}.{os.urandom(8).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass  # already gone
        raise


def fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable (best effort: not every file system can)."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


LOCK_WAIT = 10.0  # seconds another process may hold a lock we need


def _try_flock(fd: int, mode: int) -> bool:
    import fcntl

    try:
        fcntl.flock(fd, mode | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def flock_within(fd: int, mode: int, seconds: float = LOCK_WAIT) -> None:
    """``fcntl.flock(fd, mode)`` that gives up after ``seconds`` (TimeoutError, an
    OSError): a process that holds the lock for ever cannot hold us too."""
    import time

    deadline = time.monotonic() + seconds
    pause = 0.0005  # short first: locks are mostly held for a moment
    while not _try_flock(fd, mode):
        if time.monotonic() >= deadline:
            raise TimeoutError(f"a lock is held by another process for over {seconds:g} s")
        time.sleep(pause)
        pause = min(pause * 2, 0.02)
