"""The daemon's GPU facts from a docker info answer."""


from __future__ import annotations

from typing import IO, TYPE_CHECKING, Any

import pytest

from safedocker._docker.binary import find_real_docker
from safedocker._docker.engine import (
    DockerCLI,
    DockerEngine,
    EngineInfo,
    LocalImage,
    ServerPlatform,
)
from safedocker.errors import SafeDockerError
from safedocker.gpu.daemon import DaemonGpu, daemon_from_info, detect_daemon
from tests.unit.gpu.hosts import flags

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path


# --------------------------------------------------------------------------------------
# Daemon


REAL_INFO = {
    "ID": "abc",
    "ServerVersion": "27.3.1",
    "DefaultRuntime": "runc",
    "Runtimes": {
        "io.containerd.runc.v2": {"path": "runc", "status": {}},
        "nvidia": {"path": "nvidia-container-runtime"},
        "runc": {"path": "runc", "status": {}},
    },
    "CDISpecDirs": ["/etc/cdi", "/var/run/cdi"],
}


class FakeEngine:
    """A daemon that answers ``docker info`` with ``answer`` (or fails with it)."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer

    def info(self) -> EngineInfo:
        if isinstance(self.answer, SafeDockerError):
            raise self.answer
        return EngineInfo(self.answer)

    def image_id(self, reference: str) -> str | None:
        raise AssertionError("not asked here")

    def inspect_image(self, reference: str, *, config: bool = False) -> LocalImage | None:
        raise AssertionError("not asked here")

    def server_platform(self) -> ServerPlatform:
        raise AssertionError("not asked here")

    def tag(self, source: str, target: str) -> None:
        raise AssertionError("not asked here")

    def pull(self, reference: str) -> None:
        raise AssertionError("not asked here")

    def save(self, output: Path, images: Sequence[str]) -> None:
        raise AssertionError("not asked here")

    def load(self, archive: Path | IO[bytes]) -> None:
        raise AssertionError("not asked here")

    def server_version(self) -> str:
        raise AssertionError("not asked here")


_check: DockerEngine = FakeEngine({})  # mypy: the fake is a DockerEngine


def test_daemon_from_docker_info() -> None:
    daemon = detect_daemon(FakeEngine(REAL_INFO))
    assert daemon == DaemonGpu(
        nvidia_runtime=True,
        default_runtime="runc",
        cdi_nvidia_devices=(),
        runtimes=("io.containerd.runc.v2", "nvidia", "runc"),
        nvidia_runtime_name="nvidia",
        cdi_spec_dirs=("/etc/cdi", "/var/run/cdi"),
        server_version="27.3.1",
    )


def test_nvidia_runtime_under_another_name_is_found_by_path() -> None:
    daemon = daemon_from_info({"Runtimes": {"gpu": {"path": "/usr/bin/nvidia-container-runtime"}}})
    assert daemon.nvidia_runtime and daemon.nvidia_runtime_name == "gpu"
    old = daemon_from_info({**OLD_INFO, "Runtimes": {"gpu": {"path": "nvidia-container-runtime"}}})
    assert flags(daemon=old).args[0] == "--runtime=gpu"


OLD_INFO = {"ServerVersion": "18.09.1"}


def test_default_runtime_nvidia() -> None:
    daemon = daemon_from_info({**REAL_INFO, "DefaultRuntime": "nvidia"})
    assert daemon.default_runtime == "nvidia"
    assert flags(daemon=daemon).args == ("--gpus", "all")


def test_unreachable_daemon_is_a_value_not_a_crash() -> None:
    daemon = detect_daemon(FakeEngine(SafeDockerError("docker info failed",
                                                      why="connection refused")))
    assert daemon.reachable is False
    assert daemon.nvidia_runtime is False
    assert daemon.reason


def test_detect_daemon_asks_the_daemon_the_docker_cli_reaches(tmp_path: Path) -> None:
    docker = find_real_docker()
    if docker is None:
        pytest.skip("no docker CLI")
    sock = tmp_path / "nothing.sock"
    daemon = detect_daemon(DockerCLI(docker, environ={"DOCKER_HOST": f"unix://{sock}"}))
    assert daemon.reachable is False
    assert "not reachable" in daemon.reason and str(sock) in daemon.reason
    flagged = detect_daemon(DockerCLI(docker, (f"--host=unix://{sock}",)))
    assert flagged.reachable is False and str(sock) in flagged.reason


def test_garbage_info_fields_are_ignored() -> None:
    daemon = daemon_from_info(
        {"Runtimes": "x", "DiscoveredDevices": [1, {"Source": "cdi"}], "CDISpecDirs": "y"}
    )
    assert daemon == DaemonGpu(False)


