"""GPU detection (through a fake NVIDIA driver), daemon facts, and the flag decision."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import pytest

from safedocker.errors import ConfigError, GpuRequirementUnmet
from safedocker.gpu import (
    DaemonGpu,
    GpuDevice,
    GpuFlags,
    GpuMethod,
    GpuMode,
    HostGpu,
    daemon_from_info,
    detect_daemon,
    doctor_checks,
    gpu_flags,
    gpus_value,
    is_cuda_image,
    report,
    resolve_mode,
)
from tests.fakenvml import (
    build_fake_nvml,
    compiler,
    detect_in_subprocess,
    fake_nvml_env,
    real_nvml_visible,
)

if TYPE_CHECKING:
    import enum
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
        "import sys, safedocker.gpu; "
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
        "from safedocker.gpu import detect_host, check_requirements\n"
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


# --------------------------------------------------------------------------------------
# Values for the decision table


def device(index: int = 0) -> GpuDevice:
    return GpuDevice(
        index=index,
        name="NVIDIA A100-SXM4-80GB",
        uuid=f"GPU-fa4e0000-0000-4000-8000-{index:012x}",
        memory_total=80 << 30,
        brand="Tesla",
        brand_id=2,
        compute_capability=(8, 0),
        mig_current=False,
        mig_pending=False,
    )


GPU_HOST = HostGpu(True, "550.54.15", (12, 4), (device(0), device(1)))
NO_GPU = HostGpu(False, reason="no NVIDIA driver library (libnvidia-ml.so.1 not found)")
CUDA_IMAGE = {"config": {"Env": ["PATH=/usr/bin", "NVIDIA_REQUIRE_CUDA=cuda>=12.4"]}}
PLAIN_IMAGE = {"config": {"Env": ["PATH=/usr/bin"], "Labels": {"a": "b"}}}
RUNTIME_DAEMON = daemon_from_info(
    {
        "ServerVersion": "24.0.7",
        "DefaultRuntime": "runc",
        "Runtimes": {"runc": {"path": "runc"}, "nvidia": {"path": "nvidia-container-runtime"}},
    }
)
CDI_DAEMON = daemon_from_info(
    {
        "ServerVersion": "28.3.0",
        "DefaultRuntime": "runc",
        "Runtimes": {"runc": {"path": "runc"}},
        "CDISpecDirs": ["/etc/cdi", "/var/run/cdi"],
        "DiscoveredDevices": [
            {"Source": "cdi", "ID": "nvidia.com/gpu=0"},
            {"Source": "cdi", "ID": "nvidia.com/gpu=1"},
            {"Source": "cdi", "ID": "nvidia.com/gpu=all"},
            {"Source": "cdi", "ID": "vendor.com/fpga=0"},
        ],
    }
)
OLD_DAEMON = daemon_from_info(
    {
        "ServerVersion": "18.09.1",
        "Runtimes": {"nvidia": {"path": "/usr/bin/nvidia-container-runtime"}},
    }
)
NO_ENV: dict[str, str] = {}


def flags(
    mode: GpuMode | enum.Enum | str | None = "auto",
    host: HostGpu = GPU_HOST,
    image: dict[str, Any] | None = None,
    user: list[tuple[str, str | None]] | None = None,
    daemon: DaemonGpu | None = RUNTIME_DAEMON,
    environ: dict[str, str] | None = None,
) -> GpuFlags:
    return gpu_flags(
        user or [],
        CUDA_IMAGE if image is None else image,
        host,
        daemon,
        mode,
        environ=NO_ENV if environ is None else environ,
    )


@pytest.mark.parametrize(
    ("mode", "host", "image", "expected"),
    [
        ("auto", GPU_HOST, CUDA_IMAGE, ("--gpus", "all")),
        ("auto", GPU_HOST, PLAIN_IMAGE, ()),
        ("auto", NO_GPU, CUDA_IMAGE, ()),
        ("auto", NO_GPU, PLAIN_IMAGE, ()),
        ("always", GPU_HOST, CUDA_IMAGE, ("--gpus", "all")),
        ("always", GPU_HOST, PLAIN_IMAGE, ("--gpus", "all")),
        ("never", GPU_HOST, CUDA_IMAGE, ()),
        ("never", GPU_HOST, PLAIN_IMAGE, ()),
        ("never", NO_GPU, CUDA_IMAGE, ()),
        ("never", NO_GPU, PLAIN_IMAGE, ()),
    ],
)
def test_flag_decision_table(
    mode: str, host: HostGpu, image: dict[str, Any], expected: tuple[str, ...]
) -> None:
    decision = flags(mode, host, image)
    assert decision.args == expected
    assert decision.mode == GpuMode(mode)
    assert decision.gives_gpus is bool(expected)
    assert decision.reason


@pytest.mark.parametrize("image", [CUDA_IMAGE, PLAIN_IMAGE])
def test_always_on_a_host_without_gpu_is_refused(image: dict[str, Any]) -> None:
    with pytest.raises(GpuRequirementUnmet) as info:
        flags("always", NO_GPU, image)
    assert info.value.exit_code == 125
    assert "no usable NVIDIA GPU" in info.value.line()
    assert "SAFE_DOCKER_GPU=auto" in info.value.hint


@pytest.mark.parametrize("mode", ["auto", "always", "never"])
@pytest.mark.parametrize("host", [GPU_HOST, NO_GPU])
@pytest.mark.parametrize(
    "user",
    [
        [("--gpus", "all")],
        [("--gpus", '"device=1"')],
        [("--runtime", "nvidia")],
        [("--runtime", "runc")],
        [("--device", "nvidia.com/gpu=0")],
        [("--device", "/dev/nvidia0")],
        [("--env", "NVIDIA_VISIBLE_DEVICES=0")],
        [("--env", "NVIDIA_VISIBLE_DEVICES")],  # bare: value from the client's environment
        [("--name", "x"), ("--env", "A=1"), ("--env", "NVIDIA_VISIBLE_DEVICES=none")],
    ],
)
def test_user_gpu_options_are_never_doubled(
    mode: str, host: HostGpu, user: list[tuple[str, str | None]]
) -> None:
    decision = flags(mode, host, user=user)
    assert decision.args == ()
    assert decision.user_requested is True
    assert decision.gives_gpus is True
    assert "already asks for GPUs" in decision.reason


def test_env_file_with_visible_devices_counts_as_user_gpu_option(tmp_path: Path) -> None:
    with_key = tmp_path / "gpu.env"
    with_key.write_text("# comment\nA=1\n  NVIDIA_VISIBLE_DEVICES=0\n")
    bare_key = tmp_path / "bare.env"
    bare_key.write_text("NVIDIA_VISIBLE_DEVICES\n")
    without = tmp_path / "plain.env"
    without.write_text("A=1\n# NVIDIA_VISIBLE_DEVICES=0\nNVIDIA_VISIBLE_DEVICES_X=1\n")
    assert flags(user=[("--env-file", str(with_key))]).args == ()
    assert flags(user=[("--env-file", str(bare_key))]).args == ()
    assert flags(user=[("--env-file", str(without))]).args == ("--gpus", "all")
    missing = str(tmp_path / "missing.env")  # docker reports it; we do not guess
    assert flags(user=[("--env-file", missing)]).args == ("--gpus", "all")


def test_unrelated_user_options_do_not_block() -> None:
    user = [("--device", "/dev/fuse"), ("--env", "CUDA_VISIBLE_DEVICES=0"), ("--rm", None)]
    assert flags(user=user).args == ("--gpus", "all")


@pytest.mark.parametrize(
    ("selection", "gpus", "cdi", "runtime_env"),
    [
        ("0,1", '"device=0,1"', ["nvidia.com/gpu=0", "nvidia.com/gpu=1"], "0,1"),
        ("1", '"device=1"', ["nvidia.com/gpu=1"], "1"),
        ("all", "all", ["nvidia.com/gpu=all"], "all"),
        (" 1 , 0 ", '"device=1,0"', ["nvidia.com/gpu=1", "nvidia.com/gpu=0"], "1,0"),
    ],
)
def test_device_selection_in_each_form(
    selection: str, gpus: str, cdi: list[str], runtime_env: str
) -> None:
    env = {"SAFE_DOCKER_GPUS": selection}
    assert flags(daemon=RUNTIME_DAEMON, environ=env).args == ("--gpus", gpus)
    cdi_args = flags(daemon=CDI_DAEMON, environ=env).args
    assert list(cdi_args[1::2]) == cdi
    assert set(cdi_args[0::2]) == {"--device"}
    assert flags(daemon=OLD_DAEMON, environ=env).args == (
        "--runtime=nvidia",
        "-e",
        f"NVIDIA_VISIBLE_DEVICES={runtime_env}",
    )


def test_selection_by_uuid() -> None:
    uuids = f"{device(1).uuid},{device(0).uuid}"
    decision = flags(environ={"SAFE_DOCKER_GPUS": uuids})
    assert decision.args == ("--gpus", f'"device={uuids}"')
    assert decision.devices == (device(1).uuid, device(0).uuid)


def test_gpus_value_is_one_csv_field_as_docker_reads_it() -> None:
    # docker's --gpus parser reads its value with encoding/csv: one record, fields by ','.
    for selection in (("0", "1"), ("0", "1", "2", "3"), (device(0).uuid, device(1).uuid)):
        token = gpus_value(selection)
        assert token.startswith('"') and token.endswith('"')
        (record,) = list(csv.reader([token]))
        assert record == ["device=" + ",".join(selection)]
    assert gpus_value(None) == "all"


@pytest.mark.parametrize(
    ("daemon", "method", "args"),
    [
        (RUNTIME_DAEMON, GpuMethod.GPUS, ("--gpus", "all")),
        (CDI_DAEMON, GpuMethod.CDI, ("--device", "nvidia.com/gpu=all")),
        (OLD_DAEMON, GpuMethod.RUNTIME, ("--runtime=nvidia", "-e", "NVIDIA_VISIBLE_DEVICES=all")),
        (None, GpuMethod.GPUS, ("--gpus", "all")),
        (DaemonGpu(False, reachable=False, reason="down"), GpuMethod.GPUS, ("--gpus", "all")),
        (daemon_from_info({"ServerVersion": "27.0.1"}), GpuMethod.GPUS, ("--gpus", "all")),
    ],
)
def test_form_precedence(
    daemon: DaemonGpu | None, method: GpuMethod, args: tuple[str, ...]
) -> None:
    decision = flags(daemon=daemon)
    assert (decision.method, decision.args) == (method, args)


def test_cdi_and_runtime_together_use_gpus() -> None:
    both = daemon_from_info(
        {
            "ServerVersion": "28.3.0",
            "Runtimes": {"nvidia": {"path": "nvidia-container-runtime"}},
            "DiscoveredDevices": [{"Source": "cdi", "ID": "nvidia.com/gpu=all"}],
        }
    )
    assert flags(daemon=both).args == ("--gpus", "all")


def test_cdi_device_the_daemon_does_not_list_is_refused() -> None:
    only_all = daemon_from_info(
        {"DiscoveredDevices": [{"Source": "cdi", "ID": "nvidia.com/gpu=all"}]}
    )
    with pytest.raises(GpuRequirementUnmet, match="no CDI device nvidia.com/gpu=1"):
        flags(daemon=only_all, environ={"SAFE_DOCKER_GPUS": "1"})


def test_environment_overrides_policy_mode() -> None:
    assert flags("never", environ={"SAFE_DOCKER_GPU": "always"}, image=PLAIN_IMAGE).args == (
        "--gpus",
        "all",
    )
    assert flags("always", environ={"SAFE_DOCKER_GPU": "never"}).args == ()
    assert flags(None, environ={"SAFE_DOCKER_GPU": "ALWAYS"}).mode is GpuMode.ALWAYS
    assert flags(None).mode is GpuMode.AUTO
    assert flags(GpuMode.NEVER.value, environ={"SAFE_DOCKER_GPU": ""}).mode is GpuMode.NEVER


def test_policy_enum_is_accepted() -> None:
    from safedocker.policy.model import GpuPolicy

    assert resolve_mode(GpuPolicy.ALWAYS, {}) is GpuMode.ALWAYS
    assert resolve_mode(GpuPolicy.NEVER, {"SAFE_DOCKER_GPU": "auto"}) is GpuMode.AUTO
    assert flags(GpuPolicy.NEVER).args == ()


@pytest.mark.parametrize(
    ("environ", "mode"),
    [({"SAFE_DOCKER_GPU": "sometimes"}, "auto"), ({}, "maybe")],
)
def test_invalid_mode_is_a_configuration_error(environ: dict[str, str], mode: str) -> None:
    with pytest.raises(ConfigError) as info:
        flags(mode, environ=environ)
    assert info.value.exit_code == 78


@pytest.mark.parametrize("value", ["0;1", "gpu0", "0,,1", "device=0", '"0"', "none"])
def test_invalid_device_selection_is_a_configuration_error(value: str) -> None:
    with pytest.raises(ConfigError, match="SAFE_DOCKER_GPUS"):
        flags(environ={"SAFE_DOCKER_GPUS": value})


@pytest.mark.parametrize("value", ["2", "0,7", "GPU-00000000-dead-beef-0000-000000000000", "3:0"])
def test_selecting_a_gpu_the_host_lacks_is_refused(value: str) -> None:
    with pytest.raises(GpuRequirementUnmet, match="does not have") as info:
        flags(environ={"SAFE_DOCKER_GPUS": value})
    assert device(0).uuid in info.value.why


def test_mig_selections_pass_through() -> None:
    env = {"SAFE_DOCKER_GPUS": "0:1,MIG-5c89852c-d268-c3f3-1b07-005d5ae1dc3f"}
    assert flags(environ=env).args == (
        "--gpus",
        '"device=0:1,MIG-5c89852c-d268-c3f3-1b07-005d5ae1dc3f"',
    )


@pytest.mark.parametrize(
    ("config", "cuda"),
    [
        ({"config": {"Env": ["NVIDIA_VISIBLE_DEVICES=all"]}}, True),
        ({"config": {"Env": ["NVIDIA_VISIBLE_DEVICES=void"]}}, False),
        ({"config": {"Env": ["NVIDIA_REQUIRE_CUDA=cuda>=11.0"]}}, True),
        ({"config": {"Env": ["CUDA_VERSION=10.0.130"]}}, True),
        ({"config": {"Labels": {"com.nvidia.volumes.needed": "nvidia_driver"}}}, True),
        ({"Config": {"Env": ["CUDA_VERSION=12.4.1"]}}, True),
        ({"Env": ["CUDA_VERSION=12.4.1"]}, True),
        ({"config": {"Env": ["CUDA_VISIBLE_DEVICES=0"], "Labels": None}}, False),
        ({}, False),
        (None, False),
    ],
)
def test_is_cuda_image(config: dict[str, Any] | None, cuda: bool) -> None:
    assert is_cuda_image(config) is cuda


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
