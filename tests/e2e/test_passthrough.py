"""Passthrough is transparent: for anything but pull/run/create, safe-docker *is* docker.

Each command runs under the real docker and under safe-docker with the same environment;
stdout, stderr and exit status must be identical byte for byte. Outputs with relative
times ("Up 3 seconds") are compared against a docker run just before and one just after,
so that a second ticking over between the two does not make the test flaky.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

import safedocker
from tests.e2e.conftest import SafeDocker, safe_docker_command

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from tests.world import World

Outcome = tuple[int, bytes, bytes]


@pytest.fixture(scope="module")
def container(world: World) -> Iterator[str]:
    """A running container (a local image: no registry, no safe-docker involved)."""
    image = world.make_local_image("passthrough/local:v1")
    started = world.run_docker("run", "-d", "--network", "none", image, "sleep", "60")
    cid = started.stdout.decode().strip()
    yield cid
    world.run_docker("rm", "-f", cid, check=False)
    world.remove_images(image)


@pytest.fixture
def sd(world: World, tmp_path: Path) -> SafeDocker:
    home = tmp_path / "sd"
    home.mkdir()
    return SafeDocker(world=world, home=home)


def _run(argv: list[str], env: dict[str, str]) -> Outcome:
    proc = subprocess.run(argv, env=env, capture_output=True, timeout=120)
    return proc.returncode, proc.stdout, proc.stderr


def assert_same_as_docker(sd: SafeDocker, *args: str) -> Outcome:
    """Byte for byte what docker prints. Output with relative times ("2 minutes ago") can
    change between two runs, so docker runs just before and just after ours, and a
    boundary crossed during that window is retried (never more than three times)."""
    env = sd.env()
    for _ in range(3):
        before = _run([sd.world.docker, *args], env)
        ours = _run([*safe_docker_command(), *args], env)
        after = _run([sd.world.docker, *args], env)
        if before == after:
            break
    assert ours in (before, after), (ours, before)
    return ours


def test_ps_is_docker_ps(sd: SafeDocker, container: str) -> None:
    status, stdout, _ = assert_same_as_docker(sd, "ps")
    assert status == 0 and container[:12].encode() in stdout
    # Filtered: containers created in the same second are listed in no fixed order.
    assert_same_as_docker(sd, "ps", "-a", "--no-trunc", "--filter", f"id={container}")


def test_images_is_docker_images(sd: SafeDocker, container: str) -> None:
    # One repository: docker lists images created in the same second in no fixed order,
    # and other tests of the session load such images.
    status, stdout, _ = assert_same_as_docker(sd, "images", "passthrough/local")
    assert status == 0 and b"passthrough/local" in stdout


def test_version_is_docker_version(sd: SafeDocker) -> None:
    status, stdout, _ = assert_same_as_docker(sd, "version")
    assert status == 0 and b"Server" in stdout
    # `-v` alone is docker's short version flag; (`--version` is safe-docker's own).
    assert_same_as_docker(sd, "-v")


def test_inspect_is_docker_inspect(sd: SafeDocker, container: str) -> None:
    status, stdout, _ = assert_same_as_docker(sd, "inspect", container)
    assert status == 0 and container.encode() in stdout


def test_inspect_of_nothing_fails_exactly_as_docker_does(sd: SafeDocker) -> None:
    status, _, stderr = assert_same_as_docker(sd, "inspect", "no-such-thing-anywhere")
    assert status != 0 and b"no-such-thing-anywhere" in stderr


def test_exec_into_a_running_container(sd: SafeDocker, container: str) -> None:
    status, stdout, _ = assert_same_as_docker(sd, "exec", container, "echo", "hi")
    assert (status, stdout) == (0, b"hi\n")
    status, _, _ = assert_same_as_docker(sd, "exec", container, "sh", "-c", "exit 3")
    assert status == 3  # docker's own status comes back


def test_an_unknown_command_is_refused_in_enforce_mode_with_a_hint(sd: SafeDocker) -> None:
    # A word safe-docker does not know may be a CLI plugin that starts images unchecked.
    result = sd("definitely-not-a-command")
    assert result.exit_code == 77
    assert "passthrough" in _one_line(result.stderr)


def test_with_mode_off_an_unknown_command_fails_exactly_as_docker_does(sd: SafeDocker) -> None:
    env = sd.env(SAFE_DOCKER_MODE="off")
    ours = _run([*safe_docker_command(), "definitely-not-a-command"], env)
    assert ours == _run([sd.world.docker, "definitely-not-a-command"], env)
    assert ours[0] != 0


def test_global_flags_before_a_passthrough_command(sd: SafeDocker, container: str) -> None:
    status, _, _ = assert_same_as_docker(sd, "-H", sd.world.docker_host, "ps", "-q")
    assert status == 0


# --- finding the real docker ---------------------------------------------------------------


def _one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


def test_missing_real_docker_exits_127_with_one_line(sd: SafeDocker) -> None:
    result = sd("ps", env={"SAFE_DOCKER_REAL_DOCKER": "/nonexistent/docker"})
    assert result.exit_code == 127
    line = _one_line(result.stderr)
    assert line.startswith("safe-docker: ") and "docker" in line and "hint:" in line


def _shim_dir(tmp_path: Path) -> Path:
    """A directory whose `docker` is a symlink to the safe-docker script."""
    shim_dir = tmp_path / "shim-bin"
    shim_dir.mkdir()
    (shim_dir / "docker").symlink_to(safe_docker_command()[0])
    return shim_dir


def _env_without_real_docker(sd: SafeDocker, path: str) -> dict[str, str]:
    env = sd.env()
    del env["SAFE_DOCKER_REAL_DOCKER"]
    env["PATH"] = path
    return env


def test_no_docker_on_path_but_the_shim_exits_127_with_one_line(
    sd: SafeDocker, tmp_path: Path
) -> None:
    shim_dir = _shim_dir(tmp_path)
    env = _env_without_real_docker(sd, str(shim_dir))
    status, _, stderr = _run([str(shim_dir / "docker"), "ps"], env)
    assert status == 127
    line = _one_line(stderr.decode())
    assert line.startswith("safe-docker: real docker not found")


def test_shim_named_docker_first_on_path_reaches_the_real_docker(
    sd: SafeDocker, tmp_path: Path
) -> None:
    shim_dir = _shim_dir(tmp_path)
    real_dir = os.path.dirname(sd.world.docker)
    env = _env_without_real_docker(sd, os.pathsep.join([str(shim_dir), real_dir, os.defpath]))
    through_shim = _run([str(shim_dir / "docker"), "version"], env)  # would hang if it looped
    direct = _run([sd.world.docker, "version"], env)
    assert through_shim == direct
    assert through_shim[0] == 0


def test_a_real_docker_setting_that_points_back_at_the_shim_does_not_loop(
    sd: SafeDocker, tmp_path: Path
) -> None:
    shim_dir = _shim_dir(tmp_path)
    env = _env_without_real_docker(sd, str(shim_dir))
    env["SAFE_DOCKER_REAL_DOCKER"] = str(shim_dir / "docker")
    status, _, stderr = _run([str(shim_dir / "docker"), "version"], env)
    assert status == 127
    _one_line(stderr.decode())


# --- safe-docker's own front door ------------------------------------------------------------


def test_help_says_other_commands_go_to_docker(sd: SafeDocker) -> None:
    result = sd("--help")
    assert result.exit_code == 0
    assert "All other commands go to docker" in " ".join(result.stdout.split())
    for own in ("verify", "policy", "keys", "sign"):
        assert own in result.stdout


def test_python_dash_m_safedocker_prints_the_version(sd: SafeDocker) -> None:
    proc = subprocess.run([sys.executable, "-m", "safedocker", "--version"],
                          env=sd.env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert safedocker.__version__ in proc.stdout
    assert sd("--version").stdout == proc.stdout
