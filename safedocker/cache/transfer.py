"""The cache's export/import file: portable JSON lines, checksummed, nothing marked verified.

``cache export`` writes mappings, signature material, manifests and configs for an
airgapped machine; ``cache import`` loads such a file into the store in one transaction,
every row passing the same checks as a put. Verdicts are never exported: the receiving
machine decides again under its own policy.

Material only, never trust anchors (issue 11 item 3: a crafted export carried a trusted
root named ``default``, and a forged identity then passed). Trusted roots, keys and Rekor
keys are installed only by ``trust-root import`` and ``keys add``; a ``root`` record (files
written by older versions carried them) is skipped and named in the summary. Times are
clamped: nothing imported is dated after the import, signature material included
(:func:`safedocker.verify.material.clamp_material_time`).
"""

from __future__ import annotations

import binascii
import contextlib
import hashlib
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

from safedocker._internal import strictjson
from safedocker._internal.encoding import b64decode, b64encode
from safedocker._internal.files import fsync_dir
from safedocker.cache.rows import (
    MAX_ROW_BYTES,
    BadRow,
    check_blob,
    check_digest,
    check_hash,
    check_kind,
    check_media_type,
    check_name,
    check_tag,
    check_time,
    refuse,
    row_blob,
    untrusted,
)
from safedocker.errors import CacheError, SafeDockerError
from safedocker.trust.roots import is_root_name
from safedocker.verify.material import clamp_material_time

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Mapping

    from safedocker.cache.store import Cache

EXPORT_FORMAT = "safe-docker-cache-export"
EXPORT_VERSION = 1
# One exported row: base64 of the largest blob plus its JSON envelope.
_MAX_EXPORT_LINE = (MAX_ROW_BYTES * 4) // 3 + 64 * 1024


@dataclass(frozen=True)
class ExportSummary:
    tags: int = 0
    material: int = 0
    manifests: int = 0
    configs: int = 0


@dataclass(frozen=True)
class ImportSummary:
    """What an import loaded. Nothing imported is verified. ``skipped_roots`` names the
    trusted roots the file carried: never installed (see the module docstring)."""

    tags: int = 0
    material: int = 0
    manifests: int = 0
    configs: int = 0
    skipped_roots: tuple[str, ...] = ()




# ---------------------------------------------------------------- export/import

def export_cache(cache: Cache, path: Path) -> ExportSummary:
    """Write a portable JSON-lines file of mappings, material, manifests and configs.
    Verdicts and trust anchors are not exported.

    The file is written atomically (temp file, fsync, rename).
    """
    target = Path(path)
    directory = target.parent
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    except OSError as e:
        raise CacheError(f"cannot write {target}", why=e.strerror or str(e)) from e
    try:
        with os.fdopen(fd, "wb") as out:
            summary = cache.snapshot(lambda c: _write_export(c, out))
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp_name, target)
        fsync_dir(directory)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise CacheError(f"cannot write {target}", why=e.strerror or str(e)) from e
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    return summary

def _write_export(c: sqlite3.Connection, out: IO[bytes]) -> ExportSummary:
    out.seek(0)
    out.truncate()  # a retry after a lock starts the file again
    sha = hashlib.sha256()
    count = {"tag": 0, "material": 0, "manifest": 0, "config": 0}

    def emit(record: Mapping[str, object]) -> None:
        line = json.dumps(record, sort_keys=True, separators=(",", ":")).encode() + b"\n"
        sha.update(line)
        out.write(line)
        kind = str(record["type"])
        if kind in count:
            count[kind] += 1

    emit({"type": "header", "format": EXPORT_FORMAT, "version": EXPORT_VERSION})
    for name, tag, digest, seen_at in c.execute(
        "SELECT name, tag, digest, seen_at FROM tags ORDER BY name, tag"
    ):
        with contextlib.suppress(BadRow), untrusted():
            emit(
                {
                    "type": "tag",
                    "name": check_name(name),
                    "tag": check_tag(tag),
                    "digest": str(check_digest(digest)),
                    "seen_at": check_time(seen_at),
                }
            )
    for name, digest, kind, data, fetched_at in c.execute(
        "SELECT name, digest, kind, data, fetched_at FROM material ORDER BY name, digest, kind"
    ):
        with contextlib.suppress(BadRow), untrusted():
            emit(
                {
                    "type": "material",
                    "name": check_name(name),
                    "digest": str(check_digest(digest)),
                    "kind": check_kind(kind),
                    "data": b64encode(row_blob(data)),
                    "fetched_at": check_time(fetched_at),
                }
            )
    for digest, media_type, data, fetched_at in c.execute(
        "SELECT digest, media_type, data, fetched_at FROM manifests ORDER BY digest"
    ):
        with contextlib.suppress(BadRow), untrusted():
            d = check_digest(digest)
            blob = row_blob(data)
            check_hash(d, blob, "manifest")
            emit(
                {
                    "type": "manifest",
                    "digest": str(d),
                    "media_type": check_media_type(media_type),
                    "data": b64encode(blob),
                    "fetched_at": check_time(fetched_at),
                }
            )
    for digest, data, fetched_at in c.execute(
        "SELECT digest, data, fetched_at FROM configs ORDER BY digest"
    ):
        with contextlib.suppress(BadRow), untrusted():
            d = check_digest(digest)
            blob = row_blob(data)
            check_hash(d, blob, "image config")
            emit(
                {
                    "type": "config",
                    "digest": str(d),
                    "data": b64encode(blob),
                    "fetched_at": check_time(fetched_at),
                }
            )
    records = sum(count.values())
    trailer = {"type": "end", "records": records, "sha256": sha.hexdigest()}
    out.write(json.dumps(trailer, sort_keys=True, separators=(",", ":")).encode() + b"\n")
    return ExportSummary(
        tags=count["tag"],
        material=count["material"],
        manifests=count["manifest"],
        configs=count["config"],
    )

def import_cache(cache: Cache, path: Path) -> ImportSummary:
    """Load an export file: mappings and raw material only, nothing marked verified.

    Every row passes the same checks as a put (manifests and configs must hash to
    their digests). A malformed file is refused whole with CacheError: the import is
    one transaction and nothing is loaded. Tag mappings newer in this cache are kept.
    Trusted roots in the file are skipped (named in the summary), never installed.
    """
    source = Path(path)

    def op(c: sqlite3.Connection) -> ImportSummary:
        try:
            with open(source, "rb") as f:
                return _import_lines(c, f)
        except OSError as e:
            raise CacheError(
                f"cannot read the cache export {source}", why=e.strerror or str(e)
            ) from e
        except _Malformed as e:
            raise CacheError(
                f"refusing the cache export {source}",
                why=f"line {e.line}: {e.reason}; nothing was imported",
                hint="re-create it with `safe-docker cache export`",
            ) from e

    return cache.transaction(op)


# ----------------------------------------------------------------------- export format


class _Malformed(Exception):
    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line = line
        self.reason = reason


def _unb64(value: object) -> bytes:
    if not isinstance(value, str) or len(value) > _MAX_EXPORT_LINE:
        raise refuse("invalid data", "expected base64 text")
    try:
        return b64decode(value.encode("ascii"))
    except (binascii.Error, UnicodeEncodeError) as e:
        raise refuse("invalid data", f"bad base64: {e}") from e


def _fields(record: dict[str, object], required: set[str]) -> None:
    keys = set(record)
    if keys != required:
        missing, extra = required - keys, keys - required
        raise refuse(
            "invalid record",
            f"missing {sorted(missing)}" if missing else f"unexpected {sorted(extra)}",
        )


def _import_lines(c: sqlite3.Connection, f: IO[bytes]) -> ImportSummary:
    sha = hashlib.sha256()
    now = time.time()
    tags = material = manifests = configs = 0
    roots: list[str] = []
    number = 0
    ended = False
    while True:
        line = f.readline(_MAX_EXPORT_LINE + 1)
        if not line:
            break
        number += 1
        if ended:
            raise _Malformed(number, "data after the end record")
        if len(line) > _MAX_EXPORT_LINE or not line.endswith(b"\n"):
            raise _Malformed(number, "line too long or truncated")
        try:
            record = strictjson.loads(line, max_bytes=_MAX_EXPORT_LINE)
        except (ValueError, UnicodeDecodeError) as e:
            raise _Malformed(number, f"not JSON: {e}") from e
        except RecursionError as e:
            raise _Malformed(number, "not JSON: nested too deeply") from e
        if not isinstance(record, dict) or not isinstance(record.get("type"), str):
            raise _Malformed(number, "not a record")
        kind = record["type"]
        if number == 1:
            if kind != "header" or record.get("format") != EXPORT_FORMAT:
                raise _Malformed(number, "not a safe-docker cache export")
            if record.get("version") != EXPORT_VERSION:
                raise _Malformed(number, f"unsupported version {record.get('version')!r}")
            sha.update(line)
            continue
        if kind == "end":
            records = tags + material + manifests + configs + len(roots)
            if record.get("records") != records or record.get("sha256") != sha.hexdigest():
                raise _Malformed(number, "checksum or record count does not match")
            ended = True
            continue
        sha.update(line)
        try:
            if kind == "tag":
                _fields(record, {"type", "name", "tag", "digest", "seen_at"})
                c.execute(
                    "INSERT INTO tags(name, tag, digest, seen_at) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT(name, tag) DO UPDATE SET digest=excluded.digest, "
                    "seen_at=excluded.seen_at WHERE excluded.seen_at > tags.seen_at",
                    (
                        check_name(record["name"]),
                        check_tag(record["tag"]),
                        str(check_digest(record["digest"])),
                        min(check_time(record["seen_at"]), now),
                    ),
                )
                tags += 1
            elif kind == "material":
                _fields(record, {"type", "name", "digest", "kind", "data", "fetched_at"})
                c.execute(
                    "INSERT INTO material(name, digest, kind, data, fetched_at) "
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT(name, digest, kind) DO UPDATE SET "
                    "data=excluded.data, fetched_at=excluded.fetched_at "
                    "WHERE excluded.fetched_at > material.fetched_at",
                    (
                        check_name(record["name"]),
                        str(check_digest(record["digest"])),
                        check_kind(record["kind"]),
                        clamp_material_time(
                            check_blob(_unb64(record["data"]), "signature material"), now),
                        min(check_time(record["fetched_at"]), now),
                    ),
                )
                material += 1
            elif kind == "manifest":
                _fields(record, {"type", "digest", "media_type", "data", "fetched_at"})
                d = check_digest(record["digest"])
                blob = check_blob(_unb64(record["data"]), "manifest")
                check_hash(d, blob, "manifest")
                c.execute(
                    "INSERT OR REPLACE INTO manifests(digest, media_type, data, fetched_at) "
                    "VALUES (?, ?, ?, ?)",
                    (
                        str(d),
                        check_media_type(record["media_type"]),
                        blob,
                        min(check_time(record["fetched_at"]), now),
                    ),
                )
                manifests += 1
            elif kind == "config":
                _fields(record, {"type", "digest", "data", "fetched_at"})
                d = check_digest(record["digest"])
                blob = check_blob(_unb64(record["data"]), "image config")
                check_hash(d, blob, "image config")
                c.execute(
                    "INSERT OR REPLACE INTO configs(digest, data, fetched_at) VALUES (?, ?, ?)",
                    (str(d), blob, min(check_time(record["fetched_at"]), now)),
                )
                configs += 1
            elif kind == "root":
                _fields(record, {"type", "name", "data"})
                root_name = record["name"]
                if not is_root_name(root_name):
                    raise refuse("invalid trusted-root name", f"{root_name!r}")
                if root_name in roots:
                    raise refuse("duplicate trusted root", root_name)
                roots.append(root_name)  # counted for the checksum, never installed
            else:
                raise refuse("unknown record type", f"{kind!r}")
        except SafeDockerError as e:
            raise _Malformed(number, f"{e.what}: {e.why}" if e.why else e.what) from e
    if number == 0:
        raise _Malformed(1, "empty file")
    if not ended:
        raise _Malformed(number, "no end record (truncated file?)")
    return ImportSummary(tags=tags, material=material, manifests=manifests, configs=configs,
                         skipped_roots=tuple(roots))
