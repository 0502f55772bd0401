from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from safedocker.shim import EXEC_MARKER, Route, classify, find_real_docker


@pytest.mark.parametrize(
    ("argv", "route"),
    [
        ([], Route.HELP),
        (["--help"], Route.HELP),
        (["--version"], Route.HELP),
        (["run", "ubuntu"], Route.INTERCEPT),
        (["create", "ubuntu"], Route.INTERCEPT),
        (["pull", "ubuntu"], Route.INTERCEPT),
        (["container", "run", "ubuntu"], Route.INTERCEPT),
        (["container", "create", "ubuntu"], Route.INTERCEPT),
        (["image", "pull", "ubuntu"], Route.INTERCEPT),
        (["-H", "unix:///x.sock", "run", "ubuntu"], Route.INTERCEPT),
        (["--context=prod", "--tlsverify", "pull", "x"], Route.INTERCEPT),
        (["-l", "debug", "-D", "container", "run", "x"], Route.INTERCEPT),
        (["ps"], Route.PASSTHROUGH),
        (["images"], Route.PASSTHROUGH),
        (["image", "ls"], Route.PASSTHROUGH),
        (["container", "ls"], Route.PASSTHROUGH),
        (["exec", "-it", "c", "run"], Route.PASSTHROUGH),
        (["help", "run"], Route.PASSTHROUGH),
        (["-v"], Route.PASSTHROUGH),  # docker's --version
        (["-H", "tcp://h:2375"], Route.PASSTHROUGH),
        (["compose", "ps"], Route.OWN),
        (["verify", "x"], Route.OWN),
        (["keys", "list"], Route.OWN),
        (["-v", "verify", "x"], Route.OWN),  # our --verbose before our own command
        (["-H", "unix:///x.sock", "verify", "x"], Route.PASSTHROUGH),  # docker's namespace
        (["-H", "unix:///x.sock", "compose", "up"], Route.OWN),  # never an unverified bypass
        # docker skips help flags and `--` values between the command words: still ours.
        (["container", "--help=false", "create", "x"], Route.INTERCEPT),
        (["container", "-h", "run", "x"], Route.INTERCEPT),
        (["container", "--", "x", "create", "img"], Route.INTERCEPT),
        (["--", "--", "x", "create", "img"], Route.INTERCEPT),
        (["image", "--help=false", "pull", "x"], Route.INTERCEPT),
    ],
)
def test_classify(argv: list[str], route: Route) -> None:
    assert classify(argv) is route


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


def test_no_docker_is_exit_127_with_one_line(tmp_path: Path) -> None:
    env = {"PATH": str(tmp_path), "PYTHONPATH": str(Path(__file__).parents[2])}
    proc = subprocess.run([sys.executable, "-m", "safedocker", "ps"], env=env,
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 127
    assert proc.stderr.count("\n") == 1
    assert "real docker not found" in proc.stderr and "hint:" in proc.stderr


def test_passthrough_imports_no_heavy_module() -> None:
    code = (
        "import sys; import safedocker.shim as s; "
        "s.classify(['ps']); s.classify(['-H', 'x', 'image', 'ls']); "
        "heavy = {'typer', 'docker', 'sigstore', 'requests', 'cryptography', 'pynvml', 'rich',"
        " 'platformdirs', 'tomllib', 'safedocker.cli', 'safedocker.config'}; "
        "print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"
