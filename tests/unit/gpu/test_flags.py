"""The GPU flag decision: mode, selection, the user's own options, and the daemon's form."""


from __future__ import annotations

import csv
from typing import TYPE_CHECKING, Any

import pytest

from safedocker.errors import ConfigError, GpuRequirementUnmet
from safedocker.gpu.daemon import DaemonGpu, daemon_from_info
from safedocker.gpu.flags import GpuMethod, GpuMode, gpus_value, resolve_mode
from safedocker.gpu.requirements import is_cuda_image
from tests.unit.gpu.hosts import (
    CDI_DAEMON,
    CUDA_IMAGE,
    GPU_HOST,
    NO_GPU,
    OLD_DAEMON,
    PLAIN_IMAGE,
    RUNTIME_DAEMON,
    device,
    flags,
)

if TYPE_CHECKING:
    from pathlib import Path

    from safedocker.gpu.detect import HostGpu


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


