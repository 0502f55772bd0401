"""packaging/bootstrap-gpu-node.sh on a fresh "GPU node": its own dockerd (with an nvidia
runtime registered, so that doctor's GPU checks can pass) and registry, a fake NVIDIA
driver, a temporary prefix and system config dir. It ends with only verified images,
pinned; a second run changes nothing; an unsigned image in the list stops it cleanly."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from safedocker.trust.roots import embedded_trust_root_bytes
from tests.e2e.conftest import SafeDocker
from tests.e2e.test_packaging import PACKAGING, build_bundle
from tests.fakenvml import build_fake_nvml, compiler, fake_nvml_env
from tests.world import World, _wait_for, ensure_installed

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.world import Image

PASSWORD = "pw"  # noqa: S105 - test keys only
RUNC = shutil.which("runc") or "/usr/sbin/runc"


class GpuNodeWorld(World):
    """A World whose dockerd also knows a runtime named nvidia (runc underneath)."""

    def _start_dockerd(self) -> None:
        log = open(self.root / "dockerd.log", "ab")  # noqa: SIM115 - owned by the process
        proc = subprocess.Popen(
            ["dockerd", "--data-root", str(self.root / "data"),
             "--exec-root", str(self.root / "exec"), "-H", self.docker_host,
             "--pidfile", str(self.root / "docker.pid"), "--bridge=none",
             "--iptables=false", "--ip-masq=false", "--userland-proxy=false",
             "--add-runtime", f"nvidia={RUNC}"],
            stdout=log, stderr=log, start_new_session=True,
        )
        self._procs.append(proc)

        def ready() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"dockerd exited; see {self.root / 'dockerd.log'}")
            return self.socket_path.exists() and (
                self.run_docker("version", check=False).returncode == 0)

        _wait_for(ready, "dockerd")


@pytest.fixture(scope="module")
def node() -> Iterator[World]:
    ensure_installed()
    root = Path(tempfile.mkdtemp(prefix="sdn-", dir="/tmp"))
    world = GpuNodeWorld(root=root).start()
    try:
        yield world
    finally:
        world.stop()
        shutil.rmtree(root, ignore_errors=True)


class Signed:
    def __init__(self, key: Path, public: Path, images: list[Image], unsigned: Image) -> None:
        self.key, self.public, self.images, self.unsigned = key, public, images, unsigned


@pytest.fixture(scope="module")
def signed(node: World, tmp_path_factory: pytest.TempPathFactory) -> Signed:
    """Three signed images (two for the node, one spare) and one unsigned, in the node's
    registry, signed with the development safe-docker from a separate home."""
    signer = SafeDocker(world=node, home=tmp_path_factory.mktemp("signer"))
    keys = tmp_path_factory.mktemp("keys")
    env = {"COSIGN_PASSWORD": PASSWORD}
    assert signer("keys", "generate", "node", "--dir", str(keys), env=env).exit_code == 0
    images = [node.push_image(f"gpu/{name}") for name in ("trainer", "server", "spare")]
    for image in images:
        result = signer("sign", "--key", str(keys / "node.key"), image.tagged, env=env)
        assert result.exit_code == 0, result.stderr
    return Signed(keys / "node.key", keys / "node.pub", images, node.push_image("gpu/unsigned"))


@pytest.fixture(scope="module")
def fake_driver(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if compiler() is None:
        pytest.skip("no C compiler for the fake NVIDIA driver")
    lib = tmp_path_factory.mktemp("nvml")
    build_fake_nvml(lib)
    return lib


class Bootstrap:
    """Runs the script with everything a node has, pointed at temporary directories."""

    def __init__(self, node: World, root: Path, bundle: Path, driver: Path,
                 signed: Signed) -> None:
        self.node, self.root, self.bundle, self.signed = node, root, bundle, signed
        self.system = root / "etc-safe-docker"
        self.prefix = root / "opt"
        self.trust_root = root / "trusted_root.json"
        self.trust_root.write_bytes(embedded_trust_root_bytes())
        self.env = fake_nvml_env(driver, gpus=1)
        self.env = {k: v for k, v in self.env.items()
                    if not k.startswith(("SAFE_DOCKER_", "PIP_"))}
        self.env.update(
            DOCKER_HOST=node.docker_host,
            DOCKER_CONFIG=str(node.root / "docker-config"),
            SAFE_DOCKER_SYSTEM_CONFIG_DIR=str(self.system),
            # root's own config/cache/state on a real node
            SAFE_DOCKER_CONFIG_DIR=str(root / "root-config"),
            SAFE_DOCKER_CACHE_DIR=str(root / "root-cache"),
            SAFE_DOCKER_STATE_DIR=str(root / "root-state"),
            PIP_NO_INDEX="1", PIP_CONFIG_FILE="/dev/null",
            PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )

    def __call__(self, *images: str) -> subprocess.CompletedProcess[str]:
        registry = self.node.registry
        argv = [str(PACKAGING / "bootstrap-gpu-node.sh"), "--bundle", str(self.bundle),
                "--prefix", str(self.prefix), "--bin-dir", str(self.root / "bin"),
                "--python", shutil.which("python3") or "python3",
                "--key", f"node={self.signed.public}", "--policy", f"{registry}/gpu/*=node",
                "--trust-root", str(self.trust_root)]
        for image in images:
            argv += ["--image", image]
        return subprocess.run(argv, env=self.env, capture_output=True, text=True,
                              timeout=600, check=False)

    def node_images(self) -> set[str]:
        out = self.node.run_docker("images", "--digests", "--format",
                                   "{{.Repository}}@{{.Digest}}").stdout.decode()
        return set(out.split())

    def snapshot(self) -> dict[Path, tuple[bytes, int]]:
        dirs = (self.system, self.prefix, self.root / "root-config", self.root / "bin")
        return {p: (p.read_bytes() if p.is_file() else b"", p.lstat().st_mtime_ns)
                for d in dirs for p in d.rglob("*")}


@pytest.fixture(scope="session")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_bundle(tmp_path_factory)


@pytest.fixture
def bootstrap(node: World, bundle: Path, fake_driver: Path, signed: Signed,
              tmp_path: Path) -> Bootstrap:
    for image in signed.images + [signed.unsigned]:
        node.remove_images(image.pinned, image.tagged)
    return Bootstrap(node, tmp_path, bundle, fake_driver, signed)


def test_the_node_ends_with_only_verified_pinned_images_and_a_rerun_changes_nothing(
    bootstrap: Bootstrap, signed: Signed
) -> None:
    wanted = signed.images[:2]
    first = bootstrap(*(image.tagged for image in wanted))
    assert first.returncode == 0, first.stderr
    assert bootstrap.node_images() == {image.pinned for image in wanted}
    config = (bootstrap.system / "config.toml").read_text()
    assert "locked = true" in config
    assert (bootstrap.system / "keys" / "node.pub").read_bytes() == signed.public.read_bytes()
    assert "[ok] nvidia driver: driver" in first.stderr  # the fake GPU was seen
    assert "[ok] nvidia container runtime" in first.stderr
    assert "FAIL" not in first.stderr

    before = bootstrap.snapshot()
    second = bootstrap(*(image.tagged for image in wanted))
    assert second.returncode == 0, second.stderr
    assert "wrote" not in second.stderr and "installing" not in second.stderr
    assert bootstrap.snapshot() == before
    assert bootstrap.node_images() == {image.pinned for image in wanted}

    # The installed safe-docker enforces the locked system policy for everyone.
    installed = bootstrap.prefix / "bin" / "safe-docker"
    refused = subprocess.run([str(installed), "pull", signed.unsigned.tagged],
                             env=bootstrap.env, capture_output=True, text=True, check=False)
    assert refused.returncode == 77, refused.stderr


def test_an_unsigned_image_stops_the_bootstrap_and_nothing_is_pulled(
    bootstrap: Bootstrap, signed: Signed
) -> None:
    spare, unsigned = signed.images[2], signed.unsigned
    result = bootstrap(spare.tagged, unsigned.tagged)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("bootstrap-gpu-node: error:")
    assert unsigned.tagged in last
    assert bootstrap.node_images() == set()  # verified first: not even the signed one


def test_bad_arguments_fail_with_one_clear_line(bootstrap: Bootstrap, tmp_path: Path) -> None:
    proc = subprocess.run([str(PACKAGING / "bootstrap-gpu-node.sh"), "--bundle",
                           str(tmp_path / "missing.tar.gz"), "--policy", "x/*=k"],
                          env=bootstrap.env, capture_output=True, text=True, check=False)
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines() == [
        f"bootstrap-gpu-node: error: no bundle at {tmp_path / 'missing.tar.gz'}"]
