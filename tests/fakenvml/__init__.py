"""Build and use the fake NVIDIA driver (``fakenvml.c``) in tests.

The dynamic loader reads LD_LIBRARY_PATH when a process starts, so detection runs in a
subprocess whose environment points at the directory holding the fake
``libnvidia-ml.so.1``; the FAKE_NVML_* variables (see the C file) shape its answers.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

SOURCE = Path(__file__).with_name("fakenvml.c")
LIBRARY_NAME = "libnvidia-ml.so.1"

# Prints detect_host() as JSON: what the parent test asserts on.
DETECT_SCRIPT = """
import dataclasses, json
from safedocker.gpu.detect import detect_host
print(json.dumps(dataclasses.asdict(detect_host())))
"""


def compiler() -> str | None:
    return shutil.which(os.environ.get("CC", "gcc"))


def build_fake_nvml(dest_dir: Path) -> Path:
    """Compile the fake driver into ``dest_dir/libnvidia-ml.so.1`` and return its path."""
    cc = compiler()
    if cc is None:
        raise RuntimeError("no C compiler (gcc) to build the fake NVML library")
    dest_dir.mkdir(parents=True, exist_ok=True)
    target = dest_dir / LIBRARY_NAME
    subprocess.run(
        [cc, "-shared", "-fPIC", "-O2", "-Wall", "-Werror", "-o", str(target), str(SOURCE)],
        check=True,
        capture_output=True,
        text=True,
    )
    return target


def real_nvml_visible() -> bool:
    """Whether the loader could find a real libnvidia-ml.so.1 without LD_LIBRARY_PATH."""
    ldconfig = shutil.which("ldconfig") or "/sbin/ldconfig"
    try:
        out = subprocess.run([ldconfig, "-p"], capture_output=True, text=True, check=False).stdout
    except OSError:
        out = ""
    if LIBRARY_NAME in out:
        return True
    return any(
        Path(d, LIBRARY_NAME).exists()
        for d in ("/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib", "/lib/x86_64-linux-gnu")
    )


def fake_nvml_env(lib_dir: Path | None, **settings: Any) -> dict[str, str]:
    """The environment for a subprocess that should see the fake driver in ``lib_dir``
    (None: an environment with no LD_LIBRARY_PATH at all). ``gpus=8`` becomes
    ``FAKE_NVML_GPUS=8``; inherited FAKE_NVML_* and LD_* variables are dropped."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("FAKE_NVML_") and k not in ("LD_LIBRARY_PATH", "LD_PRELOAD")
    }
    if lib_dir is not None:
        env["LD_LIBRARY_PATH"] = str(lib_dir)
    for key, value in settings.items():
        env[f"FAKE_NVML_{key.upper()}"] = str(value)
    return env


def detect_in_subprocess(env: Mapping[str, str]) -> dict[str, Any]:
    """Run ``detect_host()`` in a fresh interpreter with ``env``; its result as a dict."""
    proc = subprocess.run(
        [sys.executable, "-c", DETECT_SCRIPT],
        env=dict(env),
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    if proc.returncode != 0:
        raise AssertionError(f"detection crashed: rc={proc.returncode}\n{proc.stderr}")
    result: dict[str, Any] = json.loads(proc.stdout)
    result["_stderr"] = proc.stderr
    return result
