"""shell-init: each shell's file is rendered; its command lists match the real CLI."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest

from safedocker._docker.route import OWN_COMMANDS
from safedocker.errors import UsageError
from safedocker.ops import shellinit

if TYPE_CHECKING:
    from pathlib import Path

SHELLS = ("bash", "zsh", "fish")


@pytest.mark.parametrize("shell", SHELLS)
def test_render_returns_the_shell_file_defining_a_docker_function(shell: str) -> None:
    text = shellinit.render(shell)
    assert text == (shellinit.SOURCE_DIR / f"safe-docker.{shell}").read_text()
    assert re.search(r"^function docker\b", text, re.MULTILINE)
    assert "safe-docker" in text


def test_a_shell_given_as_a_path_is_recognised() -> None:
    assert shellinit.render("/usr/bin/zsh") == shellinit.render("zsh")


@pytest.mark.parametrize("shell", ["tcsh", "", "powershell", "bash; rm -rf /"])
def test_an_unknown_shell_is_a_usage_error(shell: str) -> None:
    with pytest.raises(UsageError) as info:
        shellinit.render(shell)
    assert info.value.exit_code == 2
    assert "bash, zsh, fish" in info.value.line()


def test_a_packaged_copy_is_preferred(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    packaged = tmp_path / "safedocker"
    (packaged / shellinit.PACKAGED_DIR).mkdir(parents=True)
    text = f"# packaged\n{shellinit.BEGIN}\n{shellinit.END}\n"
    (packaged / shellinit.PACKAGED_DIR / "safe-docker.fish").write_text(text)
    monkeypatch.setattr("safedocker.ops.shellinit.resources.files", lambda _package: packaged)
    assert shellinit.render("fish").startswith("# packaged\n")
    assert shellinit.render("bash") == (shellinit.SOURCE_DIR / "safe-docker.bash").read_text()


def _cli_groups() -> dict[str, set[str]]:
    from safedocker.cli import app

    return {
        str(group.name): {str(command.name) for command in group.typer_instance.registered_commands}
        for group in app.registered_groups
        if group.typer_instance is not None
    }


@pytest.mark.parametrize("name", ["safe-docker.bash", "safe-docker.zsh", "safe-docker.fish",
                                  "_safe-docker"])
def test_the_shell_files_know_every_own_command_and_subcommand(name: str) -> None:
    text = (shellinit.SOURCE_DIR / name).read_text()
    words = set(re.findall(r"[a-z][a-z-]*", text))
    assert OWN_COMMANDS <= words
    lines = text.splitlines()
    pairs = [set(re.findall(r"[a-z][a-z-]*", " ".join(lines[i:i + 2]))) for i in range(len(lines))]
    for group, subcommands in _cli_groups().items():
        # Some line (with its continuation) names the group and lists all its subcommands.
        assert any({group, *subcommands} <= pair for pair in pairs), f"{name}: {group}"
