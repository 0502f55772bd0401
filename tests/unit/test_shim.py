from __future__ import annotations

import subprocess
import sys
from pathlib import Path


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
