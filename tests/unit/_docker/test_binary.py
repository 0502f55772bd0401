from __future__ import annotations

import os
from typing import TYPE_CHECKING

from safedocker._docker.binary import EXEC_MARKER, find_real_docker

if TYPE_CHECKING:
    from pathlib import Path


def _executable(path: Path, text: str = "#!/bin/sh\nexit 0\n") -> Path:
    path.write_text(text)
    path.chmod(0o755)
    return path


def test_real_docker_is_the_first_on_path_that_is_not_the_shim(tmp_path: Path) -> None:
    shim_dir, real_dir = tmp_path / "shim", tmp_path / "real"
    shim_dir.mkdir()
    real_dir.mkdir()
    script = _executable(tmp_path / "safe-docker",
                         "#!/usr/bin/python3\nfrom safedocker.shim import main\nmain()\n")
    (shim_dir / "docker").symlink_to(script)
    real = _executable(real_dir / "docker")
    env = {"PATH": f"{shim_dir}{os.pathsep}{real_dir}"}
    assert find_real_docker(env) == str(real)


def test_explicit_real_docker_and_loop_marker(tmp_path: Path) -> None:
    real = _executable(tmp_path / "docker")
    assert find_real_docker({"SAFE_DOCKER_REAL_DOCKER": str(real), "PATH": ""}) == str(real)
    assert find_real_docker({"SAFE_DOCKER_REAL_DOCKER": str(tmp_path / "missing")}) is None
    # A docker we already exec'd that came back to us is skipped, not exec'd again.
    looped = {"PATH": str(tmp_path), EXEC_MARKER: os.path.realpath(real)}
    assert find_real_docker(looped) is None
