"""The verification cache: round trips, hash checks both ways, corruption, concurrency."""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from safedocker.cache.rows import MAX_ROW_BYTES
from safedocker.cache.store import DB_NAME, SCHEMA_VERSION, Cache, CacheEntry
from safedocker.errors import CacheError
from safedocker.reference import Digest

REPO_ROOT = Path(__file__).resolve().parents[3]
NAME = "docker.io/library/ubuntu"
MANIFEST = b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}'
MANIFEST_DIGEST = Digest.of(MANIFEST)
CONFIG = b'{"architecture":"amd64","config":{"Env":["NVIDIA_REQUIRE_CUDA=cuda>=12.0"]}}'
CONFIG_DIGEST = Digest.of(CONFIG)
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def intact(cache_dir: Path) -> bool:
    """sqlite's full integrity check of the cache file, from a second connection."""
    db = raw(cache_dir)
    try:
        return db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        db.close()


def raw(cache_dir: Path) -> sqlite3.Connection:
    """A direct sqlite connection, for tampering as an attacker or a bad disk would."""
    return sqlite3.connect(cache_dir / DB_NAME, isolation_level=None)


# ------------------------------------------------------------------------ round trips


def test_open_creates_a_private_wal_database_with_the_current_schema(tmp_path: Path) -> None:
    cache_dir = tmp_path / "new" / "cache"
    with Cache.open(cache_dir) as c:
        c.record_tag(NAME, "24.04", MANIFEST_DIGEST)
    assert stat.S_IMODE(cache_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((cache_dir / DB_NAME).stat().st_mode) == 0o600
    db = raw(cache_dir)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    db.close()


def test_tag_round_trip_and_update(cache: Cache) -> None:
    assert cache.lookup_tag(NAME, "24.04") is None
    cache.record_tag(NAME, "24.04", MANIFEST_DIGEST, seen_at=1000.0)
    record = cache.lookup_tag(NAME, "24.04")
    assert record is not None
    assert (record.digest, record.seen_at) == (MANIFEST_DIGEST, 1000.0)
    other = Digest.of(b"other")
    cache.record_tag(NAME, "24.04", str(other))
    record = cache.lookup_tag(NAME, "24.04")
    assert record is not None and record.digest == other and record.seen_at > 1000.0


def test_material_manifest_and_config_round_trip(cache: Cache) -> None:
    cache.put_material(NAME, MANIFEST_DIGEST, "cosign-sig", b"\x00sig material\xff")
    material = cache.get_material(NAME, MANIFEST_DIGEST, "cosign-sig")
    assert material is not None and material.data == b"\x00sig material\xff"
    assert cache.get_material(NAME, MANIFEST_DIGEST, "sigstore-bundle") is None
    assert cache.get_material("docker.io/library/debian", MANIFEST_DIGEST, "cosign-sig") is None

    cache.put_manifest(MANIFEST_DIGEST, OCI_MANIFEST, MANIFEST)
    manifest = cache.get_manifest(str(MANIFEST_DIGEST))
    assert manifest is not None
    assert (manifest.media_type, manifest.data) == (OCI_MANIFEST, MANIFEST)

    cache.put_config(CONFIG_DIGEST, CONFIG)
    config = cache.get_config(CONFIG_DIGEST)
    assert config is not None and config.data == CONFIG


def test_entries_list_tags_and_material_presence(cache: Cache) -> None:
    other = Digest.of(b"pinned only")
    cache.record_tag(NAME, "24.04", MANIFEST_DIGEST, seen_at=10.0)
    cache.record_tag(NAME, "22.04", Digest.of(b"jammy"), seen_at=20.0)
    cache.put_material(NAME, MANIFEST_DIGEST, "cosign-sig", b"m")
    cache.put_material(NAME, other, "cosign-sig", b"m")
    entries = cache.entries()
    assert [(e.tag, e.has_material) for e in entries] == [
        ("22.04", False),
        ("24.04", True),
        (None, True),
    ]
    assert entries[1] == CacheEntry(NAME, "24.04", MANIFEST_DIGEST, 10.0, True)
    assert entries[2].digest == other


def test_invalid_arguments_are_refused(cache: Cache) -> None:
    with pytest.raises(CacheError):
        cache.record_tag(NAME, "bad tag", MANIFEST_DIGEST)
    with pytest.raises(CacheError):
        cache.record_tag(NAME, "x", "md5:abc")
    with pytest.raises(CacheError):
        cache.put_material(NAME, MANIFEST_DIGEST, "kind", b"x" * (MAX_ROW_BYTES + 1))


# ------------------------------------------------------------------------ hash checks


def test_manifest_and_config_that_do_not_hash_to_their_digest_are_refused_on_put(
    cache: Cache,
) -> None:
    with pytest.raises(CacheError, match="do not hash"):
        cache.put_manifest(MANIFEST_DIGEST, OCI_MANIFEST, MANIFEST + b" ")
    with pytest.raises(CacheError, match="do not hash"):
        cache.put_config(CONFIG_DIGEST, b"{}")
    assert cache.get_manifest(MANIFEST_DIGEST) is None
    assert cache.get_config(CONFIG_DIGEST) is None


def test_tampered_rows_are_ignored_and_removed_on_get(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache_dir = tmp_path / "cache"
    with Cache.open(cache_dir) as c:
        c.put_manifest(MANIFEST_DIGEST, OCI_MANIFEST, MANIFEST)
        c.put_config(CONFIG_DIGEST, CONFIG)
        c.record_tag(NAME, "24.04", MANIFEST_DIGEST)
        c.put_material(NAME, MANIFEST_DIGEST, "cosign-sig", b"material")

    db = raw(cache_dir)
    db.execute("UPDATE manifests SET data = ?", (MANIFEST.replace(b"2", b"3"),))
    db.execute("UPDATE configs SET data = ?", (b'{"evil":true}',))
    db.execute("UPDATE tags SET digest = 'sha256:not-hex'")
    db.execute("UPDATE material SET data = 'text, not a blob', fetched_at = 'yesterday'")
    db.close()

    with caplog.at_level(logging.WARNING, logger="safedocker.cache"), Cache.open(cache_dir) as c:
        assert c.get_manifest(MANIFEST_DIGEST) is None
        assert c.get_config(CONFIG_DIGEST) is None
        assert c.lookup_tag(NAME, "24.04") is None
        assert c.get_material(NAME, MANIFEST_DIGEST, "cosign-sig") is None
    assert "discarding cached manifest" in caplog.text

    db = raw(cache_dir)
    for table in ("manifests", "configs", "tags", "material"):
        assert db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] == 0, table  # noqa: S608
    db.close()


# ------------------------------------------------------------------------------ prune


def test_prune_removes_old_rows_and_rows_without_a_valid_time(tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    now = time.time()
    with Cache.open(cache_dir) as c:
        c.record_tag(NAME, "old", MANIFEST_DIGEST, seen_at=now - 10 * 86400)
        c.record_tag(NAME, "new", MANIFEST_DIGEST, seen_at=now - 60)
        c.record_tag(NAME, "garbage", MANIFEST_DIGEST, seen_at=now)
        c.put_config(CONFIG_DIGEST, CONFIG)
    db = raw(cache_dir)
    db.execute("UPDATE tags SET seen_at = 'soon' WHERE tag = 'garbage'")
    db.close()
    with Cache.open(cache_dir) as c:
        assert c.prune(7 * 86400) == 2
        assert [e.tag for e in c.entries()] == ["new"]
        assert c.get_config(CONFIG_DIGEST) is not None
        assert c.prune(0, now=now + 3600) == 2


# ------------------------------------------------------------------------- corruption


@pytest.mark.parametrize(
    "garbage", [b"garbage" * 3, os.urandom(8192), b"SQLite format 3\x00" + b"\xff" * 5000]
)
def test_corrupt_file_is_moved_aside_and_rebuilt(
    tmp_path: Path, garbage: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    cache_dir = tmp_path / "cache"
    with Cache.open(cache_dir) as c:
        c.record_tag(NAME, "24.04", MANIFEST_DIGEST)
    (cache_dir / DB_NAME).write_bytes(garbage)

    with caplog.at_level(logging.WARNING, logger="safedocker.cache"), Cache.open(cache_dir) as c:
        assert c.lookup_tag(NAME, "24.04") is None
        c.record_tag(NAME, "24.04", MANIFEST_DIGEST)
        assert c.lookup_tag(NAME, "24.04") is not None
        assert intact(cache_dir)
    moved = sorted(cache_dir.glob(f"{DB_NAME}.corrupt-*"))
    assert [p for p in moved if not p.name.endswith(("-wal", "-shm"))], moved
    original = next(p for p in moved if not p.name.endswith(("-wal", "-shm")))
    assert original.read_bytes() == garbage
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1


def test_corruption_found_during_an_operation_rebuilds(tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    c = Cache.open(cache_dir)
    c.record_tag(NAME, "24.04", MANIFEST_DIGEST)
    c.close()
    db = cache_dir / DB_NAME
    # Keep the header valid but wreck every page after the first.
    data = bytearray(db.read_bytes())
    page = int.from_bytes(data[16:18], "big") or 65536
    data[page:] = b"\xa5" * (len(data) - page)
    db.write_bytes(bytes(data))
    with Cache.open(cache_dir) as c:
        assert c.lookup_tag(NAME, "24.04") is None
        c.record_tag(NAME, "x", MANIFEST_DIGEST)
        assert intact(cache_dir)
    assert list(cache_dir.glob(f"{DB_NAME}.corrupt-*"))


def test_newer_schema_version_is_moved_aside_and_rebuilt(tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    with Cache.open(cache_dir) as c:
        c.record_tag(NAME, "24.04", MANIFEST_DIGEST)
    db = raw(cache_dir)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with Cache.open(cache_dir) as c:
        assert c.lookup_tag(NAME, "24.04") is None
    db = raw(cache_dir)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    db.close()
    assert list(cache_dir.glob(f"{DB_NAME}.newer-*"))


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_unwritable_cache_dir_is_a_cache_error(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        with pytest.raises(CacheError) as info:
            Cache.open(locked / "cache")
        assert info.value.exit_code == 69
    finally:
        locked.chmod(0o700)


def test_unwritable_existing_database_is_a_cache_error(tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    Cache.open(cache_dir).close()
    (cache_dir / DB_NAME).unlink()
    (cache_dir / DB_NAME).mkdir()  # something that is not a file where the database goes
    with pytest.raises(CacheError):
        Cache.open(cache_dir)


# ------------------------------------------------------------------------ concurrency

WORKER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from safedocker.cache.store import Cache
    from safedocker.reference import Digest

    cache_dir, worker = Path(sys.argv[1]), int(sys.argv[2])
    name = f"127.0.0.1:5000/team/app{worker}"
    with Cache.open(cache_dir) as c:
        for i in range(10):
            digest = Digest.of(f"{worker}-{i}".encode())
            c.record_tag(name, f"v{i}", digest)
            c.put_material(name, digest, "cosign-sig", f"sig {worker} {i}".encode() * 50)
            c.record_tag("docker.io/library/shared", "latest", digest)
            assert c.lookup_tag(name, f"v{i}").digest == digest
            assert c.get_material(name, digest, "cosign-sig") is not None
            c.entries()
    """
)


def test_fifty_processes_at_once_keep_every_row_and_the_file_intact(tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(cache_dir), str(n)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for n in range(50)
    ]
    failures = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        if p.returncode != 0:
            failures.append(err.decode(errors="replace")[-2000:])
    assert not failures, failures[0]

    with Cache.open(cache_dir) as c:
        for worker in range(50):
            name = f"127.0.0.1:5000/team/app{worker}"
            for i in range(10):
                digest = Digest.of(f"{worker}-{i}".encode())
                tag = c.lookup_tag(name, f"v{i}")
                assert tag is not None and tag.digest == digest
                material = c.get_material(name, digest, "cosign-sig")
                assert material is not None
                assert material.data == f"sig {worker} {i}".encode() * 50
        assert len([e for e in c.entries() if e.tag is not None]) == 50 * 10 + 1
        assert intact(cache_dir)
    db = raw(cache_dir)
    assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    db.close()
    assert not list(cache_dir.glob(f"{DB_NAME}.corrupt-*"))
