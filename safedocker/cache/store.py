"""The verification cache: an embedded sqlite store of facts and raw material.

Airgapped workstations and GPU nodes behind a flaky link keep working from what was
fetched before. The cache never says "this is trusted" on its own authority: it keeps
tag → digest mappings, raw signature material, manifests and configs (both checked
against their digests on the way in and on the way out). Verdicts are not kept here: the
verdict cache is :mod:`safedocker.cache.verdicts` (small files a warm hit reads without
sqlite); the ``verdicts`` table of earlier versions is only emptied by ``prune``. The
caller re-verifies raw material against
the current trust store before relying on it. The export/import file is
:mod:`safedocker.cache.transfer`'s.

One file, ``<cache_dir>/cache.sqlite3``, in WAL mode, shared by many concurrent
safe-docker processes: transactions are short, writes take ``BEGIN IMMEDIATE`` and
``database is locked`` is retried. A file that is not a database, fails
``quick_check``, or has a schema newer than this code understands is moved aside
(``cache.sqlite3.corrupt-<timestamp>`` / ``cache.sqlite3.newer-<timestamp>``) and an
empty cache is built in its place. No sqlite error reaches the caller: what cannot be
recovered becomes a :class:`~safedocker.errors.CacheError`.

Everything read back is treated as untrusted input: types, sizes and hashes are
checked, and a row that fails is removed and reported as absent.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import random
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from safedocker._internal.files import flock_within
from safedocker.cache.rows import (
    BadRow,
    check_blob,
    check_digest,
    check_hash,
    check_kind,
    check_media_type,
    check_name,
    check_tag,
    check_time,
    row_blob,
    untrusted,
)
from safedocker.errors import CacheError, SafeDockerError, reason_of

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from types import TracebackType

    from safedocker.reference import Digest

log = logging.getLogger(__name__)

DB_NAME = "cache.sqlite3"
LOCK_NAME = "cache.lock"
SCHEMA_VERSION = 1
BUSY_TIMEOUT_S = 10.0  # sqlite's own wait for a lock
LOCK_RETRY_S = 30.0  # our wait, on top, when sqlite still answers "locked"

_TABLES = frozenset({"tags", "material", "manifests", "configs", "verdicts", "memos"})
_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS tags(
        name TEXT NOT NULL, tag TEXT NOT NULL, digest TEXT NOT NULL, seen_at REAL NOT NULL,
        PRIMARY KEY(name, tag))""",
    """CREATE TABLE IF NOT EXISTS material(
        name TEXT NOT NULL, digest TEXT NOT NULL, kind TEXT NOT NULL, data BLOB NOT NULL,
        fetched_at REAL NOT NULL, PRIMARY KEY(name, digest, kind))""",
    """CREATE TABLE IF NOT EXISTS manifests(
        digest TEXT PRIMARY KEY, media_type TEXT NOT NULL, data BLOB NOT NULL,
        fetched_at REAL NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS configs(
        digest TEXT PRIMARY KEY, data BLOB NOT NULL, fetched_at REAL NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS verdicts(
        digest TEXT NOT NULL, policy_hash TEXT NOT NULL, name TEXT NOT NULL,
        data TEXT NOT NULL, decided_at REAL NOT NULL,
        PRIMARY KEY(digest, policy_hash, name))""",
    # Where to look first at a registry (cache/memos.py); never what to decide.
    """CREATE TABLE IF NOT EXISTS memos(
        subject TEXT NOT NULL, fact TEXT NOT NULL, noted_at REAL NOT NULL,
        PRIMARY KEY(subject, fact))""",
)

_T = TypeVar("_T")


# ----------------------------------------------------------------------------- records


@dataclass(frozen=True)
class TagRecord:
    """``name:tag`` pointed at ``digest`` when last seen (a fact, not a verdict)."""

    name: str  # "docker.io/library/ubuntu"
    tag: str
    digest: Digest
    seen_at: float  # unix time


@dataclass(frozen=True)
class MaterialRecord:
    """Opaque signature material for ``name@digest`` (a .sig manifest and blobs, a bundle)."""

    name: str
    digest: Digest
    kind: str
    data: bytes
    fetched_at: float


@dataclass(frozen=True)
class ManifestRecord:
    """Manifest bytes that hash to ``digest`` (checked on put and on get)."""

    digest: Digest
    media_type: str
    data: bytes
    fetched_at: float


@dataclass(frozen=True)
class ConfigRecord:
    """Image config bytes that hash to ``digest`` (checked on put and on get)."""

    digest: Digest
    data: bytes
    fetched_at: float


@dataclass(frozen=True)
class CacheEntry:
    """One line of ``safe-docker cache list``; ``tag`` is None for digest-only material."""

    name: str
    tag: str | None
    digest: Digest
    seen_at: float
    has_material: bool


# ----------------------------------------------------------------------- sqlite errors


class _Unusable(Exception):
    """The database file cannot be used as it is: move it aside and rebuild."""

    def __init__(self, reason: str, suffix: str = "corrupt") -> None:
        super().__init__(reason)
        self.reason = reason
        self.suffix = suffix


_LOCKED_CODES = {5, 6}  # SQLITE_BUSY, SQLITE_LOCKED
_CORRUPT_CODES = {11, 26}  # SQLITE_CORRUPT, SQLITE_NOTADB
_ENV_CODES = {8, 10, 13, 14, 23}  # READONLY, IOERR, FULL, CANTOPEN, AUTH


def _code(e: sqlite3.Error) -> int | None:
    code = getattr(e, "sqlite_errorcode", None)  # Python 3.11+
    return code & 0xFF if isinstance(code, int) else None


def _is_locked(e: sqlite3.Error) -> bool:
    code = _code(e)
    if code is not None:
        return code in _LOCKED_CODES
    text = str(e).lower()
    return "locked" in text or "busy" in text


def _is_environment(e: sqlite3.Error) -> bool:
    """Errors a rebuild cannot fix: unwritable directory, full disk, I/O failure."""
    code = _code(e)
    if code is not None:
        return code in _ENV_CODES
    text = str(e).lower()
    return any(
        word in text
        for word in ("readonly", "read-only", "unable to open", "disk i/o", "disk is full")
    )


def _is_corrupt(e: sqlite3.Error) -> bool:
    code = _code(e)
    if code is not None and code in _CORRUPT_CODES:
        return True
    text = str(e).lower()
    return (
        "not a database" in text
        or "malformed" in text
        or "no such table" in text
        or "no such column" in text
    )


# ------------------------------------------------------------------------------ cache


class Cache:
    """The verification cache in ``cache_dir``; open with :meth:`open`, use as a context."""

    def __init__(self, cache_dir: Path, *, _conn: sqlite3.Connection | None = None) -> None:
        self._dir = Path(cache_dir)
        self._path = self._dir / DB_NAME
        self._conn = _conn
        # One connection, used by one thread at a time: the images of one command are
        # verified side by side (gate/decide.py), and each may read and write here.
        self._lock = threading.RLock()

    # ---------------------------------------------------------------- open and close

    @classmethod
    def open(cls, cache_dir: Path) -> Cache:
        """Open (creating if needed, rebuilding if unusable) the cache in ``cache_dir``."""
        cache = cls(cache_dir)
        try:
            cache._dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as e:
            raise CacheError(
                f"cannot create the cache directory {cache._dir}",
                why=e.strerror or str(e),
                hint="set SAFE_DOCKER_CACHE_DIR to a writable directory",
            ) from e
        cache._conn = cache._open_db()
        return cache

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(sqlite3.Error):
                conn.close()

    def __enter__(self) -> Cache:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _environment_error(self, e: BaseException) -> CacheError:
        return CacheError(
            f"cannot use the cache at {self._path}",
            why=reason_of(e, "the database failed"),
            hint="check that the cache directory is writable and the disk is not full, "
            "or set SAFE_DOCKER_CACHE_DIR",
        )

    def _connect(self) -> sqlite3.Connection:
        """Connect and set up one connection; raises sqlite3 errors and :class:`_Unusable`."""
        try:
            fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except OSError as e:
            raise self._environment_error(e) from e
        os.close(fd)
        conn = sqlite3.connect(
            str(self._path), timeout=BUSY_TIMEOUT_S, isolation_level=None, cached_statements=64,
            check_same_thread=False,  # shared under self._lock
        )
        try:
            self._setup(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _setup(self, conn: sqlite3.Connection) -> None:
        conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
        conn.execute("PRAGMA trusted_schema=OFF")
        conn.execute("PRAGMA cell_size_check=ON")
        version = self._user_version(conn)  # first read: "not a database" surfaces here
        if version > SCHEMA_VERSION:
            raise _Unusable(f"schema version {version} is newer than {SCHEMA_VERSION}", "newer")
        mode = _retry_locked(lambda: conn.execute("PRAGMA journal_mode").fetchone())
        if not mode or str(mode[0]).lower() != "wal":
            _retry_locked(lambda: conn.execute("PRAGMA journal_mode=WAL").fetchone())
        conn.execute("PRAGMA synchronous=NORMAL")
        if version == SCHEMA_VERSION and self._has_tables(conn):
            return
        _retry_locked(lambda: conn.execute("BEGIN IMMEDIATE"))
        try:
            version = self._user_version(conn)
            if version > SCHEMA_VERSION:
                raise _Unusable(f"schema version {version} is newer than {SCHEMA_VERSION}", "newer")
            if version not in (0, SCHEMA_VERSION):
                raise _Unusable(f"unknown schema version {version}", "old")
            for statement in _SCHEMA:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise
        if not self._has_tables(conn):
            raise _Unusable("tables missing after creation")

    @staticmethod
    def _user_version(conn: sqlite3.Connection) -> int:
        row = _retry_locked(lambda: conn.execute("PRAGMA user_version").fetchone())
        value = row[0] if row else 0
        return value if isinstance(value, int) else 0

    @staticmethod
    def _has_tables(conn: sqlite3.Connection) -> bool:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall()
        return _TABLES <= {row[0] for row in rows}

    def _open_db(self) -> sqlite3.Connection:
        try:
            return self._connect()
        except _Unusable as e:
            return self._rebuild(e)
        except sqlite3.Error as e:
            if _is_environment(e) or _is_locked(e):
                raise self._environment_error(e) from e
            return self._rebuild(_Unusable(str(e)))

    @contextlib.contextmanager
    def _recovery_lock(self) -> Iterator[None]:
        """Serialize move-aside-and-rebuild across processes."""
        try:
            fd = os.open(
                self._dir / LOCK_NAME,
                os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                0o600,
            )
        except OSError as e:
            raise self._environment_error(e) from e
        try:
            try:
                flock_within(fd, fcntl.LOCK_EX)
            except TimeoutError as e:
                raise self._environment_error(e) from e
            yield
        finally:
            os.close(fd)  # releases the lock

    def _rebuild(self, cause: _Unusable) -> sqlite3.Connection:
        """Move the unusable file aside and build an empty cache (once, across processes)."""
        self.close()
        with self._recovery_lock():
            # Another process may have rebuilt it while we waited for the lock.
            try:
                conn = self._connect()
            except _Unusable as e:
                cause = e
            except sqlite3.Error as e:
                if _is_environment(e) or _is_locked(e):
                    raise self._environment_error(e) from e
            else:
                if _quick_check_ok(conn):
                    return conn
                conn.close()
            self._move_aside(cause)
            try:
                return self._connect()
            except (_Unusable, sqlite3.Error) as e:
                raise self._environment_error(e) from e

    def _move_aside(self, cause: _Unusable) -> None:
        now = time.time()
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f".{int(now % 1 * 1e6):06d}Z"
        target = self._path.with_name(f"{DB_NAME}.{cause.suffix}-{stamp}")
        if target.exists():
            target = target.with_name(f"{target.name}-{os.getpid()}")
        self._replace_if_present(self._path, target)
        for side in ("-wal", "-shm"):
            self._replace_if_present(Path(f"{self._path}{side}"), Path(f"{target}{side}"))
        log.warning(
            "the cache %s was unusable (%s); moved it to %s and started an empty one",
            self._path,
            cause.reason,
            target.name,
        )

    def _replace_if_present(self, source: Path, target: Path) -> None:
        try:
            os.replace(source, target)
        except FileNotFoundError:
            return
        except OSError as e:
            raise self._environment_error(e) from e

    # ------------------------------------------------------------- running statements

    def _run(self, op: Callable[[sqlite3.Connection], _T], *, begin: str | None) -> _T:
        """Run ``op`` in a transaction (``begin``: "IMMEDIATE" for writes, "DEFERRED" for
        consistent multi-statement reads, None for one statement), retrying on locks and
        rebuilding once on corruption; one thread at a time."""
        with self._lock:
            return self._run_locked(op, begin=begin)

    def _run_locked(self, op: Callable[[sqlite3.Connection], _T], *, begin: str | None
                    ) -> _T:
        recovered = False
        deadline = time.monotonic() + LOCK_RETRY_S
        attempt = 0
        while True:
            conn = self._conn
            if conn is None:
                raise CacheError("the cache is closed", why="used after close()")
            try:
                if begin is None:
                    return op(conn)
                conn.execute(f"BEGIN {begin}")
                try:
                    result = op(conn)
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        with contextlib.suppress(sqlite3.Error):
                            conn.execute("ROLLBACK")
                    raise
                return result
            except sqlite3.Error as e:
                if _is_locked(e):
                    if time.monotonic() < deadline:
                        attempt += 1
                        _backoff(attempt)
                        continue
                    raise CacheError(
                        f"the cache at {self._path} stayed locked",
                        why=str(e),
                        hint="another safe-docker process holds it; try again",
                    ) from e
                if _is_environment(e) or recovered:
                    raise self._environment_error(e) from e
                if not _is_corrupt(e) and _quick_check_ok(conn):
                    raise self._environment_error(e) from e
                recovered = True
                self._conn = self._rebuild(_Unusable(str(e)))

    def _read(self, op: Callable[[sqlite3.Connection], _T], *, snapshot: bool = False) -> _T:
        return self._run(op, begin="DEFERRED" if snapshot else None)

    def _write(self, op: Callable[[sqlite3.Connection], _T]) -> _T:
        return self._run(op, begin="IMMEDIATE")

    def snapshot(self, op: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run ``op`` over one consistent read transaction (an export)."""
        return self._read(op, snapshot=True)

    def transaction(self, op: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run ``op`` in one write transaction: all of it or nothing (an import)."""
        return self._write(op)

    def _discard(self, sql: str, params: tuple[object, ...], what: str, why: str) -> None:
        """Remove a row that failed its checks on the way out (best effort)."""
        log.warning("discarding cached %s: %s", what, why)
        with contextlib.suppress(CacheError):
            self._write(lambda c: c.execute(sql, params))

    # --------------------------------------------------------------------------- tags

    def record_tag(
        self, name: str, tag: str, digest: Digest | str, seen_at: float | None = None
    ) -> None:
        """Remember that ``name:tag`` pointed at ``digest`` (at ``seen_at``, default now)."""
        name, tag, d = check_name(name), check_tag(tag), check_digest(digest)
        when = check_time(time.time() if seen_at is None else seen_at)
        self._write(
            lambda c: c.execute(
                "INSERT INTO tags(name, tag, digest, seen_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(name, tag) DO UPDATE SET digest=excluded.digest, "
                "seen_at=excluded.seen_at",
                (name, tag, str(d), when),
            )
        )

    def lookup_tag(self, name: str, tag: str) -> TagRecord | None:
        name, tag = check_name(name), check_tag(tag)
        row = self._read(
            lambda c: c.execute(
                "SELECT digest, seen_at FROM tags WHERE name=? AND tag=?", (name, tag)
            ).fetchone()
        )
        if row is None:
            return None
        try:
            with untrusted():
                return TagRecord(name, tag, check_digest(row[0]), check_time(row[1]))
        except BadRow as e:
            self._discard(
                "DELETE FROM tags WHERE name=? AND tag=?", (name, tag), f"tag {name}:{tag}", str(e)
            )
            return None

    # ----------------------------------------------------------------------- material

    def put_material(self, name: str, digest: Digest | str, kind: str, data: bytes) -> None:
        """Store opaque signature material for ``name@digest`` (replacing that kind)."""
        name, d, kind = check_name(name), check_digest(digest), check_kind(kind)
        blob = check_blob(data, "signature material")
        now = time.time()
        self._write(
            lambda c: c.execute(
                "INSERT OR REPLACE INTO material(name, digest, kind, data, fetched_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (name, str(d), kind, blob, now),
            )
        )

    def get_material(self, name: str, digest: Digest | str, kind: str) -> MaterialRecord | None:
        name, d, kind = check_name(name), check_digest(digest), check_kind(kind)
        row = self._read(
            lambda c: c.execute(
                "SELECT data, fetched_at FROM material WHERE name=? AND digest=? AND kind=?",
                (name, str(d), kind),
            ).fetchone()
        )
        if row is None:
            return None
        try:
            with untrusted():
                return MaterialRecord(name, d, kind, row_blob(row[0]), check_time(row[1]))
        except BadRow as e:
            self._discard(
                "DELETE FROM material WHERE name=? AND digest=? AND kind=?",
                (name, str(d), kind),
                f"{kind} material for {name}@{d}",
                str(e),
            )
            return None

    # -------------------------------------------------------------- manifests, configs

    def put_manifest(self, digest: Digest | str, media_type: str, data: bytes) -> None:
        """Store manifest bytes; refused (CacheError) unless they hash to ``digest``."""
        d, media_type = check_digest(digest), check_media_type(media_type)
        blob = check_blob(data, "manifest")
        check_hash(d, blob, "manifest")
        now = time.time()
        self._write(
            lambda c: c.execute(
                "INSERT OR REPLACE INTO manifests(digest, media_type, data, fetched_at) "
                "VALUES (?, ?, ?, ?)",
                (str(d), media_type, blob, now),
            )
        )

    def get_manifest(self, digest: Digest | str) -> ManifestRecord | None:
        d = check_digest(digest)
        row = self._read(
            lambda c: c.execute(
                "SELECT media_type, data, fetched_at FROM manifests WHERE digest=?", (str(d),)
            ).fetchone()
        )
        if row is None:
            return None
        try:
            with untrusted():
                media_type = check_media_type(row[0])
                blob = row_blob(row[1])
                check_hash(d, blob, "manifest")
                return ManifestRecord(d, media_type, blob, check_time(row[2]))
        except BadRow as e:
            self._discard(
                "DELETE FROM manifests WHERE digest=?", (str(d),), f"manifest {d}", str(e)
            )
            return None

    def put_config(self, digest: Digest | str, data: bytes) -> None:
        """Store image config bytes; refused (CacheError) unless they hash to ``digest``."""
        d = check_digest(digest)
        blob = check_blob(data, "image config")
        check_hash(d, blob, "image config")
        now = time.time()
        self._write(
            lambda c: c.execute(
                "INSERT OR REPLACE INTO configs(digest, data, fetched_at) VALUES (?, ?, ?)",
                (str(d), blob, now),
            )
        )

    def get_config(self, digest: Digest | str) -> ConfigRecord | None:
        d = check_digest(digest)
        row = self._read(
            lambda c: c.execute(
                "SELECT data, fetched_at FROM configs WHERE digest=?", (str(d),)
            ).fetchone()
        )
        if row is None:
            return None
        try:
            with untrusted():
                blob = row_blob(row[0])
                check_hash(d, blob, "image config")
                return ConfigRecord(d, blob, check_time(row[1]))
        except BadRow as e:
            self._discard(
                "DELETE FROM configs WHERE digest=?", (str(d),), f"image config {d}", str(e)
            )
            return None

    def entries(self) -> list[CacheEntry]:
        """Tag mappings (and digests with material but no tag), sorted by name and tag."""
        rows = self._read(
            lambda c: c.execute(
                "SELECT t.name, t.tag, t.digest, t.seen_at, EXISTS("
                "  SELECT 1 FROM material m WHERE m.name = t.name AND m.digest = t.digest) "
                "FROM tags t "
                "UNION ALL "
                "SELECT m.name, NULL, m.digest, MAX(m.fetched_at), 1 FROM material m "
                "WHERE NOT EXISTS (SELECT 1 FROM tags t "
                "  WHERE t.name = m.name AND t.digest = m.digest) "
                "GROUP BY m.name, m.digest"
            ).fetchall(),
            snapshot=True,
        )
        out: list[CacheEntry] = []
        for name, tag, digest, seen_at, has_material in rows:
            with contextlib.suppress(BadRow), untrusted():
                out.append(
                    CacheEntry(
                        check_name(name),
                        None if tag is None else check_tag(tag),
                        check_digest(digest),
                        check_time(seen_at),
                        bool(has_material),
                    )
                )
        out.sort(key=lambda e: (e.name, e.tag is None, e.tag or "", str(e.digest)))
        return out

    def prune(self, older_than_seconds: float, *, now: float | None = None) -> int:
        """Remove rows older than ``older_than_seconds`` (and rows with no valid time).

        Returns how many rows were removed.
        """
        age = check_time(older_than_seconds, "age")
        cutoff = (time.time() if now is None else now) - age
        statements = (
            "DELETE FROM tags WHERE typeof(seen_at) NOT IN ('real', 'integer') OR seen_at < ?",
            "DELETE FROM material "
            "WHERE typeof(fetched_at) NOT IN ('real', 'integer') OR fetched_at < ?",
            "DELETE FROM manifests "
            "WHERE typeof(fetched_at) NOT IN ('real', 'integer') OR fetched_at < ?",
            "DELETE FROM configs "
            "WHERE typeof(fetched_at) NOT IN ('real', 'integer') OR fetched_at < ?",
            "DELETE FROM verdicts "
            "WHERE typeof(decided_at) NOT IN ('real', 'integer') OR decided_at < ?",
            "DELETE FROM memos WHERE typeof(noted_at) NOT IN ('real', 'integer') OR noted_at < ?",
        )

        def op(c: sqlite3.Connection) -> int:
            return sum(c.execute(sql, (cutoff,)).rowcount for sql in statements)

        return self._write(op)

# ---------------------------------------------------------------------- best effort


def open_best_effort(cache_dir: Path) -> Cache | None:
    """The verification cache, or None (logged): without it verification still works online."""
    try:
        return Cache.open(cache_dir)
    except SafeDockerError as e:
        log.warning("verification cache unavailable: %s", e.what)
        return None


def recall(cache: Cache | None, read: Callable[[Cache], _T]) -> _T | None:
    """``read(cache)``, or None when there is no cache or it fails: never a decision."""
    if cache is None:
        return None
    try:
        return read(cache)
    except SafeDockerError as e:
        log.warning("could not read the cache: %s", e.what)
        return None


def remember(cache: Cache | None, write: Callable[[Cache], object]) -> None:
    """``write(cache)``, best effort: a cache that cannot be written is logged, not fatal."""
    if cache is None:
        return
    try:
        write(cache)
    except SafeDockerError as e:
        log.warning("could not update the cache: %s", e.what)


# ------------------------------------------------------------------------------ helpers


def _retry_locked(op: Callable[[], _T]) -> _T:
    """Retry a statement that sqlite answered with "locked" (setup only)."""
    deadline = time.monotonic() + LOCK_RETRY_S
    attempt = 0
    while True:
        try:
            return op()
        except sqlite3.OperationalError as e:  # noqa: PERF203 - a retry loop
            if not _is_locked(e) or time.monotonic() >= deadline:
                raise
            attempt += 1
            _backoff(attempt)


def _backoff(attempt: int) -> None:
    # Jitter only spreads contending processes apart; it is not a security measure.
    time.sleep(min(0.2, 0.005 * 2 ** min(attempt, 6)) * (0.5 + random.random()))  # noqa: S311


def _quick_check_ok(conn: sqlite3.Connection) -> bool:
    try:
        rows = conn.execute("PRAGMA quick_check").fetchall()
    except sqlite3.Error:
        return False
    return [tuple(r) for r in rows] == [("ok",)]


