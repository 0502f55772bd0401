from __future__ import annotations

import os
import signal
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

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


def _ignored_signals(status: str) -> int:
    line = next(line for line in status.splitlines() if line.startswith("SigIgn:"))
    return int(line.split()[1], 16)


@pytest.mark.parametrize("argv", [["ps"], ["logs", "-f", "x"], ["image", "ls"]])
def test_docker_starts_with_sigpipe_and_sigxfsz_as_a_shell_leaves_them(
        tmp_path: Path, argv: list[str]) -> None:
    """Python starts with SIGPIPE and SIGXFSZ ignored and an exec keeps them so: the docker
    safe-docker execs must not, or `docker logs -f x | head -1` never ends docker."""
    fake = _executable(tmp_path / "docker", "#!/bin/sh\ncat /proc/$$/status\n")
    env = {**os.environ, "SAFE_DOCKER_REAL_DOCKER": str(fake), "SAFE_DOCKER_MODE": "off"}
    done = subprocess.run([sys.executable, "-m", "safedocker", *argv], env=env,
                          capture_output=True, text=True, check=True, timeout=60)
    ignored = _ignored_signals(done.stdout)
    assert ignored & (1 << (signal.SIGPIPE - 1)) == 0
    assert ignored & (1 << (signal.SIGXFSZ - 1)) == 0
    here = subprocess.run([sys.executable, "-c", "import os; os.execv('/bin/cat', "
                           "['cat', '/proc/self/status'])"], capture_output=True, text=True,
                          check=True, timeout=60)
    assert _ignored_signals(here.stdout) & (1 << (signal.SIGPIPE - 1))  # what it undoes
