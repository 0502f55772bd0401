"""The CLI frame, and the README's reference checked against the real command tree."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from safedocker._docker.route import OWN_COMMANDS
from safedocker.cli import _run_app, command
from safedocker.errors import ExitCode

README = (Path(__file__).parents[2] / "README.md").read_text()


def _leaves() -> list[tuple[str, Any]]:
    """Every (command path, click command) of the app, as the CLI builds it."""
    found: list[tuple[str, Any]] = []

    def walk(node: Any, path: str) -> None:  # a click command or group, as typer built it
        subcommands = getattr(node, "commands", None)
        if subcommands:
            for name, sub in subcommands.items():
                walk(sub, f"{path} {name}".strip())
            return
        found.append((path, node))

    walk(command(), "")
    return found


LEAVES = _leaves()
COMMANDS = [(path, [opt for param in node.params for opt in getattr(param, "opts", [])
                    if opt.startswith("--")]) for path, node in LEAVES]


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


def _readme_row(path: str) -> str:
    """The first cell of the README's command table row for ``safe-docker PATH``."""
    section = README[README.index("### Commands"):README.index("### Environment variables")]
    for line in section.splitlines():
        cell = line.split(" | ")[0].removeprefix("| ").replace("\\|", "|")
        if re.match(rf"`safe-docker {re.escape(path)}( |`)", cell):
            return cell
    raise AssertionError(f"no README row for `safe-docker {path}`")


@pytest.mark.parametrize(("path", "node"), [(p, n) for p, n in LEAVES if p != "compose"],
                         ids=[p for p, _ in LEAVES if p != "compose"])
def test_help_and_readme_agree_on_options_and_metavars(path: str, node: Any) -> None:
    """Every argument and option has help and a docker-style metavar, and the README's row
    for the command spells each one as --help does (``--tlog required|optional|off``)."""
    row = _readme_row(path)
    for param in node.params:
        if param.param_type_name == "argument":
            assert param.help, f"{path}: argument {param.name} has no help"
            assert param.metavar and param.metavar in row, (path, param.metavar, row)
            continue
        if "--help" in param.opts:
            continue
        assert param.help, f"{path}: {param.opts} has no help"
        long = next(opt for opt in param.opts if opt.startswith("--"))
        assert long in row, (path, long, row)
        if not (param.is_flag or param.count):
            assert param.metavar, f"{path}: {long} has typer's default metavar"
            assert any(f"{opt} {param.metavar}" in row for opt in param.opts), (
                path, param.metavar, row)


@pytest.mark.parametrize("path", [p for p, _ in LEAVES if p != "compose"] + ["", "policy"])
def test_help_shows_no_typer_placeholders(path: str, capsys: pytest.CaptureFixture[str]) -> None:
    _run_app([*path.split(), "--help"])
    out = capsys.readouterr().out
    usage = out.splitlines()[0]
    assert usage.startswith(f"Usage: safe-docker {path}".rstrip()), usage
    for placeholder in ("<str>", "<int>", "<list[", "<path>", "{", "[default: 0]", "<bool>"):
        assert placeholder not in out, (path, placeholder, out)


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


def _quick_start() -> list[list[str]]:
    """The `safe-docker …` command lines of the README's quick start, as argv lists."""
    import shlex

    block = README[README.index("## Quick start"):].split("```")[1]
    lines = []
    for line in block.splitlines():
        if line.startswith("safe-docker "):
            command = line.split(" #", 1)[0].split(";", 1)[0]
            lines.append(shlex.split(command)[1:])
    return lines


QUICK_START = _quick_start()


def test_the_quick_start_comes_first_and_covers_the_whole_story() -> None:
    assert README.index("## Quick start") < README.index("## Two commands")
    words = [argv[0] for argv in QUICK_START]
    assert words == ["keys", "policy", "sign", "run", "run", "audit"]


@pytest.mark.parametrize("argv", QUICK_START, ids=[" ".join(a[:2]) for a in QUICK_START])
def test_the_quick_start_commands_exist_and_parse(argv: list[str]) -> None:
    from safedocker._docker.argv import parse
    from safedocker._docker.route import Route, classify

    if classify(argv) is Route.INTERCEPT:
        parse(argv)  # docker's own grammar: raises on a bad flag
        return
    node: Any = command()
    args = list(argv)
    while getattr(node, "commands", None) and args and args[0] in node.commands:
        node = node.commands[args.pop(0)]
    assert not getattr(node, "commands", None), argv
    node.make_context(argv[0], args)  # click's parse: raises on a bad option or argument
