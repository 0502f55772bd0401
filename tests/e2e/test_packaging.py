"""The offline bundle: built here (with the package index), installed with no network into
a temporary prefix, and the installed copy verifies and runs a signed image pinned."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.e2e.conftest import Result, SafeDocker, trust_new_key_and_sign

if TYPE_CHECKING:
    from tests.world import Image, World

REPO = Path(__file__).resolve().parents[2]
PACKAGING = REPO / "packaging"
PASSWORD = "pw"  # noqa: S105 - test keys only
UNROUTABLE_INDEX = "http://192.0.2.1:9/simple"  # TEST-NET-1: nothing answers there
REFUSED = 77


def offline(argv: list[str]) -> list[str]:
    """argv in a network namespace of its own (no network at all) when we may make one."""
    unshare = shutil.which("unshare")
    if os.geteuid() == 0 and unshare and subprocess.run(
        [unshare, "-n", "true"], capture_output=True, check=False
    ).returncode == 0:
        return [unshare, "-n", *argv]
    return argv


def offline_pip_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "SAFE_DOCKER_"))}
    env.update(PIP_INDEX_URL=UNROUTABLE_INDEX, PIP_NO_INDEX="1", PIP_CONFIG_FILE="/dev/null")
    return env


_BUILT: dict[str, Path] = {}


def build_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """packaging/build-bundle.sh for this machine's Python, once per session (the bootstrap
    tests use the same bundle)."""
    if "bundle" not in _BUILT:
        output = tmp_path_factory.mktemp("bundle") / "safe-docker-bundle.tar.gz"
        proc = subprocess.run(
            [str(PACKAGING / "build-bundle.sh"), "--python", sys.executable,
             "--output", str(output)],
            capture_output=True, text=True, timeout=600, check=False,
        )
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == str(output)
        _BUILT["bundle"] = output
    return _BUILT["bundle"]


@pytest.fixture(scope="session")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_bundle(tmp_path_factory)


def unpack(bundle: Path, into: Path) -> Path:
    with tarfile.open(bundle) as tar:
        tar.extractall(into, filter="data")
    (top,) = into.iterdir()
    return top


@dataclass
class Installed:
    prefix: Path
    bin_dir: Path
    shim_dir: Path
    install_log: str

    @property
    def safe_docker(self) -> Path:
        return self.bin_dir / "safe-docker"


def install(unpacked: Path, root: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        offline([str(unpacked / "install.sh"), "--python", sys.executable,
                 "--prefix", str(root / "opt"), "--bin-dir", str(root / "bin"),
                 "--docker-shim", "--shim-dir", str(root / "shim"), *extra]),
        env=offline_pip_env(), capture_output=True, text=True, timeout=600, check=False,
    )


@pytest.fixture(scope="module")
def installed(bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Installed:
    root = tmp_path_factory.mktemp("install")
    unpacked = unpack(bundle, root / "unpacked")
    proc = install(unpacked, root)
    assert proc.returncode == 0, proc.stderr
    return Installed(root / "opt", root / "bin", root / "shim", proc.stderr)


@dataclass
class InstalledHome(SafeDocker):
    """The world, driven by the installed copy instead of the development one."""

    command: Path = Path()

    def __call__(self, *args: str, env: dict[str, str] | None = None,
                 input: str | None = None, timeout: float = 300) -> Result:
        proc = subprocess.run([str(self.command), *args],
                              env=self.env(**{"COSIGN_PASSWORD": PASSWORD, **(env or {})}),
                              capture_output=True, text=True, input=input, timeout=timeout)
        return Result(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture(scope="module")
def home(world: World, installed: Installed,
         tmp_path_factory: pytest.TempPathFactory) -> InstalledHome:
    return InstalledHome(world=world, home=tmp_path_factory.mktemp("sd-bundle"),
                         command=installed.safe_docker)


@pytest.fixture(scope="module")
def signed(world: World, home: InstalledHome, tmp_path_factory: pytest.TempPathFactory) -> Image:
    image = world.push_image("bundle/signed")
    trust_new_key_and_sign(home, tmp_path_factory.mktemp("keys"), f"{world.registry}/bundle/*",
                           image)
    return image


def test_the_bundle_holds_wheels_their_checksums_and_the_scripts(bundle: Path,
                                                                 tmp_path: Path) -> None:
    top = unpack(bundle, tmp_path)
    wheels = sorted(p.name for p in (top / "wheels").iterdir())
    assert all(name.endswith(".whl") for name in wheels)
    assert any(name.startswith("safe_docker-") for name in wheels)
    assert any(name.startswith("cryptography-") for name in wheels)
    assert len((top / "SHA256SUMS").read_text().splitlines()) == len(wheels)
    for script in ("install.sh", "bootstrap-gpu-node.sh", "install-plugin.sh"):
        assert os.access(top / script, os.X_OK)
    assert (top / "shell" / "safe-docker.bash").is_file()


def test_installed_offline_and_runs(installed: Installed) -> None:
    version = subprocess.run([str(installed.safe_docker), "--version"], capture_output=True,
                             text=True, check=False)
    assert version.returncode == 0, version.stderr
    assert version.stdout.startswith("safe-docker ")
    assert installed.safe_docker.resolve() == installed.prefix / "bin" / "safe-docker"
    assert "installing safe-docker" in installed.install_log


def test_installing_again_changes_nothing(bundle: Path, installed: Installed,
                                          tmp_path: Path) -> None:
    unpacked = unpack(bundle, tmp_path)
    before = {p: p.stat().st_mtime_ns for p in installed.prefix.rglob("*") if p.is_file()}
    proc = install(unpacked, installed.prefix.parent)
    assert proc.returncode == 0, proc.stderr
    assert "already installed" in proc.stderr
    after = {p: p.stat().st_mtime_ns for p in installed.prefix.rglob("*") if p.is_file()}
    assert before == after


def test_a_damaged_bundle_is_refused(bundle: Path, tmp_path: Path) -> None:
    unpacked = unpack(bundle, tmp_path / "unpacked")
    wheel = next((unpacked / "wheels").glob("safe_docker-*.whl"))
    wheel.write_bytes(wheel.read_bytes() + b"tampered")
    proc = install(unpacked, tmp_path)
    assert proc.returncode != 0
    assert "do not match SHA256SUMS" in proc.stderr
    assert not (tmp_path / "opt").exists()


def test_the_installed_copy_verifies_and_runs_pinned(
    home: InstalledHome, signed: Image, world: World
) -> None:
    verified = home("verify", signed.tagged)
    assert verified.exit_code == 0, verified.stderr
    assert signed.digest in verified.stdout

    dry = home("run", "--rm", "--network", "none", signed.tagged, "echo", "hi",
               env={"SAFE_DOCKER_DRY_RUN": "1"})
    assert dry.exit_code == 0, dry.stderr
    assert any(signed.pinned in argv for argv in dry.dry_run_argvs)

    ran = home("run", "--rm", "--network", "none", signed.tagged, "echo", "hi")
    assert ran.exit_code == 0, ran.stderr
    assert ran.stdout.strip() == "hi"

    unsigned = world.push_image("bundle/unsigned")
    refused = home("run", "--rm", "--network", "none", unsigned.tagged, "echo", "never")
    assert refused.exit_code == REFUSED, refused.stderr
    assert not world.has_image(unsigned.pinned)


def test_the_docker_shim_pins_the_real_docker(installed: Installed, home: InstalledHome,
                                              signed: Image, world: World) -> None:
    shim = installed.shim_dir / "docker"
    assert f"SAFE_DOCKER_REAL_DOCKER='{os.path.realpath(world.docker)}'" in shim.read_text()
    env = home.env(SAFE_DOCKER_DRY_RUN="1", COSIGN_PASSWORD=PASSWORD)
    del env["SAFE_DOCKER_REAL_DOCKER"]  # the wrapper pins it
    env["PATH"] = f"{installed.shim_dir}:/usr/local/bin:/usr/bin:/bin"
    proc = subprocess.run(["docker", "run", "--rm", signed.tagged, "true"], env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    assert f'"{os.path.realpath(world.docker)}"' in proc.stdout
    assert signed.pinned in proc.stdout
    # What cannot start an image runs the real docker straight from the wrapper (no
    # safe-docker, so no dry run): docker's own answer.
    passthrough = subprocess.run(["docker", "version", "--format", "{{.Client.Version}}"],
                                 env=env, capture_output=True, text=True, timeout=60,
                                 check=False)
    assert passthrough.returncode == 0
    assert passthrough.stdout.strip()[:1].isdigit()


def test_the_installed_copy_has_the_shell_files(installed: Installed) -> None:
    if "safedocker/_shell" not in (REPO / "pyproject.toml").read_text():
        pytest.skip("pyproject.toml does not force-include shell/ as safedocker/_shell yet")
    proc = subprocess.run([str(installed.safe_docker), "shell-init", "bash"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "function docker" in proc.stdout
