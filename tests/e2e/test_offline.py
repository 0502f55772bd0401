"""Offline "must show": decisions from the cache when the registry is gone, and a cache that
never turns into a reason to hand docker something unverified.

Real dockerd and registry (the session `world`); each test has its own safe-docker home.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from tests.e2e.conftest import (
    Result,
    SafeDocker,
    ok,
    safe_docker_command,
    trust_new_key_and_sign,
)

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from tests.world import Image, World

OFFLINE = {"SAFE_DOCKER_OFFLINE": "1"}


@dataclass(frozen=True)
class Setup:
    sd: SafeDocker
    space: str
    signed: Image
    unsigned: Image
    key: Path



@pytest.fixture
def setup(world: World, safe_docker: SafeDocker, tmp_path: Path, request: pytest.FixtureRequest
          ) -> Setup:
    """A home that trusts key `demo` for `offline-<test>/*`, one signed and one unsigned
    image there."""
    space = f"offline-{abs(hash(request.node.name)) % 10**8}"
    signed = world.push_image(f"{space}/signed")
    unsigned = world.push_image(f"{space}/unsigned")
    trust_new_key_and_sign(safe_docker, tmp_path, f"{world.registry}/{space}/*", signed)
    return Setup(safe_docker, space, signed, unsigned, tmp_path / "demo.key")


@contextmanager
def registry_down(world: World) -> Iterator[None]:
    port = world.registry_port
    world.stop_registry()
    try:
        yield
    finally:
        world.start_registry(port)


def run_echo(sd: SafeDocker, image: str, **env: str) -> Result:
    return sd("run", "--rm", "--network", "none", image, "echo", "hi", env=env)


def test_verified_image_runs_offline_and_says_so(world: World, setup: Setup) -> None:
    sd = setup.sd
    first = run_echo(sd, setup.signed.tagged)
    assert first.exit_code == 0, first.stderr
    never_verified = world.push_image(f"{setup.space}/never")
    ok(sd, "sign", "--key", str(setup.key), never_verified.tagged)
    with registry_down(world):
        again = run_echo(sd, setup.signed.tagged)
        assert again.exit_code == 0, again.stderr
        assert again.stdout.strip() == "hi"
        assert "decided offline" in again.stderr
        # The registry is not contacted when told so, either.
        told = run_echo(sd, setup.signed.tagged, **OFFLINE)
        assert told.exit_code == 0, told.stderr
        assert "decided offline" in told.stderr

        unknown = run_echo(sd, never_verified.tagged)
        assert unknown.exit_code == 69, unknown.stderr
        assert "never verified" in unknown.stderr
        assert not world.has_image(never_verified.tagged)

        ok(sd, "keys", "remove", "demo")
        revoked = run_echo(sd, setup.signed.tagged)
        assert revoked.exit_code == 77, revoked.stderr
        revoked_told = run_echo(sd, setup.signed.tagged, **OFFLINE)
        assert revoked_told.exit_code == 77, revoked_told.stderr


def _integrity(cache_dir: Path) -> str:
    conn = sqlite3.connect(str(cache_dir / "cache.sqlite3"))
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


def test_fifty_concurrent_processes_share_one_cache(world: World, setup: Setup) -> None:
    sd = setup.sd
    jobs: list[tuple[list[str], int]] = []
    for i in range(50):
        image = setup.signed if i % 2 == 0 else setup.unsigned
        command = "verify" if i % 5 else "pull"
        jobs.append(([command, image.tagged], 0 if image is setup.signed else 77))

    def one(job: tuple[list[str], int]) -> tuple[list[str], int, int, str]:
        args, expected = job
        proc = subprocess.run([*safe_docker_command(), *args], env=sd.env(),
                              capture_output=True, text=True, timeout=600)
        return args, expected, proc.returncode, proc.stderr

    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(one, jobs))
    wrong = [(args, expected, got, err[-300:]) for args, expected, got, err in results
             if got != expected]
    assert not wrong, wrong
    assert _integrity(sd.cache_dir) == "ok"
    assert not world.has_image(setup.unsigned.tagged)
    assert world.has_image(setup.signed.tagged)
    # The cache the crowd wrote is good enough to decide offline.
    with registry_down(world):
        offline = sd("verify", setup.signed.tagged)
        assert offline.exit_code == 0, offline.stderr


def test_corrupt_cache_is_moved_aside_rebuilt_and_never_accepts(world: World, setup: Setup
                                                                ) -> None:
    sd = setup.sd
    assert run_echo(sd, setup.signed.tagged).exit_code == 0
    db = sd.cache_dir / "cache.sqlite3"
    assert db.exists()
    for side in ("cache.sqlite3-wal", "cache.sqlite3-shm"):
        (sd.cache_dir / side).unlink(missing_ok=True)
    db.write_bytes(b"this is not a database " * 4096)

    # Offline with a corrupt cache: nothing to decide from, so 69, never 0.
    offline = run_echo(sd, setup.signed.tagged, **OFFLINE)
    assert offline.exit_code == 69, (offline.stdout, offline.stderr)
    assert "was unusable" in offline.stderr and "moved it to" in offline.stderr
    assert "never verified" in offline.stderr
    aside = [p.name for p in sd.cache_dir.iterdir() if p.name.startswith("cache.sqlite3.")]
    assert aside, list(sd.cache_dir.iterdir())
    assert _integrity(sd.cache_dir) == "ok"

    db.write_bytes(b"\x00garbage" * 10000)
    unsigned = sd("verify", setup.unsigned.tagged)
    assert unsigned.exit_code == 77, unsigned.stderr
    unsigned_run = run_echo(sd, setup.unsigned.tagged)
    assert unsigned_run.exit_code == 77, unsigned_run.stderr
    assert not world.has_image(setup.unsigned.tagged)

    db.write_bytes(b"SQLite format 3\x00" + b"\xff" * 8192)
    # A warm hit reads its own record files, not the database: without them the full path
    # runs, and it is the one that moves a broken database aside and rebuilds it.
    shutil.rmtree(sd.cache_dir / "verdicts", ignore_errors=True)
    online = run_echo(sd, setup.signed.tagged)
    assert online.exit_code == 0, online.stderr
    assert _integrity(sd.cache_dir) == "ok"
    assert len([p for p in sd.cache_dir.iterdir() if p.name.startswith("cache.sqlite3.")]) >= 2
