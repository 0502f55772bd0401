"""The CLI frame, and the README's reference checked against the real command tree."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer

from safedocker._docker.route import OWN_COMMANDS
from safedocker.cli import app
from safedocker.errors import ExitCode

README = (Path(__file__).parents[2] / "README.md").read_text()


def _commands() -> list[tuple[str, list[str]]]:
    """Every (command path, [option names]) of the typer app."""
    root = typer.main.get_command(app)
    found: list[tuple[str, list[str]]] = []

    def walk(command: Any, path: str) -> None:  # a click command or group, as typer built it
        subcommands = getattr(command, "commands", None)
        if subcommands:
            for name, sub in subcommands.items():
                walk(sub, f"{path} {name}".strip())
            return
        options = [opt for param in command.params
                   for opt in getattr(param, "opts", []) if opt.startswith("--")]
        found.append((path, options))

    walk(root, "")
    return found


COMMANDS = _commands()


def test_the_app_has_every_own_command_the_shim_routes() -> None:
    top = {path.split()[0] for path, _ in COMMANDS}
    assert top == set(OWN_COMMANDS)


@pytest.mark.parametrize(("path", "options"), COMMANDS, ids=[p for p, _ in COMMANDS])
def test_readme_documents_every_command_and_option(path: str, options: list[str]) -> None:
    assert f"safe-docker {path}" in README
    section = README[README.index("### Commands"):README.index("### Environment variables")]
    for option in options:
        if option == "--help":
            continue
        assert option in section, f"{option} of `safe-docker {path}` is not in README"


def test_readme_documents_every_environment_variable_and_exit_code() -> None:
    design = Path(__file__).parents[3] / "shared" / "DESIGN.md"
    variables = set(re.findall(r"\b(SAFE_DOCKER_[A-Z_]+)", design.read_text()))
    variables |= set(re.findall(r'"(SAFE_DOCKER_[A-Z_]+)"', "".join(
        p.read_text() for p in (Path(__file__).parents[2] / "safedocker").rglob("*.py"))))
    for variable in sorted(variables):
        assert variable in README, f"{variable} is not documented in README"
    for code in ExitCode:
        assert f"| {int(code)} |" in README


def test_help_says_other_commands_go_to_docker() -> None:
    out = subprocess.run([sys.executable, "-m", "safedocker", "--help"], capture_output=True,
                         text=True, check=True).stdout
    assert "All other commands go to" in out.replace("\n", " ").replace("  ", " ")
    for name in ("verify", "keys", "policy", "doctor"):
        assert name in out


def test_version() -> None:
    from safedocker import __version__

    out = subprocess.run([sys.executable, "-m", "safedocker", "--version"], capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == f"safe-docker {__version__}"


def test_readme_layout_lists_every_module() -> None:
    block = README[README.index("## Layout"):].split("```")[1]
    listed: set[str] = set()
    folder = ""
    for line in block.splitlines():
        name = line.strip().split(" ")[0] if line.strip() else ""
        indent = len(line) - len(line.lstrip())
        if indent == 2 and name.endswith("/"):
            folder = name
        elif name.endswith(".py") and indent in (2, 4):
            listed.add((folder if indent == 4 else "") + name)
    package = Path(__file__).parents[2] / "safedocker"
    modules = {str(p.relative_to(package)) for p in package.rglob("*.py")
               if p.name != "__init__.py" or p.parent == package}
    assert listed == modules
