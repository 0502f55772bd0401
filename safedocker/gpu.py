"""NVIDIA GPUs: what the host has, what the daemon can do, what to add to ``docker run``.

Four parts, each usable alone:

* **Detection** (``detect_host``): NVML through nvidia-ml-py, imported inside the function
  so that the shim stays light. No library, no kernel driver, or any NVML error gives a
  ``HostGpu`` with ``present=False`` and the reason, never an exception.
* **Daemon** (``detect_daemon`` / ``daemon_from_info``): the nvidia runtime, the default
  runtime and CDI devices from ``docker info`` (docker-py, imported lazily).
* **Flags** (``gpu_flags``): the docker options to insert before IMAGE, decided from the
  mode (auto/always/never, ``SAFE_DOCKER_GPU`` overriding the policy), the device
  selection (``SAFE_DOCKER_GPUS``), the user's own options, the image and the daemon.
* **Requirements** (``check_requirements`` / ``parse_requirement``): the image's
  ``NVIDIA_REQUIRE_*`` variables evaluated as libnvidia-container's ``nvidia-container-cli
  configure --require`` does, so that an image the NVIDIA runtime hook would refuse is
  refused here first, with a message that says what to do.

Requirement grammar (libnvidia-container ``src/cli/dsl.c``): one variable's value is a
list of terms separated by single spaces, ORed; a term is a list of factors separated by
commas, ANDed; a factor is ``KEY OP VALUE`` with KEY one of ``cuda``, ``driver``,
``arch``, ``brand`` (case-insensitive) and OP one of ``= != < <= > >=``. Versions compare
numerically component by component, missing components counting as zero
(``12.4 == 12.4.0``); brands compare case-insensitively and only with ``=``/``!=``.
Every ``NVIDIA_REQUIRE_*`` variable except ``NVIDIA_REQUIRE_JETPACK`` must hold (AND),
for every visible GPU. ``cuda`` is the driver's CUDA version (``12.4``), ``driver`` the
kernel driver version (``535.104.05``), ``arch`` the compute capability (``8.0``),
``brand`` libnvidia-container's brand name (Tesla, Quadro, NVS, GRID, GeForce, TITAN,
else Unknown: an H100 is ``brand=unknown`` there, which is why CUDA images list it).

Deliberate difference: libnvidia-container evaluates lazily and reports a malformed factor
only when evaluation reaches it; here a malformed requirement is refused as a whole,
whatever the host, so the verdict never depends on which term happened to match first.
"""

from __future__ import annotations

import enum
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from safedocker.errors import ConfigError, GpuRequirementUnmet

ENV_GPU_MODE = "SAFE_DOCKER_GPU"
ENV_GPU_DEVICES = "SAFE_DOCKER_GPUS"

VISIBLE_DEVICES = "NVIDIA_VISIBLE_DEVICES"
REQUIRE_PREFIX = "NVIDIA_REQUIRE_"
REQUIRE_CUDA = "NVIDIA_REQUIRE_CUDA"
REQUIRE_JETPACK = "NVIDIA_REQUIRE_JETPACK"
DISABLE_REQUIRE = "NVIDIA_DISABLE_REQUIRE"
CUDA_VERSION = "CUDA_VERSION"
LEGACY_VOLUMES_LABEL = "com.nvidia.volumes.needed"

CDI_KIND = "nvidia.com/gpu"
# Docker gained --gpus in engine 19.03; older engines need the runtime + env form.
GPUS_FLAG_MIN_ENGINE = (19, 3)

# libnvidia-container's brand names (driver.c, driver_get_device_brand_1_svc), by NVML code.
_LIBNVC_BRANDS = {1: "Quadro", 2: "Tesla", 3: "NVS", 4: "GRID", 5: "GeForce", 6: "TITAN"}
# NVML's own names, for display only.
_NVML_BRANDS = {
    0: "Unknown",
    1: "Quadro",
    2: "Tesla",
    3: "NVS",
    4: "GRID",
    5: "GeForce",
    6: "TITAN",
    7: "NVIDIA Virtual Applications",
    8: "NVIDIA Virtual PC",
    9: "NVIDIA Virtual Compute Server",
    10: "NVIDIA RTX Virtual Workstation",
    11: "NVIDIA Cloud Gaming",
    12: "Quadro RTX",
    13: "NVIDIA RTX",
    14: "NVIDIA",
    15: "GeForce RTX",
    16: "TITAN RTX",
}
# Go's strconv.ParseBool true values: how the toolkit reads NVIDIA_DISABLE_REQUIRE.
_TRUE_WORDS = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_UINTMAX = 2**64 - 1


# ---------------------------------------------------------------------------------------
# Values


@dataclass(frozen=True)
class GpuDevice:
    """One GPU as NVML reports it."""

    index: int
    name: str  # "NVIDIA A100-SXM4-80GB"
    uuid: str  # "GPU-…"
    memory_total: int | None  # bytes
    brand: str  # libnvidia-container's name, what `brand=` compares against
    brand_id: int | None  # NVML brand code
    compute_capability: tuple[int, int] | None  # (8, 0)
    mig_current: bool | None  # None: MIG not supported
    mig_pending: bool | None

    @property
    def arch(self) -> str | None:
        """The compute capability as `arch=` sees it: ``"8.0"``."""
        if self.compute_capability is None:
            return None
        return f"{self.compute_capability[0]}.{self.compute_capability[1]}"

    @property
    def brand_display(self) -> str:
        if self.brand_id is None:
            return self.brand
        return _NVML_BRANDS.get(self.brand_id, f"brand {self.brand_id}")


@dataclass(frozen=True)
class HostGpu:
    """What this host offers; ``present`` is False with a ``reason`` when it has no usable GPU."""

    present: bool
    driver_version: str | None = None  # "535.104.05"
    cuda_version: tuple[int, int] | None = None  # (12, 2)
    devices: tuple[GpuDevice, ...] = ()
    reason: str = ""

    @property
    def cuda(self) -> str | None:
        """The driver's CUDA version as `cuda=` sees it: ``"12.2"``."""
        if self.cuda_version is None:
            return None
        return f"{self.cuda_version[0]}.{self.cuda_version[1]}"


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


@dataclass(frozen=True)
class Check:
    """One doctor line."""

    name: str
    ok: bool
    detail: str
    hint: str = ""


# ---------------------------------------------------------------------------------------
# Host detection (NVML)


def detect_host() -> HostGpu:
    """Ask NVML about the driver and the GPUs; never raises."""
    try:
        import pynvml
    except ImportError:
        return HostGpu(False, reason="nvidia-ml-py is not installed")
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError_LibraryNotFound:
        return HostGpu(False, reason="no NVIDIA driver library (libnvidia-ml.so.1 not found)")
    except pynvml.NVMLError_DriverNotLoaded:
        return HostGpu(False, reason="NVIDIA kernel driver not loaded")
    except Exception as e:
        return HostGpu(False, reason=f"NVML initialisation failed: {_nvml_text(e)}")
    try:
        return _query_host(pynvml)
    except Exception as e:
        return HostGpu(False, reason=f"NVML query failed: {_nvml_text(e)}")
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:  # noqa: S110 - detection must stay quiet
            pass


def _nvml_text(e: BaseException) -> str:
    try:
        text = str(e)
    except Exception:
        text = ""
    return text or e.__class__.__name__


def _query_host(nvml: Any) -> HostGpu:
    driver = str(nvml.nvmlSystemGetDriverVersion())
    cuda: tuple[int, int] | None
    try:
        code = int(nvml.nvmlSystemGetCudaDriverVersion_v2())
        cuda = (code // 1000, (code % 1000) // 10)
    except nvml.NVMLError:
        cuda = None
    devices = tuple(_query_device(nvml, i) for i in range(int(nvml.nvmlDeviceGetCount())))
    if not devices:
        return HostGpu(False, driver, cuda, (), reason="NVIDIA driver loaded but no GPU visible")
    return HostGpu(True, driver, cuda, devices)


def _query_device(nvml: Any, index: int) -> GpuDevice:
    handle = nvml.nvmlDeviceGetHandleByIndex(index)
    name = str(nvml.nvmlDeviceGetName(handle))
    uuid = str(nvml.nvmlDeviceGetUUID(handle))

    def optional(fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except nvml.NVMLError:
            return None

    memory = optional(nvml.nvmlDeviceGetMemoryInfo, handle, nvml.nvmlMemory_v2)
    if memory is None:
        memory = optional(nvml.nvmlDeviceGetMemoryInfo, handle)
    brand_id = optional(nvml.nvmlDeviceGetBrand, handle)
    cc = optional(nvml.nvmlDeviceGetCudaComputeCapability, handle)
    mig = optional(nvml.nvmlDeviceGetMigMode, handle)
    return GpuDevice(
        index=index,
        name=name,
        uuid=uuid,
        memory_total=int(memory.total) if memory is not None else None,
        brand=_LIBNVC_BRANDS.get(int(brand_id), "Unknown") if brand_id is not None else "Unknown",
        brand_id=int(brand_id) if brand_id is not None else None,
        compute_capability=(int(cc[0]), int(cc[1])) if cc is not None else None,
        mig_current=bool(mig[0]) if mig is not None else None,
        mig_pending=bool(mig[1]) if mig is not None else None,
    )


# ---------------------------------------------------------------------------------------
# Daemon (docker info)


def detect_daemon(
    environ: Mapping[str, str] | None = None,
    *,
    base_url: str | None = None,
    timeout: float = 10.0,
    client: Any = None,
) -> DaemonGpu:
    """``docker info`` through docker-py; DOCKER_HOST/DOCKER_TLS_VERIFY/DOCKER_CERT_PATH from
    ``environ`` (default ``os.environ``) unless ``base_url`` (a ``-H`` value) is given.
    ``client`` is anything with an ``info()`` method, for tests. Never raises."""
    try:
        if client is None:
            import docker

            if base_url is not None:
                client = docker.DockerClient(base_url=base_url, timeout=int(timeout))
            else:
                env = dict(os.environ if environ is None else environ)
                client = docker.from_env(environment=env, timeout=int(timeout))
        info = client.info()
    except Exception as e:
        return DaemonGpu(False, reachable=False, reason=f"docker daemon not reachable: {e}")
    if not isinstance(info, Mapping):
        return DaemonGpu(False, reachable=False, reason="docker info returned no object")
    return daemon_from_info(info)


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


def _engine_version(text: str) -> tuple[int, int] | None:
    m = re.match(r"^v?(\d+)\.(\d+)", text)
    return (int(m.group(1)), int(m.group(2))) if m else None


# ---------------------------------------------------------------------------------------
# Image configuration


def image_env(image_config: Mapping[str, Any] | None) -> dict[str, str]:
    """``config.Env`` as a dict (last one wins, like the toolkit's env map).

    Accepts an OCI image config (``{"config": {...}}``), docker inspect's ``{"Config": …}``
    or the inner config object itself."""
    env: dict[str, str] = {}
    for item in _config_section(image_config).get("Env") or ():
        if isinstance(item, str) and "=" in item:
            key, _, value = item.partition("=")
            env[key] = value
    return env


def image_labels(image_config: Mapping[str, Any] | None) -> dict[str, str]:
    labels = _config_section(image_config).get("Labels")
    if not isinstance(labels, Mapping):
        return {}
    return {str(k): str(v) for k, v in labels.items()}


def _config_section(image_config: Mapping[str, Any] | None) -> Mapping[str, Any]:
    if not image_config:
        return {}
    for key in ("config", "Config"):
        inner = image_config.get(key)
        if isinstance(inner, Mapping):
            return inner
    return image_config


def is_cuda_image(image_config: Mapping[str, Any] | None) -> bool:
    """An image made for NVIDIA GPUs: its env sets NVIDIA_VISIBLE_DEVICES (not void),
    NVIDIA_REQUIRE_CUDA or CUDA_VERSION, or it has the nvidia-docker v1 volumes label."""
    env = image_env(image_config)
    visible = env.get(VISIBLE_DEVICES)
    if visible is not None and visible.strip() not in ("", "void"):
        return True
    if env.get(REQUIRE_CUDA) or env.get(CUDA_VERSION):
        return True
    return LEGACY_VOLUMES_LABEL in image_labels(image_config)


# ---------------------------------------------------------------------------------------
# Flags


def resolve_mode(
    policy: GpuMode | enum.Enum | str | None = None, environ: Mapping[str, str] | None = None
) -> GpuMode:
    """SAFE_DOCKER_GPU overrides the policy's ``gpu`` (a GpuMode, policy.GpuPolicy or its
    string); the default is auto."""
    env = os.environ if environ is None else environ
    for source, value in ((ENV_GPU_MODE, env.get(ENV_GPU_MODE)), ("gpu", policy)):
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
    env = os.environ if environ is None else environ
    resolved = resolve_mode(mode, env)
    selection = parse_device_selection(env.get(ENV_GPU_DEVICES))

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
        engine = _engine_version(daemon.server_version)
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


# ---------------------------------------------------------------------------------------
# Requirements


class MalformedRequirement(GpuRequirementUnmet):
    """An ``NVIDIA_REQUIRE_*`` value that is not valid requirement syntax (fail closed)."""


_OPERATORS = ("=", "!=", "<", "<=", ">", ">=")
_VERSION_KEYS = ("cuda", "driver", "arch")
_KEYS = (*_VERSION_KEYS, "brand")
_OP_CHARS = "<>=!"


@dataclass(frozen=True)
class Condition:
    """One factor: ``cuda>=12.4``; ``key`` is lower-cased."""

    key: str
    op: str
    value: str

    def __str__(self) -> str:
        return f"{self.key}{self.op}{self.value}"

    def describe(self) -> str:
        subject = {
            "cuda": "CUDA",
            "driver": "driver",
            "arch": "compute capability",
            "brand": "GPU brand",
        }[self.key]
        return f"{subject} {self.op} {self.value}"

    def holds(self, host: HostGpu, device: GpuDevice | None) -> bool:
        """As libnvidia-container's rule functions: an unknown host value is satisfied."""
        if self.key == "brand":
            if device is None:
                return True
            equal = device.brand.lower() == self.value.lower()
            return equal if self.op == "=" else not equal
        if self.key == "cuda":
            have = host.cuda
        elif self.key == "driver":
            have = host.driver_version
        else:
            if device is None:
                return True
            have = device.arch
        if have is None:
            return True
        mine = _version(have)
        if mine is None:
            raise GpuRequirementUnmet(
                f"cannot evaluate {self}",
                why=f"this host's {self.key} version {have!r} is not numeric",
                hint="report this host's nvidia-smi output",
            )
        theirs = _version(self.value)
        if theirs is None:  # a Condition built by hand, not by parse_requirement
            raise MalformedRequirement(f"not a version: {self.value!r}", why=str(self))
        return _compare(mine, self.op, theirs)


@dataclass(frozen=True)
class Requirement:
    """One ``NVIDIA_REQUIRE_*`` value: OR of terms, each an AND of conditions.

    No terms (an empty value) is always satisfied."""

    text: str
    terms: tuple[tuple[Condition, ...], ...]
    source: str = ""  # the variable it came from

    def satisfied(self, host: HostGpu, device: GpuDevice | None = None) -> bool:
        if not self.terms:
            return True
        return any(all(c.holds(host, device) for c in term) for term in self.terms)


def parse_requirement(text: str, *, source: str = "") -> Requirement:
    """Parse a requirement string; ``MalformedRequirement`` for anything libnvidia-container
    would call an invalid expression (unknown key, operator or value)."""
    terms: list[tuple[Condition, ...]] = []
    for term_text in text.split(" "):
        factors = tuple(_parse_factor(f, text, source) for f in term_text.split(",") if f)
        if factors:
            terms.append(factors)
    return Requirement(text, tuple(terms), source)


def _parse_factor(factor: str, text: str, source: str) -> Condition:
    def bad(why: str) -> MalformedRequirement:
        where = f"{source}={text}" if source else text
        if len(where) > 160:
            where = where[:157] + "…"
        return MalformedRequirement(
            f"the image has a malformed GPU requirement: {factor!r}",
            why=f"{why}, in {where}",
            hint="ask the image's publisher to fix it, or run with "
            "-e NVIDIA_DISABLE_REQUIRE=1 to skip the requirement check",
        )

    key_end = len(factor)
    for i, ch in enumerate(factor):
        if ch in _OP_CHARS:
            key_end = i
            break
    if key_end == 0:
        raise bad("no key before the operator")
    if key_end == len(factor):
        raise bad("no operator (= != < <= > >=)")
    op_end = key_end
    while op_end < len(factor) and factor[op_end] in _OP_CHARS:
        op_end += 1
    key, op, value = factor[:key_end].lower(), factor[key_end:op_end], factor[op_end:]
    if op == "!":
        op = "!="  # dsl.c matches an operator on the run's length: a lone '!' is '!='
    if op not in _OPERATORS:
        raise bad(f"unknown operator {op!r}")
    if not value:
        raise bad("no value after the operator")
    if key not in _KEYS:
        raise bad(f"unknown key {factor[:key_end]!r} (cuda, driver, arch, brand)")
    if key == "brand":
        if op not in ("=", "!="):
            raise bad("a brand compares only with = or !=")
    elif _version(value) is None:
        raise bad(f"{value!r} is not a version (digits and dots)")
    return Condition(key, op, value)


def _version(text: str) -> tuple[int, ...] | None:
    """dsl.c's version syntax: digits and dots, starting with a digit; dots may repeat."""
    if not re.fullmatch(r"[0-9][0-9.]*", text):
        return None
    parts = tuple(int(p) for p in text.split(".") if p)
    if any(p >= _UINTMAX for p in parts):
        return None
    return parts


def _compare(a: tuple[int, ...], op: str, b: tuple[int, ...]) -> bool:
    width = max(len(a), len(b))
    left, right = a + (0,) * (width - len(a)), b + (0,) * (width - len(b))
    return {
        "=": left == right,
        "!=": left != right,
        "<": left < right,
        "<=": left <= right,
        ">": left > right,
        ">=": left >= right,
    }[op]


def requirements_disabled(env: Mapping[str, str]) -> bool:
    """NVIDIA_DISABLE_REQUIRE as the toolkit reads it (Go's strconv.ParseBool)."""
    return env.get(DISABLE_REQUIRE, "") in _TRUE_WORDS


_LEGACY_CUDA = re.compile(
    r"^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$"
)


def image_requirements(
    image_config: Mapping[str, Any] | None, run_env: Mapping[str, str] | None = None
) -> tuple[Requirement, ...]:
    """Every requirement the NVIDIA hook would check, parsed.

    ``run_env`` (the ``-e``/``--env-file`` values of the run) overrides the image's env, as
    it does in the container's spec. Empty when NVIDIA_DISABLE_REQUIRE is true. A legacy
    image (CUDA_VERSION set, NVIDIA_REQUIRE_CUDA empty or unset) gets ``cuda>=MAJOR.MINOR``.
    """
    env = image_env(image_config)
    env.update(run_env or {})
    if requirements_disabled(env):
        return ()
    reqs = [
        parse_requirement(value, source=name)
        for name, value in sorted(env.items())
        if name.startswith(REQUIRE_PREFIX) and not name.startswith(REQUIRE_JETPACK)
    ]
    legacy = env.get(CUDA_VERSION, "")
    if legacy and not env.get(REQUIRE_CUDA):
        m = _LEGACY_CUDA.match(legacy)
        if m is None:
            raise MalformedRequirement(
                f"the image has an invalid CUDA_VERSION {legacy!r}",
                why="the NVIDIA runtime hook derives cuda>=MAJOR.MINOR from it and would fail",
                hint="ask the image's publisher to fix it, or run with -e NVIDIA_DISABLE_REQUIRE=1",
            )
        synthesized = f"cuda>={int(m.group(1))}.{int(m.group(2) or 0)}"
        reqs.append(parse_requirement(synthesized, source=CUDA_VERSION))
    return tuple(reqs)


def select_devices(host: HostGpu, selection: Sequence[str] | None) -> tuple[GpuDevice, ...]:
    """The host GPUs a selection makes visible; unknown tokens (MIG UUIDs) keep them all."""
    if selection is None:
        return host.devices
    chosen: dict[int, GpuDevice] = {}
    for token in selection:
        parent = token.split(":", 1)[0]
        match = [
            d
            for d in host.devices
            if (parent.isdigit() and d.index == int(parent)) or d.uuid.lower() == token.lower()
        ]
        if not match:
            return host.devices
        for d in match:
            chosen[d.index] = d
    return tuple(chosen[i] for i in sorted(chosen))


def check_requirements(
    image_config: Mapping[str, Any] | None,
    host: HostGpu,
    *,
    run_env: Mapping[str, str] | None = None,
    devices: Sequence[str] | None = None,
) -> None:
    """Raise ``GpuRequirementUnmet`` (exit 125) when the image's requirements do not hold.

    Call it when the container will get GPUs (``GpuFlags.gives_gpus``). It is a no-op on a
    host without a usable GPU: then no GPU flags are added (``always`` already refused), so
    the hook never runs and the image may well run on the CPU. As libnvidia-container does,
    every requirement is checked against every visible GPU (``devices``: a selection such
    as ``GpuFlags.devices``; None: all).
    """
    if not host.present:
        return
    reqs = image_requirements(image_config, run_env)
    if not reqs:
        return
    visible: Sequence[GpuDevice | None] = select_devices(host, devices) or (None,)
    for device in visible:
        for req in reqs:
            if not req.satisfied(host, device):
                raise _unmet(req, host, device)


def _unmet(req: Requirement, host: HostGpu, device: GpuDevice | None) -> GpuRequirementUnmet:
    first = req.terms[0]
    alternatives = len(req.terms) - 1
    gpu = ""
    if device is not None:
        gpu = f"GPU {device.index} ({device.name}) is brand {device.brand}"
        if device.arch is not None:
            gpu += f", compute capability {device.arch}"
    host_cuda = host.cuda or "unknown"
    driver = host.driver_version or "unknown"
    if len(first) == 1 and first[0].key == "cuda" and first[0].op in (">=", ">"):
        why = f"this host's driver {driver} supports CUDA {host_cuda}"
        if alternatives:
            why += f", and none of the image's {alternatives} driver/brand alternatives match"
            if gpu:
                why += f" ({gpu})"
        hint = f"update the NVIDIA driver to one that supports CUDA {first[0].value}"
        if host.cuda:
            hint += (
                f", or pick an image built for CUDA {host_cuda} or older (a -cuda{host_cuda} tag)"
            )
        return GpuRequirementUnmet(
            f"image needs CUDA {first[0].op} {first[0].value}", why=why, hint=hint
        )
    needs = " and ".join(c.describe() for c in first)
    facts = [f"driver {driver}", f"CUDA {host_cuda}"]
    if gpu:
        facts.append(gpu)
    why = "this host has " + "; ".join(facts)
    if alternatives:
        why += f" (and none of {alternatives} alternatives match)"
    return GpuRequirementUnmet(
        f"image needs {needs} ({req.source or 'requirement'})",
        why=why,
        hint="pick an image built for this host's GPU and driver, or run with "
        "-e NVIDIA_DISABLE_REQUIRE=1 to skip the check",
    )


# ---------------------------------------------------------------------------------------
# Report and doctor


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


def doctor_checks(host: HostGpu | None = None, daemon: DaemonGpu | None = None) -> list[Check]:
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
    daemon = detect_daemon() if daemon is None else daemon
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


__all__ = [
    "Check",
    "Condition",
    "DaemonGpu",
    "GpuDevice",
    "GpuFlags",
    "GpuMethod",
    "GpuMode",
    "HostGpu",
    "MalformedRequirement",
    "Requirement",
    "check_requirements",
    "daemon_from_info",
    "detect_daemon",
    "detect_host",
    "doctor_checks",
    "gpu_flags",
    "gpus_value",
    "image_env",
    "image_labels",
    "image_requirements",
    "is_cuda_image",
    "parse_device_selection",
    "parse_requirement",
    "report",
    "requirements_disabled",
    "resolve_mode",
    "select_devices",
]
