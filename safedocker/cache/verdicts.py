"""The verdict cache: an accepted verdict reused only while nothing it depends on changed.

Standard library only: the warm path (gate/warm.py) reads it before anything heavy is
imported. A record is stored by the full path after an online acceptance, under

* ``digest``: what the tag resolved to (an index or a manifest), and ``name``;
* a key (the store's ``policy_hash`` column, ``w1:<sha256>``) over: safe-docker's version;
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

import hashlib
import json
import math
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, Protocol

from safedocker import __version__
from safedocker._internal import environment
from safedocker.policy.paths import APP_NAME, Paths, default_system_is_locked

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from safedocker.cache.store import Cache

RECORD_VERSION = 1
KEY_PREFIX = "w1:"
FILES_MAX = 512  # files hashed under one dir: more is not a config dir we key on
FILE_MAX = 8 * 1024 * 1024
CANDIDATES_MAX = 8
# The variables that change what is decided or how (mode, GPU), besides the locations.
DECIDING_VARIABLES = (environment.MODE, environment.GPU, environment.GPUS)


class Unkeyable(Exception):
    """An input cannot be read or is too large to hash: no record is stored or used."""


def locations(environ: Mapping[str, str] | None = None) -> Paths | None:
    """Where :func:`safedocker.policy.paths.paths` puts every file, without platformdirs:
    the variables, else the XDG defaults on Linux; None elsewhere (the warm path is
    skipped, and the full path stores nothing it could not find again)."""
    env = os.environ if environ is None else environ
    if sys.platform != "linux":
        return None
    home = env.get("HOME") or os.path.expanduser("~")

    def xdg(variable: str, fallback: str) -> str:
        chosen = env.get(variable, "")
        return chosen if os.path.isabs(chosen) else os.path.join(home, fallback)

    def pick(variable: str, default: str) -> Path:
        return Path(environment.value(variable, env) or default)

    default_dir = Path(environment.DEFAULT_SYSTEM_CONFIG_DIR)
    system_dir = pick(environment.SYSTEM_CONFIG_DIR, environment.DEFAULT_SYSTEM_CONFIG_DIR)
    ignored = None
    if os.path.normpath(system_dir) != os.path.normpath(default_dir) and (
        default_system_is_locked()
    ):
        system_dir, ignored = default_dir, system_dir
    return Paths(
        config_dir=pick(environment.CONFIG_DIR,
                        os.path.join(xdg("XDG_CONFIG_HOME", ".config"), APP_NAME)),
        cache_dir=pick(environment.CACHE_DIR,
                       os.path.join(xdg("XDG_CACHE_HOME", ".cache"), APP_NAME)),
        state_dir=pick(environment.STATE_DIR,
                       os.path.join(xdg("XDG_STATE_HOME", ".local/state"), APP_NAME)),
        system_config_dir=system_dir,
        ignored_system_config_dir=ignored,
    )


def file_digest(path: str | Path) -> str | None:
    """sha256 of a file's bytes; None when it does not exist. Unkeyable when unreadable."""
    try:
        with open(path, "rb") as f:
            data = f.read(FILE_MAX + 1)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise Unkeyable(f"{path}: {e.strerror}") from e
    if len(data) > FILE_MAX:
        raise Unkeyable(f"{path}: too large")
    return hashlib.sha256(data).hexdigest()


def _tree(directory: Path) -> list[tuple[str, str | None]]:
    found: list[tuple[str, str | None]] = []
    if not directory.exists():
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


def inputs_digest(where: Paths, environ: Mapping[str, str] | None = None) -> str:
    """The hash of everything a decision is read from (see the module's docstring)."""
    env = os.environ if environ is None else environ
    default_file = Path(environment.DEFAULT_SYSTEM_CONFIG_DIR) / environment.SYSTEM_CONFIG_FILE_NAME
    parts: dict[str, object] = {
        "version": __version__,
        "variables": {name: env.get(name, "") for name in DECIDING_VARIABLES},
        "locations": [str(where.config_dir), str(where.cache_dir), str(where.state_dir),
                      str(where.system_config_dir), str(where.ignored_system_config_dir)],
        "files": [(str(p), file_digest(p)) for p in (
            default_file, where.system_config_file, where.user_config_file)],
        "trees": [_tree(d) for d in (where.system_keys_dir, where.user_keys_dir,
                                     where.system_trust_roots_dir, where.trust_roots_dir)],
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def warm_key(inputs: str, reference: str, platform: str) -> str:
    """The store's key for one reference as written, under ``inputs``, for ``platform``."""
    text = json.dumps([inputs, reference, platform])
    return KEY_PREFIX + hashlib.sha256(text.encode()).hexdigest()


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


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError("not a finite number")
    return float(value)


class VerdictReader(Protocol):
    """Where records are read from: the store (cache/store.py's Cache) or :class:`ReadOnly`."""

    def verdicts_for(self, policy_hash: str, name: str, limit: int
                     ) -> Sequence[tuple[object, Mapping[str, object]]]: ...


def _private(path: Path) -> None:
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


class ReadOnly:
    """The cache database opened read-only, for the warm path: two SELECTs, no schema
    work, no writes; anything unexpected reads as nothing (a miss)."""

    def __init__(self, cache_dir: Path, *, timeout: float = 2.0) -> None:
        import sqlite3
        from urllib.parse import quote

        path = cache_dir / "cache.sqlite3"
        for part in (cache_dir, path, cache_dir / "cache.sqlite3-wal"):
            _private(part)
        self._conn = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True,
                                     timeout=timeout)
        self._errors: tuple[type[Exception], ...] = (sqlite3.Error,)

    def close(self) -> None:
        self._conn.close()

    def verdicts_for(self, policy_hash: str, name: str, limit: int
                     ) -> list[tuple[object, Mapping[str, object]]]:
        try:
            rows = self._conn.execute(
                "SELECT digest, data FROM verdicts WHERE policy_hash=? AND name=? "
                "ORDER BY decided_at DESC LIMIT ?", (policy_hash, name, int(limit))).fetchall()
        except self._errors:
            return []
        found: list[tuple[object, Mapping[str, object]]] = []
        for digest, data in rows:
            if not isinstance(data, str) or len(data) > 1024 * 1024:
                continue
            try:
                decoded = json.loads(data)
            except (ValueError, RecursionError):
                continue
            if isinstance(decoded, dict):
                found.append((digest, decoded))
        return found

    def tag_digest(self, name: str, tag: str) -> str | None:
        """The digest ``name:tag`` had when an image under it was last accepted here."""
        try:
            row = self._conn.execute("SELECT digest FROM tags WHERE name=? AND tag=?",
                                     (name, tag)).fetchone()
        except self._errors:
            return None
        return row[0] if row is not None and isinstance(row[0], str) else None


class Registry(Protocol):
    """What a hit asks a registry (oci/probe.py's RegistryProbe)."""

    def manifest_digest(self, repository: str, reference: str) -> tuple[str, str] | None: ...


def store(cache: Cache, key: str, name: str, record: WarmRecord) -> None:
    cache.put_verdict(record.digest, key, name, record.to_json())


def _usable(record: WarmRecord, now: float, *, offline: bool) -> bool:
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


def _split(name: str) -> tuple[str, str]:
    registry, _, repository = name.partition("/")
    return registry, repository


def find(cache: VerdictReader, key: str, name: str, tag: str, *, now: float,
         registry: Callable[[str, str], Registry] | None,
         offline_digest: str | None = None) -> WarmRecord | None:
    """The record to reuse for ``name:tag`` under ``key``, or None (take the full path).

    Online (``registry`` makes a probe for a registry host and scheme): the tag's digest
    now, from the registry, must be the record's, and every ``.sig`` listing judged must be
    unchanged. Offline (``registry`` None): ``offline_digest`` is the digest the tag had
    when last verified here, and the material's age is checked against offline_max_age.
    """
    rows = cache.verdicts_for(key, name, CANDIDATES_MAX)
    records = [r for r in (WarmRecord.from_json(data) for _, data in rows) if r is not None]
    if not records:
        return None
    if registry is None:
        digest = offline_digest
    else:
        registry_host, repository = _split(name)
        found = registry(registry_host, records[0].scheme).manifest_digest(repository, tag)
        digest = found[0] if found is not None else None
    record = next((r for r in records if r.digest == digest), None)
    if record is None or not _usable(record, now, offline=registry is None):
        return None
    if registry is not None:
        for listing in record.signatures:
            host, repository = _split(listing.name)
            sig_tag = listing.digest.replace(":", "-", 1) + ".sig"
            seen = registry(host, record.scheme).manifest_digest(repository, sig_tag)
            now_digest = seen[0].removeprefix("sha256:") if seen is not None else None
            if now_digest != listing.sig_manifest:
                return None
    return record


def material_digest(blobs: Sequence[bytes]) -> str:
    h = hashlib.sha256()
    for blob in blobs:
        h.update(hashlib.sha256(blob).digest())
    return h.hexdigest()
