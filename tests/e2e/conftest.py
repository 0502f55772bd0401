"""Fixtures for the end-to-end tests: one real dockerd and registry per test session."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.world import Image, World, ensure_installed

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

pytestmark = pytest.mark.e2e

PASSWORD = "pw"  # noqa: S105 - throwaway test keys only


@pytest.fixture(scope="session")
def world() -> Iterator[World]:
    ensure_installed()
    # Unix socket paths are limited to ~108 bytes: keep the root short.
    root = Path(tempfile.mkdtemp(prefix="sdw-", dir="/tmp"))
    w = World(root=root).start()
    try:
        yield w
    finally:
        w.stop()
        shutil.rmtree(root, ignore_errors=True)


def safe_docker_command() -> list[str]:
    """The installed console script, next to the interpreter running the tests."""
    script = Path(sys.executable).with_name("safe-docker")
    if script.exists():
        return [str(script)]
    found = shutil.which("safe-docker")
    if found is None:
        raise RuntimeError("safe-docker is not installed; run `make dev`")
    return [found]


@dataclass(frozen=True)
class Result:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def dry_run_argvs(self) -> list[list[str]]:
        return [json.loads(line) for line in self.stdout.splitlines() if line.startswith("[")]


@dataclass
class SafeDocker:
    """Runs the installed safe-docker against the world, with its own config/cache/state."""

    world: World
    home: Path

    @property
    def config_dir(self) -> Path:
        return self.home / "config"

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache"

    @property
    def state_dir(self) -> Path:
        return self.home / "state"

    def env(self, **extra: str) -> dict[str, str]:
        env = self.world.docker_env()
        env.update(
            SAFE_DOCKER_CONFIG_DIR=str(self.config_dir),
            SAFE_DOCKER_CACHE_DIR=str(self.cache_dir),
            SAFE_DOCKER_STATE_DIR=str(self.state_dir),
            SAFE_DOCKER_SYSTEM_CONFIG_DIR=str(self.home / "system"),
            SAFE_DOCKER_REAL_DOCKER=self.world.docker,
        )
        env.update(extra)
        return env

    def __call__(self, *args: str, env: dict[str, str] | None = None,
                 input: str | None = None, timeout: float = 300) -> Result:
        proc = subprocess.run(
            [*safe_docker_command(), *args],
            env=self.env(**(env or {})),
            capture_output=True,
            text=True,
            input=input,
            timeout=timeout,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def ok(self, *args: str, **env: str) -> Result:
        """Run safe-docker and require exit 0."""
        result = self(*args, env=env)
        assert result.exit_code == 0, (args, result.stdout, result.stderr)
        return result


@dataclass
class SigningHome(SafeDocker):
    """A home with the key password set, signing with the key ``k`` in its keys/ directory."""

    def env(self, **extra: str) -> dict[str, str]:
        return super().env(**{"COSIGN_PASSWORD": PASSWORD, **extra})

    @property
    def key(self) -> Path:
        return self.home / "keys" / "k.key"

    def sign(self, reference: str) -> None:
        self.ok("sign", "--key", str(self.key), reference)


@pytest.fixture
def safe_docker(world: World, tmp_path: Path) -> SafeDocker:
    home = tmp_path / "sd"
    home.mkdir()
    return SafeDocker(world=world, home=home)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.e2e)


def ok(run: Callable[..., Result], *args: str, **env: str) -> Result:
    """Run safe-docker through any runner that takes ``env=``, and require exit 0."""
    result = run(*args, env={"COSIGN_PASSWORD": PASSWORD, **env})
    assert result.exit_code == 0, (args, result.stdout, result.stderr)
    return result


def trust_new_key_and_sign(run: Callable[..., Result], keys: Path, scope: str, image: Image,
                           name: str = "demo") -> None:
    """Generate key NAME in KEYS, require it for SCOPE, and sign IMAGE with it."""
    ok(run, "keys", "generate", name, "--dir", str(keys))
    ok(run, "policy", "add", scope, "--key", name)
    ok(run, "sign", "--key", str(keys / f"{name}.key"), image.tagged)


# --- the warm and express paths' world (test_warm_path.py, test_express_path.py) -----


@dataclass
class Warm:
    sd: SafeDocker
    image: Image
    key: Path
    log: Path
    env: dict[str, str]

    def docker_calls(self) -> list[list[str]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        self.log.unlink(missing_ok=True)
        return subprocess.run([*_command(), *args], env=self.env, capture_output=True,
                              text=True, timeout=300, check=False)


def _command() -> list[str]:
    return [sys.executable, "-m", "safedocker"]


@pytest.fixture
def warm(world: World, safe_docker: SafeDocker, tmp_path: Path,
         request: pytest.FixtureRequest) -> Warm:
    space = f"warm-{abs(hash(request.node.name)) % 10**8}"
    image = world.push_image(f"{space}/app")
    trust_new_key_and_sign(safe_docker, tmp_path, f"{world.registry}/{space}/*", image)
    wrapper, log = logging_docker(world, tmp_path)
    env = safe_docker.env(SAFE_DOCKER_REAL_DOCKER=str(wrapper))
    env.pop("SAFE_DOCKER_DRY_RUN", None)
    return Warm(safe_docker, image, tmp_path / "demo.key", log, env)


def logging_docker(world: World, directory: Path) -> tuple[Path, Path]:
    """A docker in DIRECTORY that appends its argv to a JSON-lines log and execs the
    world's docker, for SAFE_DOCKER_REAL_DOCKER: (the wrapper, the log)."""
    log = directory / "docker-calls.jsonl"
    wrapper = directory / "docker"
    wrapper.write_text(
        "#!/bin/sh\n"
        f"{sys.executable} -c 'import json,sys; print(json.dumps(sys.argv[1:]))' \"$@\" "
        f">> {log}\n"
        f"exec {world.docker} \"$@\"\n")
    wrapper.chmod(0o755)
    return wrapper, log


def _audit(sd: SafeDocker) -> list[dict[str, object]]:
    path = sd.state_dir / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]
