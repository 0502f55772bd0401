"""GPU detection through a fake NVIDIA driver (a C library built for the test)."""


from __future__ import annotations

import json
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import pytest

from tests.fakenvml import (
    build_fake_nvml,
    compiler,
    detect_in_subprocess,
    fake_nvml_env,
    real_nvml_visible,
)

if TYPE_CHECKING:
    from pathlib import Path


# --------------------------------------------------------------------------------------
# Detection through the fake driver


@pytest.fixture(scope="session")
def fake_nvml_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if compiler() is None:
        pytest.skip("no C compiler to build the fake NVML library")
    return build_fake_nvml(tmp_path_factory.mktemp("fakenvml")).parent


def test_importing_gpu_loads_neither_pynvml_nor_docker() -> None:
    code = (
        "import sys, safedocker.gpu.detect, safedocker.gpu.daemon, safedocker.gpu.flags, "
        "safedocker.gpu.requirements, safedocker.gpu.report; "
        "print(json.dumps(sorted(m for m in ('pynvml', 'docker') if m in sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", "import json; " + code],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert json.loads(out) == []


def test_no_library_at_all_is_a_quiet_no_gpu(tmp_path: Path) -> None:
    if real_nvml_visible():
        pytest.skip("a real libnvidia-ml.so.1 is installed; cannot simulate its absence")
    empty = tmp_path / "empty"
    empty.mkdir()
    host = detect_in_subprocess(fake_nvml_env(empty))
    assert host["present"] is False
    assert "libnvidia-ml.so.1 not found" in host["reason"]
    assert host["devices"] == []
    assert host["_stderr"] == ""


def test_driver_not_loaded_is_a_quiet_no_gpu(fake_nvml_dir: Path) -> None:
    host = detect_in_subprocess(fake_nvml_env(fake_nvml_dir, fail_init="driver_not_loaded"))
    assert host["present"] is False
    assert host["reason"] == "NVIDIA kernel driver not loaded"
    assert host["_stderr"] == ""


def test_any_other_nvml_error_is_a_quiet_no_gpu(fake_nvml_dir: Path) -> None:
    host = detect_in_subprocess(fake_nvml_env(fake_nvml_dir, fail_init="no_permission"))
    assert host["present"] is False
    assert "Insufficient Permissions" in host["reason"]


def test_driver_without_gpus_is_no_gpu(fake_nvml_dir: Path) -> None:
    host = detect_in_subprocess(fake_nvml_env(fake_nvml_dir, gpus=0))
    assert host["present"] is False
    assert host["driver_version"] == "535.104.05"
    assert "no GPU visible" in host["reason"]


def test_one_gpu(fake_nvml_dir: Path) -> None:
    host = detect_in_subprocess(fake_nvml_env(fake_nvml_dir))
    assert host["present"] is True
    assert host["driver_version"] == "535.104.05"
    assert host["cuda_version"] == [12, 2]
    (dev,) = host["devices"]
    assert dev == {
        "index": 0,
        "name": "NVIDIA A100-SXM4-80GB",
        "uuid": "GPU-fa4e0000-0000-4000-8000-000000000000",
        "memory_total": 80 << 30,
        "brand": "Tesla",
        "brand_id": 2,
        "compute_capability": [8, 0],
        "mig_current": False,
        "mig_pending": False,
    }


def test_eight_gpus_with_their_own_uuids(fake_nvml_dir: Path) -> None:
    host = detect_in_subprocess(
        fake_nvml_env(fake_nvml_dir, gpus=8, name="NVIDIA H100 80GB HBM3", brand=14, cc="9.0")
    )
    assert [d["index"] for d in host["devices"]] == list(range(8))
    assert len({d["uuid"] for d in host["devices"]}) == 8
    # NVML brand 14 (NVIDIA) is "Unknown" to libnvidia-container's brand= rule.
    assert {(d["brand"], d["brand_id"]) for d in host["devices"]} == {("Unknown", 14)}
    assert {tuple(d["compute_capability"]) for d in host["devices"]} == {(9, 0)}


@pytest.mark.parametrize(
    ("setting", "current", "pending"),
    [("1", True, True), ("pending", False, True), ("0", False, False), ("unsupported", None, None)],
)
def test_mig_mode(fake_nvml_dir: Path, setting: str, current: Any, pending: Any) -> None:
    (dev,) = detect_in_subprocess(fake_nvml_env(fake_nvml_dir, mig=setting))["devices"]
    assert (dev["mig_current"], dev["mig_pending"]) == (current, pending)


@pytest.mark.parametrize(
    ("code", "version"), [(11080, [11, 8]), (12020, [12, 2]), (12040, [12, 4])]
)
def test_cuda_driver_versions(fake_nvml_dir: Path, code: int, version: list[int]) -> None:
    host = detect_in_subprocess(fake_nvml_env(fake_nvml_dir, cuda=code, driver="550.54.15"))
    assert host["cuda_version"] == version
    assert host["driver_version"] == "550.54.15"


def test_memory_falls_back_to_the_v1_call(fake_nvml_dir: Path) -> None:
    (dev,) = detect_in_subprocess(fake_nvml_env(fake_nvml_dir, memory_v2=0, memory=24 << 30))[
        "devices"
    ]
    assert dev["memory_total"] == 24 << 30


def test_detected_host_feeds_the_requirement_check(fake_nvml_dir: Path) -> None:
    script = (
        "from safedocker.gpu.detect import detect_host\n"
        "from safedocker.gpu.requirements import check_requirements\n"
        "from safedocker.errors import SafeDockerError\n"
        "cfg = {'config': {'Env': ['NVIDIA_REQUIRE_CUDA=cuda>=12.4']}}\n"
        "try:\n    check_requirements(cfg, detect_host()); print('ok')\n"
        "except SafeDockerError as e:\n    print(e.line())\n"
    )

    def run(cuda: int) -> str:
        env = fake_nvml_env(fake_nvml_dir, cuda=cuda)
        return subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
        ).stdout.strip()

    assert run(12040) == "ok"
    assert run(12020).startswith("safe-docker: image needs CUDA >= 12.4 — this host's driver")


