"""What the docker daemon offers for GPUs: the nvidia runtime, the default runtime, CDI
devices, from ``docker info`` through :mod:`safedocker._docker.engine`."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from safedocker._docker.binary import find_real_docker
from safedocker._docker.engine import DockerCLI
from safedocker.errors import SafeDockerError

if TYPE_CHECKING:
    from safedocker._docker.engine import DockerEngine

CDI_KIND = "nvidia.com/gpu"


@dataclass(frozen=True)
class DaemonGpu:
    """What the docker daemon offers for GPUs; ``reason`` says why it is unknown or partial."""

    nvidia_runtime: bool
    default_runtime: str = ""
    cdi_nvidia_devices: tuple[str, ...] = ()  # "nvidia.com/gpu=0", "nvidia.com/gpu=all"
    runtimes: tuple[str, ...] = ()
    nvidia_runtime_name: str | None = None  # "nvidia" usually
    cdi_spec_dirs: tuple[str, ...] = ()
    server_version: str = ""
    reachable: bool = True
    reason: str = ""



def detect_daemon(engine: DockerEngine | None = None) -> DaemonGpu:
    """The daemon's GPU facts from ``docker info``, asked through ``engine`` (default: the
    real docker with no global flags, so DOCKER_HOST and DOCKER_CONTEXT apply). Never raises."""
    if engine is None:
        docker = find_real_docker()
        if docker is None:
            return DaemonGpu(False, reachable=False,
                             reason="docker daemon not reachable: real docker not found")
        engine = DockerCLI(docker)
    try:
        info = engine.info()
    except SafeDockerError as e:
        return DaemonGpu(False, reachable=False,
                         reason=f"docker daemon not reachable: {e.why or e.what}")
    return daemon_from_info(info.raw)


def daemon_from_info(info: Mapping[str, Any]) -> DaemonGpu:
    """The GPU-relevant part of a ``docker info`` (``GET /info``) answer."""
    runtimes_raw = info.get("Runtimes")
    runtimes = runtimes_raw if isinstance(runtimes_raw, Mapping) else {}
    nvidia_name: str | None = None
    for name, spec in runtimes.items():
        path = spec.get("path", "") if isinstance(spec, Mapping) else ""
        base = os.path.basename(str(path))
        if name == "nvidia" or base.startswith("nvidia-container-runtime"):
            if nvidia_name is None or name == "nvidia":
                nvidia_name = str(name)
    spec_dirs = info.get("CDISpecDirs")
    cdi_dirs = tuple(str(d) for d in spec_dirs) if isinstance(spec_dirs, list) else ()
    discovered = info.get("DiscoveredDevices")
    cdi: list[str] = []
    if isinstance(discovered, list):
        for dev in discovered:
            if not isinstance(dev, Mapping) or str(dev.get("Source", "")).lower() != "cdi":
                continue
            ident = str(dev.get("ID", ""))
            if ident.startswith(CDI_KIND + "="):
                cdi.append(ident)
    default = info.get("DefaultRuntime")
    version = info.get("ServerVersion")
    return DaemonGpu(
        nvidia_runtime=nvidia_name is not None,
        default_runtime=str(default) if isinstance(default, str) else "",
        cdi_nvidia_devices=tuple(cdi),
        runtimes=tuple(sorted(str(n) for n in runtimes)),
        nvidia_runtime_name=nvidia_name,
        cdi_spec_dirs=cdi_dirs,
        server_version=str(version) if isinstance(version, str) else "",
    )


def engine_version(text: str) -> tuple[int, int] | None:
    m = re.match(r"^v?(\d+)\.(\d+)", text)
    return (int(m.group(1)), int(m.group(2))) if m else None

