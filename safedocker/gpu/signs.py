"""Whether this host may have an NVIDIA driver, from cheap looks only: what the warm path
asks before it would detect GPUs, without :mod:`.detect`'s values (dataclasses) or NVML.
Standard library only."""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

NVML_LIBRARY = "libnvidia-ml.so.1"
_LIBRARY_DIRS = ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64",
                 "/usr/lib", "/lib64", "/lib", "/usr/local/nvidia/lib64")


def driver_signs(environ: Mapping[str, str] | None = None) -> bool:
    """Whether this host may have an NVIDIA driver, from cheap looks only (no NVML): its
    device nodes, its /proc entry, or the NVML library where the loader would find it
    (LD_LIBRARY_PATH, the ld.so cache, the usual dirs). False means NVML would not load."""
    env = os.environ if environ is None else environ
    try:
        devices = os.listdir("/dev")
    except OSError:
        devices = []
    if any(name.startswith("nvidia") for name in devices) or os.path.exists("/proc/driver/nvidia"):
        return True
    dirs = [d for d in env.get("LD_LIBRARY_PATH", "").split(":") if d] + list(_LIBRARY_DIRS)
    if any(os.path.exists(os.path.join(d, NVML_LIBRARY)) for d in dirs):
        return True
    try:
        with open("/etc/ld.so.cache", "rb") as f:
            return NVML_LIBRARY.encode() in f.read(64 * 1024 * 1024)
    except OSError:
        return False
