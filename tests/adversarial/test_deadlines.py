"""Every wait has an end and every listing a size, against the real dockerd and CLI.

Issue 11 item 7: a registry that drips one byte every few seconds never trips a read
timeout; `run` waited past 150 s. Attack N9: a referrers API of 100 pages × 4 MiB made
one refused `run` take ~1.7 GB and 67–90 s. Each test runs the installed safe-docker
against a hostile registry on loopback and checks the documented exit code, the bound
(time, peak memory), and that docker pulled and started nothing (asked with docker itself).
"""

from __future__ import annotations

import subprocess
import sys
import time
from typing import TYPE_CHECKING

import pytest

from tests.adversarial.hostile_registry import HostileRegistry, wait_until_up
from tests.e2e.conftest import PASSWORD, SafeDocker, safe_docker_command

if TYPE_CHECKING:
    from pathlib import Path

    from tests.world import World

pytestmark = pytest.mark.e2e

DEADLINE = 5  # registry_timeout in these tests, seconds
MARGIN = 10  # interpreter start, key checks, docker calls: generous on 2 shared cores


def _home(safe_docker: SafeDocker, tmp_path: Path, registry: str,
          registry_timeout: str | None = None) -> None:
    env = {"COSIGN_PASSWORD": PASSWORD}
    for args in (("keys", "generate", "k", "--dir", str(tmp_path / "keys")),
                 ("policy", "add", f"{registry}/ns/*", "--key", "k")):
        result = safe_docker(*args, env=env)
        assert result.exit_code == 0, result.stderr
    if registry_timeout is not None:
        config = safe_docker.config_dir / "config.toml"
        config.write_text(f'registry_timeout = "{registry_timeout}"\n' + config.read_text())


def _docker(world: World, *args: str) -> str:
    return subprocess.run([world.docker, *args], env=world.docker_env(), capture_output=True,
                          text=True, check=True, timeout=60).stdout


def _nothing_from(world: World, registry: str) -> None:
    """Neither an image nor a container from ``registry`` is in docker."""
    images = _docker(world, "image", "ls", "--format", "{{.Repository}}")
    containers = _docker(world, "ps", "-a", "--format", "{{.Image}}")
    assert registry not in images
    assert registry not in containers


@pytest.mark.parametrize("drip", ["headers", "body"])
def test_a_dripping_registry_times_out_with_exit_69_within_the_deadline_and_nothing_is_pulled(
        world: World, safe_docker: SafeDocker, tmp_path: Path, drip: str) -> None:
    with HostileRegistry(drip=drip, every=1.0) as hostile:
        wait_until_up(hostile.registry)
        _home(safe_docker, tmp_path, hostile.registry, registry_timeout=f"{DEADLINE}s")
        started = time.monotonic()
        result = safe_docker("run", "--rm", f"{hostile.registry}/ns/app:v1")
        elapsed = time.monotonic() - started
    assert result.exit_code == 69, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert "timed out" in lines[0] and "(hint: " in lines[0], lines[0]
    assert elapsed < DEADLINE + MARGIN, f"{elapsed:.1f} s"
    _nothing_from(world, hostile.registry)


def test_the_deadline_is_the_configs_registry_timeout(world: World, safe_docker: SafeDocker,
                                                      tmp_path: Path) -> None:
    with HostileRegistry(drip="body", every=1.0) as hostile:
        wait_until_up(hostile.registry)
        _home(safe_docker, tmp_path, hostile.registry, registry_timeout="2s")
        started = time.monotonic()
        result = safe_docker("pull", f"{hostile.registry}/ns/app:v1")
        elapsed = time.monotonic() - started
    assert result.exit_code == 69
    assert "registry_timeout" in result.stderr
    assert elapsed < 2 + MARGIN
    _nothing_from(world, hostile.registry)


# Peak RSS of one safe-docker run, measured by a fresh interpreter whose only child it is.
_MEASURE = ("import resource, subprocess, sys, time\n"
            "t = time.monotonic(); r = subprocess.run(sys.argv[1:], capture_output=True)\n"
            "sys.stdout.write(f'{r.returncode} {resource.getrusage(resource.RUSAGE_CHILDREN)"
            ".ru_maxrss} {time.monotonic() - t:.2f}\\n')\n"
            "sys.stderr.write(r.stderr.decode())\n")
RSS_BOUND_KIB = 200 * 1024  # was ~1.7 GB (attack N9)
TIME_BOUND = 30.0  # was 67–90 s


@pytest.mark.parametrize("page_bytes", [4 * 1024 * 1024, 1000 * 1000],
                         ids=["4MiB-pages", "1MB-pages"])
def test_a_referrers_flood_is_refused_within_memory_and_time_bounds_and_nothing_is_pulled(
        world: World, safe_docker: SafeDocker, tmp_path: Path, page_bytes: int) -> None:
    with HostileRegistry(page_bytes=page_bytes) as hostile:
        wait_until_up(hostile.registry)
        _home(safe_docker, tmp_path, hostile.registry)
        proc = subprocess.run(
            [sys.executable, "-c", _MEASURE, *safe_docker_command(), "run", "--rm",
             f"{hostile.registry}/ns/app:v1"],
            env=safe_docker.env(), capture_output=True, text=True, timeout=300)
        pages = sum("/referrers/" in path for path in hostile.requests)
    status, rss_kib, seconds = proc.stdout.split()
    assert int(status) == 77, proc.stderr
    assert "too many referrers" in proc.stderr or "oversized" in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert int(rss_kib) < RSS_BOUND_KIB, f"peak RSS {int(rss_kib) // 1024} MiB"
    assert float(seconds) < TIME_BOUND
    assert pages <= 16
    print(f"referrers flood ({page_bytes} B pages): exit {status}, peak RSS "
          f"{int(rss_kib) // 1024} MiB, {seconds} s, {pages} page requests")
    _nothing_from(world, hostile.registry)


def test_a_compose_file_whose_aliases_explode_is_refused_at_once_and_nothing_starts(
        world: World, safe_docker: SafeDocker, tmp_path: Path) -> None:
    # Attack N12: 451 bytes that docker-compose 1.x expands for minutes into ~900 MB
    # and 22 MB of output; safe-docker refuses it before compose reads it.
    project = tmp_path / "project"
    project.mkdir()
    lines = ['version: "3.8"', 'x-l0: &l0 ["lol"]']
    lines += [f"x-l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 7)]
    lines += ["services:", "  app:", "    image: busybox:boom", "    x-boom: *l6"]
    (project / "docker-compose.yml").write_text("\n".join(lines) + "\n")
    started = time.monotonic()
    result = safe_docker("compose", "--project-directory", str(project), "-p", "boom", "up",
                         "-d")
    elapsed = time.monotonic() - started
    assert result.exit_code == 78, result.stderr
    assert "aliases expand" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert elapsed < MARGIN + 10, f"{elapsed:.1f} s"
    containers = _docker(world, "ps", "-a", "--filter", "label=com.docker.compose.project=boom",
                         "--format", "{{.ID}}")
    assert containers.strip() == ""
