"""Hosts, images and daemons the GPU tests decide about."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from safedocker.gpu.daemon import DaemonGpu, daemon_from_info
from safedocker.gpu.detect import GpuDevice, HostGpu
from safedocker.gpu.flags import GpuFlags, GpuMode, gpu_flags

if TYPE_CHECKING:
    import enum


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
