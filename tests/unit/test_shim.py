from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# Every module a plain passthrough (`docker ps`) may import beyond the interpreter's own
# start-up: anything more is start-up time on every docker call.
PASSTHROUGH_MODULES = {
    "__future__", "safedocker", "safedocker.shim", "safedocker._docker",
    "safedocker._docker.fastpass", "safedocker._docker.binary", "safedocker._internal",
    "safedocker._internal.environment",
}


def _imported(code: str, env: dict[str, str]) -> set[str]:
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", code], env=env,
                          capture_output=True, text=True, check=True)
    return {line.split("|")[-1].strip() for line in done.stderr.splitlines()
            if line.startswith("import time:") and "imported package" not in line}


def test_no_docker_is_exit_127_with_one_line(tmp_path: Path) -> None:
    env = {"PATH": str(tmp_path), "PYTHONPATH": str(Path(__file__).parents[2])}
    proc = subprocess.run([sys.executable, "-m", "safedocker", "ps"], env=env,
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 127
    assert proc.stderr.count("\n") == 1
    assert "real docker not found" in proc.stderr and "hint:" in proc.stderr


def test_passthrough_imports_no_heavy_module() -> None:
    code = (
        "import sys; import safedocker.shim; from safedocker._docker.route import classify; "
        "classify(['ps']); classify(['-H', 'x', 'image', 'ls']); "
        "heavy = {'typer', 'docker', 'sigstore', 'requests', 'cryptography', 'pynvml', 'rich',"
        " 'platformdirs', 'tomllib', 'safedocker.cli', 'safedocker.policy.config'}; "
        "print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"


@pytest.mark.parametrize("argv", [["ps", "-a"], ["image", "ls"], ["logs", "-f", "c"]])
def test_a_passthrough_imports_only_its_allowlist(argv: list[str]) -> None:
    env = dict(os.environ, SAFE_DOCKER_REAL_DOCKER="/bin/true",
               PYTHONPATH=str(Path(__file__).parents[2]))
    bare = _imported("pass", env)
    shim = _imported(f"import sys; sys.argv = ['safe-docker', *{argv!r}]; "
                     "from safedocker.shim import main; main()", env)
    assert shim - bare <= PASSTHROUGH_MODULES, sorted(shim - bare - PASSTHROUGH_MODULES)
