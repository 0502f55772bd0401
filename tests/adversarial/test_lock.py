"""The locked system policy against a user who goes through safe-docker (issue 12, attack
N8), with the real dockerd and registry: every attempt ends with the documented exit code,
a line says the lock won, and docker itself shows that nothing was pulled or started.

A lock at the default location (/etc/safe-docker) is made in a private mount namespace
(``unshare -m`` as root, an overlay on /etc holding ``safe-docker/``), so the machine's /etc
is never touched. Those tests are skipped where that cannot be done (not root, no overlay).
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from safedocker.trust.keys import fingerprint_of
from tests.e2e.conftest import Result, SafeDocker, ok, safe_docker_command

if TYPE_CHECKING:
    from pathlib import Path

    from tests.world import Image, World

pytestmark = pytest.mark.e2e

SPACE = "adv-lock"
LOCK_WON = "ignored \u2014 the system policy is locked"
_OVERLAY = ('mount -t overlay overlay -o "lowerdir=/etc,upperdir=$1,workdir=$2" /etc '
            '&& shift 2 && exec "$@"')


@functools.cache
def _can_lock_etc() -> str | None:
    """None when a private /etc overlay works here, else why not."""
    import os
    import tempfile

    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return "needs root and unshare(1) for a private mount namespace"
    with tempfile.TemporaryDirectory() as tmp:
        for part in ("upper/safe-docker", "work"):
            os.makedirs(os.path.join(tmp, part))
        probe = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c",
                                _OVERLAY, "sh", f"{tmp}/upper", f"{tmp}/work",
                                "test", "-d", "/etc/safe-docker"],
                               capture_output=True, check=False)
    return None if probe.returncode == 0 else "an overlay on /etc is not possible here"


@dataclass
class LockedEtc:
    """/etc/safe-docker for commands run in a private mount namespace."""

    root: Path

    @property
    def directory(self) -> Path:
        return self.root / "upper" / "safe-docker"

    def run(self, sd: SafeDocker, *args: str, drop: tuple[str, ...] = (), **env: str) -> Result:
        """safe-docker ARGS in a namespace whose /etc/safe-docker is ``directory``."""
        environment = sd.env(**env)
        for name in drop:
            environment.pop(name, None)
        proc = subprocess.run(
            ["unshare", "-m", "--propagation", "private", "sh", "-c", _OVERLAY, "sh",
             str(self.root / "upper"), str(self.root / "work"), *safe_docker_command(), *args],
            env=environment, capture_output=True, text=True, timeout=300, check=False)
        return Result(proc.returncode, proc.stdout, proc.stderr)


def _public_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


def write_system_policy(directory: Path, registry: str, *, locked: bool = True,
                        key_name: str | None = "corp") -> None:
    """A system file requiring key ``corp`` for SPACE (defined unless ``key_name`` is None)."""
    (directory / "keys").mkdir(parents=True, exist_ok=True)
    text = f"locked = {'true' if locked else 'false'}\n"
    if key_name is not None:
        pem = _public_pem(ec.generate_private_key(ec.SECP256R1()))
        (directory / "keys" / f"{key_name}.pub").write_bytes(pem)
        text += f'[keys.{key_name}]\nfingerprint = "{fingerprint_of(pem)}"\n'
    text += f'[[policy]]\nscope = "{registry}/{SPACE}/*"\nkeys = ["corp"]\n'
    (directory / "config.toml").write_text(text)


@pytest.fixture
def etc(tmp_path: Path) -> LockedEtc:
    why_not = _can_lock_etc()
    if why_not is not None:
        pytest.skip(why_not)
    locked = LockedEtc(tmp_path / "etc-overlay")
    locked.directory.mkdir(parents=True)
    (locked.root / "work").mkdir()
    return locked


def nothing_of(world: World, image: Image) -> None:
    """Docker itself: the image was not pulled and no container was made from it."""
    assert not world.has_image(image.tagged) and not world.has_image(image.pinned)
    containers = world.run_docker("ps", "-a", "--no-trunc", "--format", "{{.Image}}")
    assert image.repo not in containers.stdout.decode()


def said_once(result: Result, what: str) -> None:
    lines = [line for line in result.stderr.splitlines() if LOCK_WON in line]
    assert len(lines) == 1 and lines[0].startswith(f"safe-docker: {what}"), result.stderr


# --- SAFE_DOCKER_MODE (issue 12.1: the shim honoured off before reading any config) ------------


@pytest.mark.parametrize("mode", ["off", "warn"])
@pytest.mark.parametrize("command", ["run", "pull"])
def test_env_mode_under_a_lock_at_the_default_location_is_ignored_and_nothing_runs(
        world: World, safe_docker: SafeDocker, etc: LockedEtc, mode: str, command: str) -> None:
    evil = world.push_image(f"{SPACE}/evil-mode-{mode}-{command}")
    write_system_policy(etc.directory, world.registry)
    args = ["run", "--rm", "--network", "none", evil.tagged, "true"] if command == "run" else [
        "pull", evil.tagged]
    result = etc.run(safe_docker, *args, drop=("SAFE_DOCKER_SYSTEM_CONFIG_DIR",),
                     SAFE_DOCKER_MODE=mode)
    assert result.exit_code == 77, result.stderr
    said_once(result, f"SAFE_DOCKER_MODE={mode} ignored")
    assert "safe-docker: refused" in result.stderr
    nothing_of(world, evil)


def test_without_a_lock_mode_off_still_goes_straight_to_docker(
        world: World, safe_docker: SafeDocker, etc: LockedEtc) -> None:
    """The control: the same set-up with locked = false passes the unsigned image."""
    image = world.push_image(f"{SPACE}/control-unlocked")
    write_system_policy(etc.directory, world.registry, locked=False)
    try:
        result = etc.run(safe_docker, "pull", image.tagged,
                         drop=("SAFE_DOCKER_SYSTEM_CONFIG_DIR",), SAFE_DOCKER_MODE="off")
        assert result.exit_code == 0, result.stderr
        assert world.has_image(image.tagged)
        assert LOCK_WON not in result.stderr
    finally:
        world.remove_images(image.tagged)


# --- SAFE_DOCKER_SYSTEM_CONFIG_DIR (issue 12.2: an empty dir dropped the locked policy) ---------


def test_the_system_dir_variable_under_a_locked_default_is_ignored_and_nothing_runs(
        world: World, safe_docker: SafeDocker, etc: LockedEtc, tmp_path: Path) -> None:
    evil = world.push_image(f"{SPACE}/evil-sysdir")
    write_system_policy(etc.directory, world.registry)
    empty = tmp_path / "empty-system"
    empty.mkdir()
    user = safe_docker.config_dir
    user.mkdir(parents=True)
    (user / "config.toml").write_text(
        f'[[policy]]\nscope = "{world.registry}/{SPACE}/*"\naction = "accept"\n')
    result = etc.run(safe_docker, "run", "--rm", "--network", "none", evil.tagged, "true",
                     SAFE_DOCKER_SYSTEM_CONFIG_DIR=str(empty))
    assert result.exit_code == 77, result.stderr
    said_once(result, f"SAFE_DOCKER_SYSTEM_CONFIG_DIR={empty} ignored")
    nothing_of(world, evil)
    # And the variable alone, with no user file, does not turn the lock off either.
    (user / "config.toml").unlink()
    pulled = etc.run(safe_docker, "pull", evil.tagged, SAFE_DOCKER_SYSTEM_CONFIG_DIR=str(empty),
                     SAFE_DOCKER_MODE="off")
    assert pulled.exit_code == 77, pulled.stderr
    nothing_of(world, evil)


# --- keys (attack N8: a user key named like the system rule's key satisfied it) -----------------


@dataclass(frozen=True)
class Signed:
    image: Image
    public_key: Path  # the user's key named corp, which signed the image


@pytest.fixture
def user_signed(world: World, tmp_path: Path) -> Signed:
    """An image signed with a user key named ``corp`` (made in a home of its own)."""
    signer = SafeDocker(world=world, home=tmp_path / "signer")
    keys = tmp_path / "signer-keys"
    keys.mkdir()
    image = world.push_image(f"{SPACE}/user-signed-{tmp_path.name[-12:].lower()}")
    ok(signer, "keys", "generate", "corp", "--dir", str(keys))
    ok(signer, "sign", "--key", str(keys / "corp.key"), image.tagged)
    return Signed(image, keys / "corp.pub")


@pytest.mark.parametrize("system_has_corp", [False, True], ids=["system-lacks-it",
                                                                "system-has-its-own"])
def test_a_user_key_named_like_the_locked_system_rules_key_never_satisfies_it(
        world: World, safe_docker: SafeDocker, user_signed: Signed,
        system_has_corp: bool) -> None:
    ok(safe_docker, "keys", "add", "corp", str(user_signed.public_key))
    system = safe_docker.home / "system"
    write_system_policy(system, world.registry, key_name="corp" if system_has_corp else None)
    result = safe_docker("run", "--rm", "--network", "none", user_signed.image.tagged, "true")
    if system_has_corp:
        assert result.exit_code == 77, result.stderr
        said_once(result, "user key 'corp' ignored")
    else:
        assert result.exit_code == 78, result.stderr
        line = result.stderr.strip().splitlines()[-1]
        assert str(system / "config.toml") in line
        assert "names key 'corp', which the system file does not define" in line
    nothing_of(world, user_signed.image)
