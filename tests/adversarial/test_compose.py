"""Compose under attack (issue 11 item 2; attack N5, N6, N12, R1), against the real dockerd,
registry and docker-compose 1.29 (as the CLI plugin, see tests/e2e/test_compose.py).

Each refusal is checked with its documented exit code and, asked of docker itself, that no
container of the project exists and the unsigned image was never pulled. Each accepted
run is checked by what docker says the containers run: only verified, pinned images.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from typing import TYPE_CHECKING

import pytest

from tests.e2e.conftest import Result, SafeDocker, safe_docker_command
from tests.e2e.test_compose import _containers, _down, _sign, compose_ready, home

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from tests.world import Image, World

pytestmark = pytest.mark.e2e
__all__ = ["compose_ready", "home"]  # the fixtures, used by name


def _run(home: SafeDocker, cwd: Path, *args: str, timeout: float = 300) -> Result:
    proc = subprocess.run([*safe_docker_command(), *args], env=home.env(), cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, check=False)
    return Result(proc.returncode, proc.stdout, proc.stderr)


def _service(image: Image, command: str = "sleep 30") -> dict[str, object]:
    return {"image": image.tagged, "network_mode": "none", "command": command.split()}


def _write(path: Path, services: dict[str, object]) -> Path:
    path.write_text(json.dumps({"version": "3.8", "services": services}))  # JSON is YAML
    return path


@pytest.fixture
def images(world: World, home: SafeDocker) -> tuple[Image, Image]:
    """A signed image and an unsigned one, neither in docker yet."""
    good = world.push_image("composed/good", tag=uuid.uuid4().hex[:8])
    evil = world.push_image("composed/evil", tag=uuid.uuid4().hex[:8])
    _sign(home, good)
    return good, evil


@pytest.fixture
def project(tmp_path: Path, world: World) -> Iterator[tuple[Path, str]]:
    name = f"adv{uuid.uuid4().hex[:10]}"
    directory = tmp_path / name
    directory.mkdir()
    yield directory, name
    _down(world, name)


def _nothing_happened(world: World, name: str, evil: Image) -> None:
    assert _containers(world, name) == []
    assert not world.has_image(evil.tagged) and not world.has_image(evil.pinned)


def _running_images(world: World, name: str) -> dict[str, str]:
    ids = _containers(world, name)
    inspected = json.loads(world.run_docker("inspect", *ids).stdout) if ids else []
    return {c["Config"]["Labels"]["com.docker.compose.service"]: c["Config"]["Image"]
            for c in inspected}


@pytest.mark.parametrize("spelling", [
    ["--fi", "evil.yml"], ["--project-dir", "."], ["--env-f", "x.env"], ["-f=decoy.yml"],
    ["--fil=evil.yml"]])
def test_abbreviated_and_ambiguous_options_are_refused_before_compose_reads_anything(
        world: World, home: SafeDocker, compose_ready: None, images: tuple[Image, Image],
        project: tuple[Path, str], spelling: list[str]) -> None:
    good, evil = images
    directory, name = project
    _write(directory / "docker-compose.yml", {"app": _service(good)})
    _write(directory / "evil.yml", {"app": _service(evil)})
    _write(directory / "=decoy.yml", {"app": _service(evil)})
    (directory / "x.env").write_text("X=1\n")
    result = _run(home, directory, "compose", *spelling, "-p", name, "up", "-d")
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert result.stderr.startswith("safe-docker: ") and result.stderr.count("\n") == 1
    _nothing_happened(world, name, evil)


def test_the_default_file_compose_picks_is_the_one_verified(
        world: World, home: SafeDocker, compose_ready: None, images: tuple[Image, Image],
        project: tuple[Path, str]) -> None:
    good, evil = images
    directory, name = project
    # docker-compose 1.x picks docker-compose.yml over compose.yaml (v2 the other way).
    _write(directory / "compose.yaml", {"app": _service(good)})
    _write(directory / "docker-compose.yml", {"app": _service(evil)})
    result = _run(home, directory, "compose", "-p", name, "up", "-d")
    assert result.exit_code == 77, (result.stdout, result.stderr)
    assert evil.repo in result.stderr
    _nothing_happened(world, name, evil)
    # The other way round: what runs is the verified model, pinned.
    _write(directory / "compose.yaml", {"app": _service(evil)})
    _write(directory / "docker-compose.yml", {"app": _service(good)})
    result = _run(home, directory, "compose", "-p", name, "up", "-d")
    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert _running_images(world, name) == {"app": good.pinned}
    assert not world.has_image(evil.tagged)


def test_a_fifo_that_serves_a_decoy_then_an_evil_project_is_refused(
        world: World, home: SafeDocker, compose_ready: None, images: tuple[Image, Image],
        project: tuple[Path, str]) -> None:
    """N5: a named pipe could serve a decoy to one read and an evil project to another
    (compose 1.29 itself reads a file twice for `config`): only regular files are taken,
    and the run reads only our resolved copy."""
    good, evil = images
    directory, name = project
    decoy = _write(directory / "decoy.yml", {"app": _service(good)})
    bad = _write(directory / "evil.yml", {"app": _service(good),
                                          "sidecar": _service(evil)})
    fifo = directory / "c.yml"
    os.mkfifo(fifo)
    writer = subprocess.Popen(["sh", "-c", f"cat {decoy} > {fifo}; cat {bad} > {fifo}"],
                              start_new_session=True)
    try:
        result = _run(home, directory, "compose", "-p", name, "-f", str(fifo), "up", "-d",
                      timeout=120)
    finally:
        os.killpg(writer.pid, 9)
        writer.wait(10)
    assert result.exit_code == 78, (result.stdout, result.stderr)
    assert "not a regular file" in result.stderr
    _nothing_happened(world, name, evil)
    assert not world.has_image(good.pinned)


def test_a_planted_override_in_the_state_directory_is_never_used(
        world: World, home: SafeDocker, compose_ready: None, images: tuple[Image, Image],
        project: tuple[Path, str]) -> None:
    """N6: the resolved file is written fresh (mkdtemp, O_EXCL); nothing found is used."""
    good, evil = images
    directory, name = project
    _write(directory / "docker-compose.yml", {"app": _service(good)})
    state = home.state_dir / "compose"
    state.mkdir(parents=True, exist_ok=True)
    planted = json.dumps({"services": {"app": {"image": evil.tagged}}})
    # The predictable names the earlier design used, and a workspace-looking directory.
    import hashlib

    text = json.dumps({"services": {"app": {"image": good.pinned}}}, indent=2,
                      sort_keys=True) + "\n"
    (state / f"{hashlib.sha256(text.encode()).hexdigest()[:24]}.yml").write_text(planted)
    (state / "run-planted").mkdir(exist_ok=True)
    (state / "run-planted" / "compose.yml").write_text(planted)
    try:
        result = _run(home, directory, "compose", "-p", name, "up", "-d")
        assert result.exit_code == 0, (result.stdout, result.stderr)
        assert _running_images(world, name) == {"app": good.pinned}
        assert not world.has_image(evil.tagged)
    finally:
        for path in state.glob("*.yml"):
            path.unlink()


def test_scale_of_an_unsigned_service_is_refused(
        world: World, home: SafeDocker, compose_ready: None, images: tuple[Image, Image],
        project: tuple[Path, str]) -> None:
    _, evil = images
    directory, name = project
    _write(directory / "docker-compose.yml", {"app": _service(evil)})
    result = _run(home, directory, "compose", "-p", name, "scale", "app=2")
    assert result.exit_code == 77, (result.stdout, result.stderr)
    _nothing_happened(world, name, evil)


def test_start_of_a_service_without_a_container_is_verified(
        world: World, home: SafeDocker, compose_ready: None, images: tuple[Image, Image],
        project: tuple[Path, str]) -> None:
    _, evil = images
    directory, name = project
    _write(directory / "docker-compose.yml", {"app": _service(evil)})
    result = _run(home, directory, "compose", "-p", name, "start", "app")
    assert result.exit_code == 77, (result.stdout, result.stderr)
    _nothing_happened(world, name, evil)


def test_run_of_a_service_in_an_inactive_profile_is_verified(
        world: World, home: SafeDocker, compose_ready: None, images: tuple[Image, Image],
        project: tuple[Path, str]) -> None:
    """R1: `run SERVICE` enables the service's profile; it is verified like the rest."""
    good, evil = images
    directory, name = project
    _write(directory / "docker-compose.yml", {
        "app": _service(good), "tool": {**_service(evil, "cat /marker"), "profiles": ["t"]}})
    result = _run(home, directory, "compose", "-p", name, "run", "--rm", "-T", "tool")
    assert result.exit_code == 77, (result.stdout, result.stderr)
    assert "service 'tool'" in result.stderr
    _nothing_happened(world, name, evil)


def test_an_env_file_fifo_is_refused(
        world: World, home: SafeDocker, compose_ready: None, images: tuple[Image, Image],
        project: tuple[Path, str]) -> None:
    good, evil = images
    directory, name = project
    _write(directory / "docker-compose.yml", {"app": {**_service(good),
                                                      "image": f"{good.repo}:${{TAG}}"}})
    os.mkfifo(directory / "tag.env")
    result = _run(home, directory, "compose", "--env-file", "tag.env", "-p", name, "up", "-d")
    assert result.exit_code == 78, (result.stdout, result.stderr)
    _nothing_happened(world, name, evil)


def test_nested_yaml_aliases_are_refused_before_compose_expands_them(
        world: World, home: SafeDocker, compose_ready: None, images: tuple[Image, Image],
        project: tuple[Path, str]) -> None:
    """N12: a 451-byte file that compose 1.x takes minutes and ~900 MB to expand."""
    good, evil = images
    directory, name = project
    lines = ['version: "3.8"', 'x-l0: &l0 ["lol"]']
    lines += [f"x-l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 7)]
    lines += ["services:", "  app:", f"    image: {good.tagged}", "    x-boom: *l6"]
    (directory / "docker-compose.yml").write_text("\n".join(lines) + "\n")
    started = time.monotonic()
    result = _run(home, directory, "compose", "-p", name, "up", "-d", timeout=60)
    assert result.exit_code == 78, (result.stdout, result.stderr)
    assert "aliases expand" in result.stderr
    assert time.monotonic() - started < 30
    _nothing_happened(world, name, evil)
