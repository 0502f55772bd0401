"""GPU detection looks for a driver before it loads NVML: a host with no sign of one never
imports nvidia-ml-py; a library on LD_LIBRARY_PATH is a sign."""

from __future__ import annotations

import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from safedocker.gpu.signs import NVML_LIBRARY, driver_signs

if TYPE_CHECKING:
    from pathlib import Path


def test_a_library_on_ld_library_path_is_a_sign(tmp_path: Path) -> None:
    (tmp_path / NVML_LIBRARY).write_bytes(b"")
    assert driver_signs({"LD_LIBRARY_PATH": f"/nonexistent:{tmp_path}"})


@pytest.mark.skipif(driver_signs({}), reason="this host shows an NVIDIA driver")
def test_without_a_sign_detection_answers_without_importing_nvml() -> None:
    code = ("import sys; from safedocker.gpu.detect import detect_host; h = detect_host(); "
            "print(h.present, 'pynvml' in sys.modules, h.reason)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin"}, check=True).stdout
    assert out.startswith("False False no NVIDIA driver library")
