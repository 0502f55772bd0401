"""The daemon's GPU facts from a docker info answer."""


from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from safedocker.gpu.daemon import DaemonGpu, daemon_from_info, detect_daemon
from tests.unit.gpu.hosts import flags

if TYPE_CHECKING:
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


class FakeClient:
    def __init__(self, answer: Any) -> None:
        self.answer = answer

    def info(self) -> Any:
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def test_daemon_from_docker_info() -> None:
    daemon = detect_daemon(client=FakeClient(REAL_INFO))
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


@pytest.mark.parametrize(
    "answer", [ConnectionError("connection refused"), None, ["not", "a", "mapping"]]
)
def test_unreachable_or_odd_daemon_is_a_value_not_a_crash(answer: Any) -> None:
    daemon = detect_daemon(client=FakeClient(answer))
    assert daemon.reachable is False
    assert daemon.nvidia_runtime is False
    assert daemon.reason


def test_detect_daemon_honours_docker_host(tmp_path: Path) -> None:
    sock = tmp_path / "nothing.sock"
    daemon = detect_daemon({"DOCKER_HOST": f"unix://{sock}"}, timeout=2)
    assert daemon.reachable is False
    assert "not reachable" in daemon.reason


def test_garbage_info_fields_are_ignored() -> None:
    daemon = daemon_from_info(
        {"Runtimes": "x", "DiscoveredDevices": [1, {"Source": "cdi"}], "CDISpecDirs": "y"}
    )
    assert daemon == DaemonGpu(False)


