"""The docker CLI plugin: `docker safe …` through the real docker CLI runs safe-docker's own
commands, with their exit status passed through; run/pull/create are pointed elsewhere."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from safedocker import __version__
from tests.e2e.conftest import Result, SafeDocker, safe_docker_command, trust_new_key_and_sign

if TYPE_CHECKING:
    from tests.world import Image, World

PASSWORD = "pw"  # noqa: S105 - test keys only
REPO = Path(__file__).resolve().parents[2]
REFUSED = 77


class PluginHome(SafeDocker):
    """The world with the plugin installed in a DOCKER_CONFIG of its own."""

    @property
    def docker_config(self) -> Path:
        return self.home / "docker-config"

    def env(self, **extra: str) -> dict[str, str]:
        return super().env(**{"DOCKER_CONFIG": str(self.docker_config),
                              "COSIGN_PASSWORD": PASSWORD, **extra})

    def docker(self, *args: str) -> Result:
        proc = subprocess.run([self.world.docker, *args], env=self.env(), capture_output=True,
                              text=True, timeout=300, check=False)
        return Result(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture(scope="module")
def home(world: World, tmp_path_factory: pytest.TempPathFactory) -> PluginHome:
    home = PluginHome(world=world, home=tmp_path_factory.mktemp("sd-plugin"))
    proc = subprocess.run(
        [str(REPO / "packaging" / "install-plugin.sh"), "--safe-docker", safe_docker_command()[0]],
        env=home.env(), capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert (home.docker_config / "cli-plugins" / "docker-safe").exists()
    return home


@pytest.fixture(scope="module")
def signed(world: World, home: PluginHome, tmp_path_factory: pytest.TempPathFactory) -> Image:
    image = world.push_image("plugin/signed")
    trust_new_key_and_sign(home, tmp_path_factory.mktemp("keys"), f"{world.registry}/plugin/*",
                           image)
    return image


def test_docker_lists_the_plugin(home: PluginHome) -> None:
    plugin = home.docker_config / "cli-plugins" / "docker-safe"
    meta = subprocess.run([str(plugin), "docker-cli-plugin-metadata"], capture_output=True,
                          text=True, check=True)
    assert json.loads(meta.stdout) == {
        "SchemaVersion": "0.1.0", "Vendor": "safe-docker", "Version": __version__,
        "ShortDescription": "Verify image signatures (safe-docker)",
    }
    listed = home.docker("--help")
    assert "Verify image signatures (safe-docker)" in listed.stdout


def test_docker_safe_verify_passes_the_exit_status_through(
    home: PluginHome, signed: Image, world: World
) -> None:
    accepted = home.docker("safe", "verify", signed.tagged)
    assert accepted.exit_code == 0, accepted.stderr
    assert signed.digest in accepted.stdout

    # docker's global flags before the plugin's name are the plugin's to read.
    with_flags = home.docker("-H", world.docker_host, "-l", "error", "safe", "verify",
                             signed.tagged)
    assert with_flags.exit_code == 0, with_flags.stderr

    unsigned = world.push_image("plugin/unsigned")
    refused = home.docker("safe", "verify", unsigned.tagged)
    assert refused.exit_code == REFUSED, refused.stderr
    assert "safe-docker: refused" in refused.stderr


def test_docker_safe_keys_list_lists_the_keys(home: PluginHome, signed: Image) -> None:
    listed = home.docker("safe", "keys", "list")
    assert listed.exit_code == 0, listed.stderr
    assert "demo" in listed.stdout


@pytest.mark.parametrize("command", ["run", "pull", "create", "container"])
def test_docker_safe_run_points_to_the_shell_integration(home: PluginHome,
                                                         command: str) -> None:
    result = home.docker("safe", command, "busybox")
    assert result.exit_code == 2
    assert f"plugins cannot replace docker {command}" in result.stderr
    assert "shell-init" in result.stderr


def test_docker_safe_help_is_safe_dockers_help(home: PluginHome) -> None:
    result = home.docker("safe", "--help")
    assert result.exit_code == 0, result.stderr
    assert "verify" in result.stdout and "keys" in result.stdout


def test_docker_safe_airgap_save_then_load_round_trips(home: PluginHome, signed: Image,
                                                      world: World, tmp_path: Path) -> None:
    archive = tmp_path / "images.tar"
    saved = home.docker("safe", "airgap", "save", signed.tagged, "-o", str(archive))
    assert saved.exit_code == 0, saved.stderr
    world.run_docker("rmi", "-f", signed.pinned, signed.tagged, check=False)
    loaded = home.docker("safe", "airgap", "load", "-i", str(archive))
    assert loaded.exit_code == 0, loaded.stderr
    assert signed.digest in loaded.stdout
    assert world.has_image(signed.tagged)


@pytest.mark.parametrize("word", ["save", "load"])
def test_docker_safe_save_and_load_are_not_safe_dockers(home: PluginHome, word: str) -> None:
    result = home.docker("safe", word)
    assert result.exit_code == 2
    assert f"unknown command {word!r}" in result.stderr
    assert "airgap" in result.stderr
