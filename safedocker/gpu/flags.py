"""The GPU options a ``run``/``create`` gets: mode, device selection, and the form the
daemon understands (``--gpus``, CDI devices, or the nvidia runtime)."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from safedocker._internal import environment
from safedocker.errors import ConfigError, GpuRequirementUnmet
from safedocker.gpu.daemon import CDI_KIND, DaemonGpu, engine_version
from safedocker.gpu.requirements import VISIBLE_DEVICES, is_cuda_image

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from safedocker.gpu.detect import HostGpu

ENV_GPU_MODE = environment.GPU
ENV_GPU_DEVICES = environment.GPUS
# Docker gained --gpus in engine 19.03; older engines need the runtime + env form.
GPUS_FLAG_MIN_ENGINE = (19, 3)


class GpuMode(str, enum.Enum):
    AUTO = "auto"
    ALWAYS = "always"
    NEVER = "never"


class GpuMethod(str, enum.Enum):
    NONE = "none"
    GPUS = "gpus"  # --gpus all | --gpus "device=0,1"
    CDI = "cdi"  # --device nvidia.com/gpu=all
    RUNTIME = "runtime"  # --runtime=nvidia -e NVIDIA_VISIBLE_DEVICES=all


@dataclass(frozen=True)
class GpuFlags:
    """The decision about GPU options for one ``run``/``create``."""

    args: tuple[str, ...]  # docker options to insert before IMAGE; () when none
    mode: GpuMode
    method: GpuMethod
    devices: tuple[str, ...] | None  # selection from SAFE_DOCKER_GPUS; None: all
    user_requested: bool  # the user's own options already ask for GPUs
    reason: str

    @property
    def gives_gpus(self) -> bool:
        """Whether the container will get GPUs: then ``check_requirements`` applies."""
        return bool(self.args) or self.user_requested



def resolve_mode(
    policy: GpuMode | enum.Enum | str | None = None, environ: Mapping[str, str] | None = None
) -> GpuMode:
    """SAFE_DOCKER_GPU overrides the policy's ``gpu`` (a GpuMode, policy.GpuPolicy or its
    string); the default is auto."""
    for source, value in ((ENV_GPU_MODE, environment.gpu_mode(environ)), ("gpu", policy)):
        if value is None or value == "":
            continue
        if isinstance(value, GpuMode):
            return value
        if isinstance(value, enum.Enum):  # policy.GpuPolicy and the like
            value = value.value
        try:
            return GpuMode(str(value).strip().lower())
        except ValueError:
            raise ConfigError(
                f"invalid {source} value {value!r}",
                why="expected auto, always or never",
                hint=f"set {source} to auto, always or never",
            ) from None
    return GpuMode.AUTO


_DEVICE_TOKEN = re.compile(r"^(?:\d+|\d+:\d+|GPU-[0-9A-Fa-f-]+|MIG-[0-9A-Za-z/-]+)$")


def parse_device_selection(text: str | None) -> tuple[str, ...] | None:
    """SAFE_DOCKER_GPUS (like NV_GPU): ``"0,1"``, UUIDs, ``"0:1"`` MIG indexes, or ``all``.

    None (unset, empty or ``all``) means every GPU."""
    if text is None or not text.strip() or text.strip().lower() == "all":
        return None
    tokens = tuple(t.strip() for t in text.split(","))
    bad = [t for t in tokens if not _DEVICE_TOKEN.match(t)]
    if bad:
        raise ConfigError(
            f"invalid {ENV_GPU_DEVICES} value {text!r}",
            why=f"{bad[0]!r} is not a GPU index or UUID",
            hint=f'use e.g. {ENV_GPU_DEVICES}=0,1 or {ENV_GPU_DEVICES}=GPU-…, or "all"',
        )
    return tuple(dict.fromkeys(tokens))


def _check_selection(selection: tuple[str, ...], host: HostGpu) -> None:
    indexes = {str(d.index) for d in host.devices}
    uuids = {d.uuid.lower() for d in host.devices}
    for token in selection:
        parent = token.split(":", 1)[0]
        if parent.isdigit():
            missing = parent not in indexes
        elif token.startswith("GPU-"):
            missing = token.lower() not in uuids
        else:
            missing = False  # MIG UUIDs: NVML would have to enumerate MIG devices
        if missing:
            have = ", ".join(f"{d.index} ({d.uuid})" for d in host.devices)
            raise GpuRequirementUnmet(
                f"{ENV_GPU_DEVICES} selects GPU {token}, which this host does not have",
                why=f"GPUs here: {have}",
                hint=f"fix {ENV_GPU_DEVICES}, or unset it to use all GPUs",
            )


def _user_gpu_option(user_options: Iterable[tuple[str, str | None]]) -> str | None:
    """The first of the user's options that already asks for GPUs, described."""
    for name, value in user_options:
        value = value or ""
        if name == "--gpus":
            return f"--gpus {value}".strip()
        if name == "--runtime":
            return f"--runtime {value}".strip()
        if name == "--device" and (
            value.startswith("nvidia.com/") or value.startswith("/dev/nvidia")
        ):
            return f"--device {value}"
        if name in ("--env", "-e") and value.partition("=")[0] == VISIBLE_DEVICES:
            return f"--env {value}"
        if name == "--env-file" and _env_file_sets(value, VISIBLE_DEVICES):
            return f"--env-file {value} ({VISIBLE_DEVICES})"
    return None


def _env_file_sets(path: str, key: str) -> bool:
    """Docker's env-file format: ``KEY=VALUE`` or bare ``KEY`` lines, ``#`` comments."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return False  # docker reports the unreadable file itself
    for line in lines:
        line = line.lstrip()
        if not line or line.startswith("#"):
            continue
        if line.partition("=")[0] == key:
            return True
    return False


def gpu_flags(
    user_options: Sequence[tuple[str, str | None]],
    image_config: Mapping[str, Any] | None,
    host: HostGpu,
    daemon: DaemonGpu | None,
    mode: GpuMode | enum.Enum | str | None = GpuMode.AUTO,
    *,
    environ: Mapping[str, str] | None = None,
) -> GpuFlags:
    """Decide the GPU options to insert before IMAGE.

    ``user_options``: the user's options as (canonical long name, value) pairs
    (``("--gpus", "all")``, ``("--env", "A=b")``, ``("--env-file", path)``…).
    ``mode``: the policy's ``gpu``; ``SAFE_DOCKER_GPU`` in ``environ`` overrides it.

    * never: nothing. The user's own GPU options: nothing added, whatever the mode.
    * auto: added when the host has a GPU and the image is a CUDA image (``is_cuda_image``).
    * always: added whenever the host has a GPU; on a host without one,
      ``GpuRequirementUnmet`` (exit 125), since the policy says the container needs one.

    Which form, by the daemon (``daemon=None`` or unreachable: ``--gpus``):

    1. CDI ``--device nvidia.com/gpu=all`` (one per selected device) when the daemon lists
       CDI nvidia devices and has no nvidia runtime;
    2. ``--runtime=nvidia -e NVIDIA_VISIBLE_DEVICES=…`` when the daemon has the nvidia
       runtime but predates ``--gpus`` (engine < 19.03);
    3. otherwise ``--gpus all`` / ``--gpus '"device=0,1"'``: docker's own flag, served by
       nvidia-container-toolkit's runtime hook, and the clearest error when it is missing.
    """
    resolved = resolve_mode(mode, environ)
    selection = parse_device_selection(environment.gpu_devices(environ))

    def none(reason: str, *, user: bool = False) -> GpuFlags:
        return GpuFlags((), resolved, GpuMethod.NONE, selection, user, reason)

    asked = _user_gpu_option(user_options)
    if asked is not None:
        return none(f"the command already asks for GPUs ({asked})", user=True)
    if resolved is GpuMode.NEVER:
        return none("GPU mode is never")
    if not host.present:
        if resolved is GpuMode.ALWAYS:
            raise GpuRequirementUnmet(
                "GPU mode is always, but this host has no usable NVIDIA GPU",
                why=host.reason or "NVML found no GPU",
                hint=f"check nvidia-smi, or set {ENV_GPU_MODE}=auto to run without a GPU",
            )
        return none(f"no NVIDIA GPU: {host.reason}" if host.reason else "no NVIDIA GPU")
    if resolved is GpuMode.AUTO and not is_cuda_image(image_config):
        return none("the image is not a CUDA image")
    if selection is not None:
        _check_selection(selection, host)

    method, args = _flag_form(selection, daemon)
    why = "the image is a CUDA image" if resolved is GpuMode.AUTO else "GPU mode is always"
    return GpuFlags(args, resolved, method, selection, False, f"{why}; using {method.value}")


def _flag_form(
    selection: tuple[str, ...] | None, daemon: DaemonGpu | None
) -> tuple[GpuMethod, tuple[str, ...]]:
    if daemon is not None and daemon.reachable:
        if daemon.cdi_nvidia_devices and not daemon.nvidia_runtime:
            return GpuMethod.CDI, _cdi_args(selection, daemon)
        engine = engine_version(daemon.server_version)
        if daemon.nvidia_runtime and engine is not None and engine < GPUS_FLAG_MIN_ENGINE:
            runtime = daemon.nvidia_runtime_name or "nvidia"
            visible = "all" if selection is None else ",".join(selection)
            return GpuMethod.RUNTIME, (f"--runtime={runtime}", "-e", f"{VISIBLE_DEVICES}={visible}")
    return GpuMethod.GPUS, ("--gpus", gpus_value(selection))


def gpus_value(selection: Sequence[str] | None) -> str:
    """The value of ``--gpus``. Docker reads it as one CSV record, so a device list with
    commas must be a quoted field: the argv token is ``"device=0,1"`` quotes included."""
    if selection is None:
        return "all"
    field_text = "device=" + ",".join(selection)
    return '"' + field_text.replace('"', '""') + '"'


def _cdi_args(selection: tuple[str, ...] | None, daemon: DaemonGpu) -> tuple[str, ...]:
    wanted = ["all"] if selection is None else list(selection)
    names = [f"{CDI_KIND}={w}" for w in wanted]
    known = set(daemon.cdi_nvidia_devices)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise GpuRequirementUnmet(
            f"the daemon has no CDI device {unknown[0]}",
            why="CDI devices: " + ", ".join(daemon.cdi_nvidia_devices),
            hint="regenerate the CDI spec (nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml)"
            f" or change {ENV_GPU_DEVICES}",
        )
    args: list[str] = []
    for name in names:
        args += ["--device", name]
    return tuple(args)

