"""The host's NVIDIA GPUs through NVML (nvidia-ml-py, imported only when asked); never raises."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from safedocker.gpu.signs import NVML_LIBRARY, driver_signs

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



def detect_host() -> HostGpu:
    """Ask NVML about the driver and the GPUs; never raises. NVML (and nvidia-ml-py) is
    not even imported on a host that shows no sign of a driver (:func:`driver_signs`)."""
    if not driver_signs():
        return HostGpu(False, reason=f"no NVIDIA driver library ({NVML_LIBRARY} not found)")
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
    return text or "the NVIDIA library gave no reason"


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

