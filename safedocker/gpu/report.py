"""``safe-docker gpu``: the JSON report, and the doctor's driver and runtime checks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from safedocker.errors import ExitCode
from safedocker.gpu.daemon import DaemonGpu, detect_daemon
from safedocker.gpu.detect import HostGpu, detect_host

if TYPE_CHECKING:
    from safedocker.gpu.flags import GpuFlags

if TYPE_CHECKING:
    from safedocker._docker.engine import DockerEngine


@dataclass(frozen=True)
class Check:
    """One doctor line; ``exit_code`` is the status a failure of it stands for."""

    name: str
    ok: bool
    detail: str
    hint: str = ""
    exit_code: int = ExitCode.GPU_UNMET



def report(host: HostGpu, daemon: DaemonGpu | None, flags: GpuFlags | None) -> dict[str, Any]:
    """The JSON object of ``safe-docker gpu --json``."""
    out: dict[str, Any] = {
        "host": {
            "present": host.present,
            "reason": host.reason,
            "driver_version": host.driver_version,
            "cuda_version": host.cuda,
            "devices": [
                {
                    "index": d.index,
                    "name": d.name,
                    "uuid": d.uuid,
                    "memory_total": d.memory_total,
                    "brand": d.brand,
                    "brand_name": d.brand_display,
                    "compute_capability": d.arch,
                    "mig": {"current": d.mig_current, "pending": d.mig_pending},
                }
                for d in host.devices
            ],
        },
        "daemon": None,
        "flags": None,
    }
    if daemon is not None:
        out["daemon"] = {
            "reachable": daemon.reachable,
            "reason": daemon.reason,
            "server_version": daemon.server_version,
            "nvidia_runtime": daemon.nvidia_runtime,
            "nvidia_runtime_name": daemon.nvidia_runtime_name,
            "default_runtime": daemon.default_runtime,
            "runtimes": list(daemon.runtimes),
            "cdi_spec_dirs": list(daemon.cdi_spec_dirs),
            "cdi_nvidia_devices": list(daemon.cdi_nvidia_devices),
        }
    if flags is not None:
        out["flags"] = {
            "args": list(flags.args),
            "mode": flags.mode.value,
            "method": flags.method.value,
            "devices": None if flags.devices is None else list(flags.devices),
            "user_requested": flags.user_requested,
            "reason": flags.reason,
        }
    return out


def doctor_checks(host: HostGpu | None = None, daemon: DaemonGpu | None = None,
                  engine: DockerEngine | None = None) -> list[Check]:
    """Driver and runtime/CDI checks. A host with no NVIDIA driver at all passes (GPU
    support is simply off); an installed but broken driver, or a GPU host whose daemon has
    neither the nvidia runtime nor CDI devices, fails with a hint."""
    host = detect_host() if host is None else host
    checks: list[Check] = []
    if not host.present:
        no_driver = "not found" in host.reason or "not installed" in host.reason
        if no_driver:
            detail = f"no NVIDIA GPU: {host.reason}; GPU flags will not be added"
            hint = ""
        else:
            detail = f"no usable NVIDIA GPU: {host.reason}"
            hint = "check `nvidia-smi`; load the driver (modprobe nvidia) or reinstall it"
        checks.append(Check("nvidia driver", no_driver, detail, hint))
        return checks
    names = ", ".join(f"{d.index}: {d.name}" for d in host.devices)
    checks.append(
        Check(
            "nvidia driver",
            True,
            f"driver {host.driver_version}, CUDA {host.cuda or 'unknown'}; {names}",
        )
    )
    daemon = detect_daemon(engine) if daemon is None else daemon
    if not daemon.reachable:
        checks.append(
            Check(
                "nvidia container runtime",
                False,
                daemon.reason or "docker daemon not reachable",
                "start docker, or check DOCKER_HOST",
            )
        )
        return checks
    if daemon.nvidia_runtime or daemon.cdi_nvidia_devices:
        parts = []
        if daemon.nvidia_runtime:
            parts.append(f"runtime {daemon.nvidia_runtime_name}")
        if daemon.cdi_nvidia_devices:
            parts.append(f"{len(daemon.cdi_nvidia_devices)} CDI nvidia devices")
        checks.append(
            Check(
                "nvidia container runtime",
                True,
                "; ".join(parts) + f" (default runtime {daemon.default_runtime or 'unknown'})",
            )
        )
    else:
        checks.append(
            Check(
                "nvidia container runtime",
                False,
                "the docker daemon has neither the nvidia runtime nor CDI nvidia devices",
                "install nvidia-container-toolkit, then `sudo nvidia-ctk runtime configure "
                "--runtime=docker && sudo systemctl restart docker`",
            )
        )
    return checks

