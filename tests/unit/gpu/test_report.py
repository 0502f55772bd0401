"""`safe-docker gpu --json` and the doctor's GPU checks."""


from __future__ import annotations

import json

import pytest

from safedocker.gpu.daemon import DaemonGpu, daemon_from_info
from safedocker.gpu.detect import HostGpu
from safedocker.gpu.report import doctor_checks, report
from tests.unit.gpu.hosts import (
    CDI_DAEMON,
    GPU_HOST,
    NO_GPU,
    RUNTIME_DAEMON,
    flags,
)

# --------------------------------------------------------------------------------------
# Report and doctor


def test_report_is_json_ready() -> None:
    decision = flags(environ={"SAFE_DOCKER_GPUS": "0,1"})
    out = report(GPU_HOST, RUNTIME_DAEMON, decision)
    assert json.loads(json.dumps(out)) == out
    assert out["host"]["cuda_version"] == "12.4"
    assert out["host"]["devices"][0]["compute_capability"] == "8.0"
    assert out["host"]["devices"][0]["brand_name"] == "Tesla"
    assert out["daemon"]["nvidia_runtime"] is True
    assert out["flags"] == {
        "args": ["--gpus", '"device=0,1"'],
        "mode": "auto",
        "method": "gpus",
        "devices": ["0", "1"],
        "user_requested": False,
        "reason": "the image is a CUDA image; using gpus",
    }
    assert report(NO_GPU, None, None)["daemon"] is None


def test_doctor_on_a_host_without_nvidia_driver_passes() -> None:
    (check,) = doctor_checks(NO_GPU, None)
    assert check.ok and "GPU flags will not be added" in check.detail


def test_doctor_on_a_broken_driver_fails_with_a_hint() -> None:
    (check,) = doctor_checks(HostGpu(False, reason="NVIDIA kernel driver not loaded"), None)
    assert not check.ok and "nvidia-smi" in check.hint


@pytest.mark.parametrize(
    ("daemon", "ok"),
    [
        (RUNTIME_DAEMON, True),
        (CDI_DAEMON, True),
        (daemon_from_info({"ServerVersion": "27.0.0", "Runtimes": {"runc": {}}}), False),
        (DaemonGpu(False, reachable=False, reason="docker daemon not reachable: x"), False),
    ],
)
def test_doctor_runtime_check(daemon: DaemonGpu, ok: bool) -> None:
    driver, runtime = doctor_checks(GPU_HOST, daemon)
    assert driver.ok and "550.54.15" in driver.detail
    assert runtime.ok is ok
    assert bool(runtime.hint) is not ok
