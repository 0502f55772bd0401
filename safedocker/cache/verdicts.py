"""The verdict cache: an accepted verdict reused only while nothing it depends on changed.

Standard library only: the warm path (gate/warm.py) reads it before anything heavy is
imported. A record is stored by the full path after an online acceptance, under

* ``digest``: what the tag resolved to (an index or a manifest), and ``name``;
* a key (``w1:<sha256>``; the records of a key are one file, ``<cache_dir>/verdicts/
  <sha256>.json``, newest first, read without sqlite) over: safe-docker's version;
  the reference as written (``registry/repo:tag``); the platform choice (``--platform``,
  DOCKER_DEFAULT_PLATFORM, else the daemon's os/arch); the SAFE_DOCKER_* variables that
  change a decision; every location (config, cache, state, system dirs); and the bytes of
  every file a decision is read from: the user and system config files, the file at the
  default system location (the lock), and every file under the user and system ``keys/``
  and ``trust-roots/`` dirs. So any edit (a rule, a key removed, a root rotated, the
  system locked, even a comment) misses: a superset of "the rule as evaluated and the
  fingerprints of every key, root, Rekor key and TSA".

A record also names what is re-checked on every hit (:func:`find`):

* ``anchors``: files outside those dirs the verdict used (each key's PEM, a rule's
  ``pki_roots``/``pki_intermediates``, sigstore-python's embedded trusted root), by
  sha256;
* ``signatures``: for each repository and digest whose material was judged, the sha256
  of the ``.sig`` manifest (or none): a hit HEADs each ``.sig`` tag and must see exactly
  that digest (or still none), so a deleted, replaced or added signature misses at once.
  Verdicts that needed OCI referrers (bundles) are not stored: their listing is not
  re-checked cheaply;
* ``valid_until`` and, offline, ``material_time`` + ``offline_max_age``: the time-dependent
  checks. A verdict that compared a certificate with the current time is not stored.
"""

from __future__ import annotations

import os
import stat

from safedocker import __version__
from safedocker._internal import environment
from safedocker._internal.lean import NamedTuple, loads, sha256
from safedocker.policy.paths import CONFIG_FILE, default_system_is_locked, user_dirs

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence
    from pathlib import Path
    from typing import Protocol

    from safedocker.policy.paths import Paths

RECORD_VERSION = 1
KEY_PREFIX = "w1:"
FILES_MAX = 512  # files hashed under one dir: more is not a config dir we key on
FILE_MAX = 8 * 1024 * 1024
CANDIDATES_MAX = 8
RECORDS_DIR = "verdicts"
PLANS_DIR = "express"  # gate/express.py's plans, pruned with the records
RECORDS_FILE_MAX = 1024 * 1024
# The variables that change what is decided or how (mode, GPU), besides the locations.
DECIDING_VARIABLES = (environment.MODE, environment.GPU, environment.GPUS)


class Unkeyable(Exception):
    """An input cannot be read or is too large to hash: no record is stored or used."""


class Where(NamedTuple):
    """policy/paths.py's :class:`~safedocker.policy.paths.Paths` as strings: pathlib costs
    the warm path more than its work. :meth:`same_as` compares it with the full path's."""

    config_dir: str
    cache_dir: str
    state_dir: str
    system_config_dir: str
    ignored_system_config_dir: str | None = None

    @property
    def user_config_file(self) -> str:
        return os.path.join(self.config_dir, CONFIG_FILE)

    @property
    def system_config_file(self) -> str:
        return os.path.join(self.system_config_dir, CONFIG_FILE)

    def dirs(self) -> tuple[str, str, str, str]:
        """The dirs whose files are keyed: system and user ``keys/``, then ``trust-roots/``."""
        return (os.path.join(self.system_config_dir, "keys"),
                os.path.join(self.config_dir, "keys"),
                os.path.join(self.system_config_dir, "trust-roots"),
                os.path.join(self.config_dir, "trust-roots"))

    def same_as(self, found: Paths) -> bool:
        def same(a: str | None, b: object) -> bool:
            return (a is None) == (b is None) and (
                a is None or as_pathlib(a) == as_pathlib(str(b)))

        return len(self) == len(found) and all(
            same(a, b) for a, b in zip(self, found, strict=True))


def as_pathlib(text: str) -> str:
    """``str(pathlib.PurePosixPath(text))`` without pathlib: empty and ``.`` parts go,
    ``..`` stays. Not os.path.normpath: after a symlink, ``link/..`` is the parent of the
    link's target, so collapsing it would key (and read records beside) files the full
    path never reads."""
    root = "/" if text.startswith("/") else ""
    if text.startswith("//") and not text.startswith("///"):
        root = "//"  # POSIX leaves a leading pair to the implementation; pathlib keeps it
    return root + "/".join(p for p in text.split("/") if p not in ("", ".")) or "."


def locations(environ: Mapping[str, str] | None = None) -> Where | None:
    """Where :func:`safedocker.policy.paths.paths` puts every file, as strings: the
    variables, else :func:`~safedocker.policy.paths.user_dirs` on Linux; None elsewhere
    (the warm path is skipped, and the full path stores nothing it could not find again)."""
    env = os.environ if environ is None else environ
    defaults = user_dirs(env)
    if defaults is None:
        return None

    def pick(variable: str, default: str) -> str:
        return as_pathlib(environment.value(variable, env) or default)

    default_dir = as_pathlib(environment.DEFAULT_SYSTEM_CONFIG_DIR)
    system_dir = pick(environment.SYSTEM_CONFIG_DIR, environment.DEFAULT_SYSTEM_CONFIG_DIR)
    ignored = None
    # As paths() compares them (normpath on both), so the same variable is ignored.
    if os.path.normpath(system_dir) != os.path.normpath(default_dir) and (
            default_system_is_locked()):
        system_dir, ignored = default_dir, system_dir
    return Where(
        config_dir=pick(environment.CONFIG_DIR, defaults[0]),
        cache_dir=pick(environment.CACHE_DIR, defaults[1]),
        state_dir=pick(environment.STATE_DIR, defaults[2]),
        system_config_dir=system_dir,
        ignored_system_config_dir=ignored,
    )


def file_digest(path: str | Path) -> str | None:
    """sha256 of a file's bytes; None when it does not exist. Unkeyable when unreadable or
    not a regular file: opening a FIFO (or reading a tty) waits for a writer that may
    never come, and every file under keys/ is hashed on every intercepted command."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise Unkeyable(f"{path}: {e.strerror}") from e
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise Unkeyable(f"{path}: not a regular file")
        with open(fd, "rb", closefd=False) as f:
            data = f.read(FILE_MAX + 1)
    except OSError as e:
        raise Unkeyable(f"{path}: {e.strerror}") from e
    finally:
        os.close(fd)
    if len(data) > FILE_MAX:
        raise Unkeyable(f"{path}: too large")
    return sha256(data).hexdigest()


def _tree(directory: str) -> list[tuple[str, str | None]]:
    found: list[tuple[str, str | None]] = []
    if not os.path.exists(directory):
        return found
    for root, dirs, files in os.walk(directory, onerror=_walk_error):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(root, name)
            found.append((path, file_digest(path)))
            if len(found) > FILES_MAX:
                raise Unkeyable(f"{directory}: more than {FILES_MAX} files")
    return found


def _walk_error(error: OSError) -> None:
    raise Unkeyable(f"{error.filename}: {error.strerror}")


def inputs_digest(where: Where, environ: Mapping[str, str] | None = None) -> str:
    """The hash of everything a decision is read from (see the module's docstring), over
    the ``repr`` of tuples of strings (one text for one value, and no :mod:`json`)."""
    env = os.environ if environ is None else environ
    default_file = os.path.join(environment.DEFAULT_SYSTEM_CONFIG_DIR, CONFIG_FILE)
    parts = (
        ("version", __version__),
        ("variables", tuple((name, env.get(name, "")) for name in DECIDING_VARIABLES)),
        ("locations", (where.config_dir, where.cache_dir, where.state_dir,
                       where.system_config_dir, str(where.ignored_system_config_dir))),
        ("files", tuple((p, file_digest(p)) for p in (
            default_file, where.system_config_file, where.user_config_file))),
        ("trees", tuple(tuple(_tree(d)) for d in where.dirs())),
    )
    return sha256(repr(parts).encode()).hexdigest()


# The platform part of the key of a verdict that no platform can change: the tag named an
# image manifest (not an index), so no platform's child was chosen, and a hit still sees
# the tag name that same manifest (its digest is compared on every hit).
ANY_PLATFORM = "any"


def warm_key(inputs: str, reference: str, platform: str) -> str:
    """The store's key for one reference as written, under ``inputs``, for ``platform``."""
    return KEY_PREFIX + sha256(repr((inputs, reference, platform)).encode()).hexdigest()


# NamedTuples, not dataclasses: the dataclasses module costs the warm path too much.
class SignatureListing(NamedTuple):
    """The ``.sig`` manifest of ``name@digest`` that was judged (sha256, or None: none)."""

    name: str  # registry/repository the material came from
    digest: str
    sig_manifest: str | None


class WarmRecord(NamedTuple):
    """An accepted verdict and what a hit re-checks."""

    digest: str  # what the tag resolved to
    covered: str  # what docker is handed (repo@covered)
    config_digest: str | None
    signatures: tuple[SignatureListing, ...]
    anchors: tuple[tuple[str, str | None], ...]  # (path, sha256) of files used
    material_time: float  # when the oldest material judged was fetched
    offline_max_age: float
    valid_until: float | None  # a time-dependent check's end (None: none)
    gpu: str  # the rule's GPU mode as resolved: never | auto | always
    scheme: str  # http | https for the image's registry
    rule: str | None  # audit fields
    rule_source: str | None
    signers: tuple[str, ...]
    material: str  # sha256 over the material judged (what was evaluated)
    lines: tuple[str, ...] = ()  # `safe-docker verify`'s report of the verdict

    def to_json(self) -> dict[str, object]:
        return {
            "v": RECORD_VERSION, "digest": self.digest, "covered": self.covered,
            "config_digest": self.config_digest,
            "signatures": [[s.name, s.digest, s.sig_manifest] for s in self.signatures],
            "anchors": [list(a) for a in self.anchors], "material_time": self.material_time,
            "offline_max_age": self.offline_max_age, "valid_until": self.valid_until,
            "gpu": self.gpu, "scheme": self.scheme, "rule": self.rule,
            "rule_source": self.rule_source, "signers": list(self.signers),
            "material": self.material, "lines": list(self.lines),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> WarmRecord | None:
        """The record, or None when it is not one this version wrote."""
        try:
            if data.get("v") != RECORD_VERSION:
                return None
            signatures = tuple(SignatureListing(str(n), str(d), None if s is None else str(s))
                               for n, d, s in data["signatures"])  # type: ignore[attr-defined]
            anchors = tuple((str(p), None if h is None else str(h))
                            for p, h in data["anchors"])  # type: ignore[attr-defined]
            valid_until = data["valid_until"]
            record = cls(
                str(data["digest"]), str(data["covered"]),
                None if data["config_digest"] is None else str(data["config_digest"]),
                signatures, anchors, _number(data["material_time"]),
                _number(data["offline_max_age"]),
                None if valid_until is None else _number(valid_until),
                str(data["gpu"]), str(data["scheme"]),
                None if data["rule"] is None else str(data["rule"]),
                None if data["rule_source"] is None else str(data["rule_source"]),
                tuple(str(s) for s in data["signers"]),  # type: ignore[attr-defined]
                str(data["material"]),
                tuple(str(line) for line in data.get("lines", [])),  # type: ignore[attr-defined]
            )
        except (KeyError, TypeError, ValueError):
            return None
        return record


_INFINITY = float("inf")


def _number(value: object) -> float:
    # Not math.isfinite: math is one more module to load on a hit.
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
            -_INFINITY < value < _INFINITY):
        raise ValueError("not a finite number")
    try:
        return float(value)
    except OverflowError:  # an integer past a float's range: damaged, like any other
        raise ValueError("not a finite number") from None


if TYPE_CHECKING:
    class VerdictReader(Protocol):
        """Where records are read from (:class:`Records`; tests' fakes)."""

        def verdicts_for(self, key: str, name: str, limit: int
                         ) -> Sequence[tuple[object, Mapping[str, object]]]: ...

    class Registry(Protocol):
        """What a hit asks a registry (oci/probe.py's RegistryProbe)."""

        def manifest_digest(self, repository: str, reference: str) -> tuple[str, str] | None: ...


def _private(path: str) -> None:
    """Unkeyable unless ``path`` (when it exists) is the user's own and no one else may
    write it: a record is handed to docker without verifying anything, so one another user
    could have written (a shared SAFE_DOCKER_CACHE_DIR) must never be read."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return
    except OSError as e:
        raise Unkeyable(f"{path}: {e.strerror}") from e
    if info.st_uid != os.geteuid() or info.st_mode & 0o022:
        raise Unkeyable(f"{path}: writable by another user")


def _owned_file(path: str, limit: int) -> bytes | None:
    """The bytes of ``path`` when it is a regular file of at most ``limit`` bytes, the
    user's own and writable by no one else (not followed through a symlink); else None."""
    try:
        # O_NONBLOCK: a FIFO in its place must not hold the command until a writer comes
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if info.st_uid != os.geteuid() or info.st_mode & 0o022 or (
                info.st_size > limit) or not stat.S_ISREG(info.st_mode):
            return None
        data = os.read(fd, limit + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    return data if len(data) <= limit else None


def private_bytes(cache_dir: str, directory: str, path: str, limit: int) -> bytes | None:
    """:func:`_owned_file` of ``path`` in ``directory`` in ``cache_dir``, each of them the
    user's own and writable by no one else (Unkeyable otherwise), as records are read."""
    _private(cache_dir)
    _private(directory)
    return _owned_file(path, limit)


def records_path(cache_dir: str | Path, key: str) -> str:
    """The file of ``key``'s records: ``<cache_dir>/verdicts/<sha256>.json``."""
    hex_part = key.removeprefix(KEY_PREFIX)
    if not key.startswith(KEY_PREFIX) or len(hex_part) != 64 or not all(
            c in "0123456789abcdef" for c in hex_part):
        raise Unkeyable("not a verdict key")
    return os.path.join(cache_dir, RECORDS_DIR, hex_part + ".json")


class Records:
    """The records, one small JSON file per key (newest first), read without sqlite: a hit
    reads one file. A file is trusted only while the cache dir, the records dir and the
    file are the user's own and no one else may write them; anything unexpected reads as
    nothing (a miss)."""

    def __init__(self, cache_dir: str | Path) -> None:
        self.cache_dir = os.fspath(cache_dir)
        _private(self.cache_dir)
        _private(os.path.join(self.cache_dir, RECORDS_DIR))
        # The sha256 of each file as read (None: absent or not trusted), for the express
        # path (gate/express.py), which stands on the same bytes or misses.
        self.seen: dict[str, str | None] = {}

    def _read(self, key: str) -> bytes | None:
        try:
            path = records_path(self.cache_dir, key)
        except Unkeyable:
            return None
        data = self._bytes(path)
        self.seen[path] = None if data is None else sha256(data).hexdigest()
        return data

    @staticmethod
    def _bytes(path: str) -> bytes | None:
        return _owned_file(path, RECORDS_FILE_MAX)

    def fingerprint(self, path: str) -> str | None:
        """The sha256 of the records file at ``path`` as :meth:`verdicts_for` would read
        it now (None: absent or not trusted)."""
        data = self._bytes(path)
        return None if data is None else sha256(data).hexdigest()

    def verdicts_for(self, key: str, name: str, limit: int
                     ) -> list[tuple[object, Mapping[str, object]]]:
        data = self._read(key)
        if data is None:
            return []
        try:
            document = loads(data)
        except (ValueError, RecursionError):
            return []
        if not isinstance(document, dict) or document.get("name") != name:
            return []
        found = document.get("records")
        if not isinstance(found, list):
            return []
        return [(r.get("digest"), r) for r in found[:limit] if isinstance(r, dict)]


def offline_tag_digest(cache_dir: str | Path, name: str, tag: str) -> str | None:
    """The digest ``name:tag`` had when an image under it was last accepted here (the
    cache database's tags, read-only; sqlite is imported only offline)."""
    import sqlite3

    from safedocker._internal.minihttp import quote

    path = os.path.join(cache_dir, "cache.sqlite3")
    for part in (os.fspath(cache_dir), path, path + "-wal"):
        _private(part)
    try:
        conn = sqlite3.connect(f"file:{quote(path, '/')}?mode=ro", uri=True, timeout=2.0)
        try:
            row = conn.execute("SELECT digest FROM tags WHERE name=? AND tag=?",
                               (name, tag)).fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return None
    return row[0] if row is not None and isinstance(row[0], str) else None


def store(cache_dir: str | Path, key: str, name: str, record: WarmRecord) -> None:
    """Put ``record`` first among ``key``'s (one per digest, at most CANDIDATES_MAX),
    written atomically (mode 0600): concurrent writers each leave a whole file, and a
    record lost to a race only costs the next run the full path."""
    import json
    from pathlib import Path

    from safedocker._internal.files import atomic_write

    path = records_path(cache_dir, key)
    try:
        kept = Records(cache_dir).verdicts_for(key, name, CANDIDATES_MAX)
    except Unkeyable:
        kept = []
    records = [record.to_json()] + [
        data for digest, data in kept if digest != record.digest][:CANDIDATES_MAX - 1]
    text = json.dumps({"v": RECORD_VERSION, "name": name, "records": records},
                      separators=(",", ":"), allow_nan=False).encode()
    if len(text) > RECORDS_FILE_MAX:
        raise Unkeyable("the record is too large to store")
    directory = os.path.join(cache_dir, RECORDS_DIR)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    atomic_write(Path(path), text, mode=0o600)


def prune(cache_dir: str | Path, older_than_seconds: float, *, now: float | None = None) -> int:
    """Remove record files (and the express path's plans, gate/express.py) not written for
    ``older_than_seconds``; how many were removed."""
    import time

    cutoff = (time.time() if now is None else now) - older_than_seconds
    removed = 0
    for kind in (RECORDS_DIR, PLANS_DIR):
        directory = os.path.join(cache_dir, kind)
        try:
            names = os.listdir(directory)
        except FileNotFoundError:
            continue
        for entry in names:
            path = os.path.join(directory, entry)
            try:
                if os.lstat(path).st_mtime <= cutoff:
                    os.unlink(path)
                    removed += 1
            except FileNotFoundError:
                continue
    return removed


def usable(record: WarmRecord, now: float, *, offline: bool) -> bool:
    """The checks that depend on time and on files outside the key, on every hit."""
    if record.valid_until is not None and now >= record.valid_until:
        return False
    if record.material_time > now + 300:  # a clock moved back a lot: decide afresh
        return False
    if offline and now - record.material_time > record.offline_max_age:
        return False
    try:
        return all(file_digest(path) == digest for path, digest in record.anchors)
    except Unkeyable:
        return False


def split_name(name: str) -> tuple[str, str]:
    """``registry/repository`` → (registry, repository)."""
    registry, _, repository = name.partition("/")
    return registry, repository


def find(cache: VerdictReader, key: str | Iterable[str], name: str, tag: str, *, now: float,
         registry: Callable[[str, str], Registry] | None,
         offline_digest: str | None = None) -> WarmRecord | None:
    """The record to reuse for ``name:tag`` under ``key``, or None (take the full path).

    ``key`` may be several, tried in order until one holds a record of the digest the tag
    names now; they are computed only as far as needed (a generator), so the key that
    needs the daemon's platform is asked for only when the one that does not
    (:data:`ANY_PLATFORM`) has no record of that digest (a tag that named a plain manifest
    once and an index now still reaches the index's record). The tag is asked once.

    Online (``registry`` makes a probe for a registry host and scheme): the tag's digest
    now, from the registry, must be the record's, and every ``.sig`` listing judged must be
    unchanged. Offline (``registry`` None): ``offline_digest`` is the digest the tag had
    when last verified here, and the material's age is checked against offline_max_age.
    """
    named: dict[str, str | None] = {}  # the tag's digest now, by scheme

    def digest_now(scheme: str) -> str | None:
        if registry is None:
            return offline_digest
        if scheme not in named:
            registry_host, repository = split_name(name)
            found = registry(registry_host, scheme).manifest_digest(repository, tag)
            named[scheme] = found[0] if found is not None else None
        return named[scheme]

    record = None
    for each in ((key,) if isinstance(key, str) else key):
        rows = cache.verdicts_for(each, name, CANDIDATES_MAX)
        records = [r for r in (WarmRecord.from_json(data) for _, data in rows) if r is not None]
        if records:
            digest = digest_now(records[0].scheme)
            record = next((r for r in records if r.digest == digest), None)
            if record is not None:
                break
    if record is None or not usable(record, now, offline=registry is None):
        return None
    if registry is not None and not signatures_unchanged(record, registry):
        return None
    return record


def signature_tags(record: WarmRecord) -> list[tuple[str, str, str, str | None]]:
    """(registry, repository, ``.sig`` tag, its manifest's sha256 hex or None) of every
    listing the record was judged on: what a hit asks again."""
    found = []
    for listing in record.signatures:
        host, repository = split_name(listing.name)
        found.append((host, repository, listing.digest.replace(":", "-", 1) + ".sig",
                      listing.sig_manifest))
    return found


def listing_unchanged(expected: str | None, seen: tuple[str, str] | None) -> bool:
    """Whether a ``.sig`` tag's HEAD now (``seen``) names the manifest judged (or still
    none)."""
    return (seen[0].removeprefix("sha256:") if seen is not None else None) == expected


def signatures_unchanged(record: WarmRecord, registry: Callable[[str, str], Registry]) -> bool:
    """Whether every ``.sig`` listing the record was judged on is as it was then."""
    return all(
        listing_unchanged(expected, registry(host, record.scheme).manifest_digest(
            repository, sig_tag))
        for host, repository, sig_tag, expected in signature_tags(record))


def material_digest(blobs: Sequence[bytes]) -> str:
    h = sha256()
    for blob in blobs:
        h.update(sha256(blob).digest())
    return h.hexdigest()
