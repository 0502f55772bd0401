"""`safe-docker compose` against a real dockerd and registry.

Compose is the docker CLI plugin when the CLI has one. Debian 12 ships only the standalone
docker-compose 1.29; then the test installs a two-line CLI plugin that hands
`docker compose …` to it, so the plugin path (and 1.x's YAML `config` output) is what runs.
"""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
import uuid
from typing import TYPE_CHECKING

import pytest

from tests.e2e.conftest import SafeDocker, safe_docker_command

if TYPE_CHECKING:
    from pathlib import Path

    from tests.world import Image, World

PASSWORD = "pw"  # noqa: S105 - test key only

PLUGIN = """#!/bin/sh
if [ "$1" = "docker-cli-plugin-metadata" ]; then
  echo '{"SchemaVersion":"0.1.0","Vendor":"safe-docker tests","Version":"1.29.2",
         "ShortDescription":"docker-compose 1.x as a CLI plugin"}'
  exit 0
fi
shift
exec %s "$@"
"""


@pytest.fixture(scope="module")
def compose_ready(world: World) -> None:
    """`docker compose` works: the real plugin, or docker-compose 1.x wrapped as one."""
    if world.run_docker("compose", "version", check=False).returncode == 0:
        return
    standalone = shutil.which("docker-compose")
    if standalone is None:
        pytest.skip("neither the docker compose plugin nor docker-compose is installed "
                    "(apt-get install docker-compose)")
    plugins = world.root / "docker-config" / "cli-plugins"
    plugins.mkdir(parents=True, exist_ok=True)
    plugin = plugins / "docker-compose"
    plugin.write_text(PLUGIN % standalone)
    plugin.chmod(plugin.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    assert world.run_docker("compose", "version", check=False).returncode == 0


@pytest.fixture(scope="module")
def home(world: World, tmp_path_factory: pytest.TempPathFactory) -> SafeDocker:
    home = SafeDocker(world=world, home=tmp_path_factory.mktemp("sd-compose"))
    keys = tmp_path_factory.mktemp("compose-keys")
    env = {"COSIGN_PASSWORD": PASSWORD}
    for args in (("keys", "generate", "demo", "--dir", str(keys)),
                 ("policy", "add", f"{world.registry}/composed/*", "--key", "demo")):
        result = home(*args, env=env)
        assert result.exit_code == 0, result.stderr
    home.home.joinpath("demo.key").write_bytes((keys / "demo.key").read_bytes())
    return home


def _sign(home: SafeDocker, image: Image) -> None:
    result = home("sign", "--key", str(home.home / "demo.key"), image.tagged,
                  env={"COSIGN_PASSWORD": PASSWORD})
    assert result.exit_code == 0, result.stderr


def _project(tmp_path: Path, first: Image, second: Image) -> tuple[Path, str]:
    name = f"sd{uuid.uuid4().hex[:10]}"
    directory = tmp_path / name
    directory.mkdir()
    services = {
        service: {"image": image.tagged, "network_mode": "none", "command": ["sleep", "30"]}
        for service, image in (("first", first), ("second", second))
    }
    # JSON is YAML: compose reads it as docker-compose.yml.
    (directory / "docker-compose.yml").write_text(json.dumps({"services": services}))
    return directory, name


def _containers(world: World, project: str) -> list[str]:
    out = world.run_docker("ps", "-a", "-q", "--filter",
                           f"label=com.docker.compose.project={project}").stdout.decode()
    return out.split()


def _down(world: World, project: str) -> None:
    ids = _containers(world, project)
    if ids:
        world.run_docker("rm", "-f", *ids, check=False)
    world.run_docker("network", "rm", f"{project}_default", check=False)


def test_one_unsigned_service_refuses_the_whole_project(
        world: World, home: SafeDocker, compose_ready: None, tmp_path: Path) -> None:
    signed = world.push_image("composed/signed")
    unsigned = world.push_image("composed/unsigned")
    _sign(home, signed)
    directory, project = _project(tmp_path, signed, unsigned)
    try:
        result = home("compose", "-p", project, "--project-directory", str(directory),
                      "up", "-d")
        assert result.exit_code == 77, (result.stdout, result.stderr)
        assert "service 'second'" in result.stderr
        assert unsigned.repo in result.stderr
        assert _containers(world, project) == []  # nothing was created, not even `first`
        assert not world.has_image(signed.pinned)
    finally:
        _down(world, project)


def test_signed_services_run_pinned_to_their_digests(
        world: World, home: SafeDocker, compose_ready: None, tmp_path: Path) -> None:
    first = world.push_image("composed/first")
    second = world.push_image("composed/second")
    _sign(home, first)
    _sign(home, second)
    directory, project = _project(tmp_path, first, second)
    try:
        # -f given: the override must come after it; the project name comes from -p.
        result = home("compose", "-f", str(directory / "docker-compose.yml"), "-p", project,
                      "up", "-d")
        assert result.exit_code == 0, (result.stdout, result.stderr)
        ids = _containers(world, project)
        assert len(ids) == 2
        inspected = json.loads(world.run_docker("inspect", *ids).stdout)
        images = {c["Config"]["Labels"]["com.docker.compose.service"]: c["Config"]["Image"]
                  for c in inspected}
        assert images == {"first": first.pinned, "second": second.pinned}
        assert all(c["State"]["Running"] for c in inspected)
        # compose ran on our resolved file, in a private directory removed once it exited.
        assert [p.name for p in (home.state_dir / "compose").iterdir()] == []
    finally:
        _down(world, project)


def test_other_compose_commands_pass_through_in_canonical_spelling(
        world: World, home: SafeDocker, compose_ready: None, tmp_path: Path) -> None:
    directory, project = _project(tmp_path, world.push_image("composed/ps"),
                                  world.push_image("composed/ps2"))
    result = home("compose", "-p", project, "--project-directory", str(directory), "ps")
    assert result.exit_code == 0, result.stderr
    assert _containers(world, project) == []


def test_dry_run_prints_the_pinned_compose_command(
        world: World, home: SafeDocker, compose_ready: None, tmp_path: Path) -> None:
    first = world.push_image("composed/dry")
    _sign(home, first)
    directory, project = _project(tmp_path, first, first)
    proc = subprocess.run(
        [*safe_docker_command(), "compose", "-p", project, "up", "-d"],
        env=home.env(SAFE_DOCKER_DRY_RUN="1"), cwd=directory, capture_output=True,
        text=True, timeout=300, check=False)
    code, stdout, stderr = proc.returncode, proc.stdout, proc.stderr
    assert code == 0, stderr
    [argv] = [json.loads(line) for line in stdout.splitlines() if line.startswith("[")]
    files = [a.removeprefix("--file=") for a in argv if a.startswith("--file=")]
    # Only our resolved file, never the user's; the project directory is the user's.
    assert len(files) == 1 and files[0].startswith(str(home.state_dir / "compose") + "/run-")
    assert f"--project-directory={directory}" in argv
    assert argv[-2:] == ["up", "--detach"]
    _down(world, project)

