"""One source of truth: the bash/zsh/fish functions and the POSIX wrapper route every entry
of docker's command tree as the Python router does, run in the real shells.

A shell may send to safe-docker more than Python would pass (unusual spellings, words
whose meaning depends on docker's config): never less. For the table's plain spellings,
after simple global flags, the two agree exactly.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from typing import TYPE_CHECKING

import pytest

from safedocker._docker.commands import DOCKER
from safedocker._docker.route import Route, classify
from safedocker.ops import shellinit

if TYPE_CHECKING:
    from pathlib import Path

GLOBALS: tuple[tuple[str, ...], ...] = (
    (), ("-D",), ("-H", "unix:///x.sock"), ("--context=c",), ("-l", "debug", "--tls"),
)
# Spellings the fast path leaves to safe-docker, whatever the command.
UNUSUAL: tuple[tuple[str, ...], ...] = (
    ("-Dl", "debug", "ps"), ("--", "ps"), ("container", "--", "x", "ls"),
    ("-x", "ps"), ("container", "-h", "run", "x"),
)


def _entries() -> list[tuple[str, ...]]:
    entries: list[tuple[str, ...]] = []
    for word, node in DOCKER.items():
        entries.append((word,))
        if isinstance(node, dict):
            entries += [(word, sub) for sub in node]
    return [*entries, ("scout",), ("scout", "cves"), ("container", "frobnicate")]


def _tails(entry: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
    # `GROUP --help` is no plain spelling (the fast path reads no flag after a group word).
    group = len(entry) == 1 and isinstance(DOCKER.get(entry[0]), dict)
    return ((), ("x",)) if group else ((), ("x",), ("--help",))


SAMPLES = [(*flags, *entry, *tail) for entry in _entries() for flags in GLOBALS
           for tail in _tails(entry)]


@pytest.fixture(autouse=True)
def _plain_docker_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "no-docker-config"))
    monkeypatch.delenv("DOCKER_BUILDKIT", raising=False)


def python_passes(argv: tuple[str, ...]) -> bool:
    return classify(list(argv)) is Route.PASSTHROUGH


def _config_dependent(argv: tuple[str, ...]) -> bool:
    return any(word in ("builder", "build", "bake") for word in argv)


def _posix_script(path: Path, samples: list[tuple[str, ...]]) -> str:
    calls = "\n".join("r " + " ".join(shlex.quote(a) for a in s) for s in samples)
    return f'. {shlex.quote(str(path))}\nr() {{ __safe_docker_route "$@"; echo $?; }}\n{calls}\n'


def _fish_script(path: Path, samples: list[tuple[str, ...]]) -> str:
    def quote(arg: str) -> str:
        assert "'" not in arg and "\\" not in arg  # noqa: S101 - the samples above
        return f"'{arg}'"
    calls = "\n".join("r " + " ".join(quote(a) for a in s) for s in samples)
    return (f"source {quote(str(path))}\n"
            "function r; __safe_docker_route $argv; echo $status; end\n" + calls + "\n")


def shell_passes(shell: str, tmp_path: Path, samples: list[tuple[str, ...]]) -> list[bool]:
    if shutil.which(shell) is None:
        pytest.skip(f"{shell} is not installed")
    path = tmp_path / f"init.{shell}"
    path.write_text(shellinit.render(shell))
    script = tmp_path / f"samples.{shell}"
    if shell == "fish":
        script.write_text(_fish_script(path, samples))
        argv = ["fish", "--no-config", str(script)]
    else:
        script.write_text(_posix_script(path, samples))
        argv = ["zsh", "-f", str(script)] if shell == "zsh" else [
            "bash", "--norc", "--noprofile", str(script)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=True)
    statuses = proc.stdout.split()
    assert len(statuses) == len(samples), proc.stderr
    return [status == "1" for status in statuses]


def _agree(samples: list[tuple[str, ...]], shell: list[bool]) -> None:
    for argv, fast in zip(samples, shell, strict=True):
        python = python_passes(argv)
        if fast:
            assert python, f"{shlex.join(argv)}: the shell passes what Python would check"
        elif not _config_dependent(argv):
            assert not python, f"{shlex.join(argv)}: the shell checks what Python passes"


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_the_shell_functions_route_every_table_entry_as_python_does(
        shell: str, tmp_path: Path) -> None:
    _agree(SAMPLES, shell_passes(shell, tmp_path, SAMPLES))


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_unusual_spellings_and_config_dependent_words_go_to_safe_docker(
        shell: str, tmp_path: Path) -> None:
    samples = [*UNUSUAL, ("builder", "prune"), ("build", "."), ("bake",)]
    assert shell_passes(shell, tmp_path, samples) == [False] * len(samples)


def _fake(path: Path, name: str) -> Path:
    path.write_text(f'#!/bin/sh\necho {name}\n')
    path.chmod(0o755)
    return path


def test_the_wrapper_routes_every_table_entry_as_python_does(tmp_path: Path) -> None:
    if shutil.which("dash") is None and shutil.which("sh") is None:
        pytest.skip("no POSIX sh")
    real = _fake(tmp_path / "real-docker", "docker")
    own = _fake(tmp_path / "safe-docker", "safe")
    wrapper = tmp_path / "docker"
    wrapper.write_text(shellinit.wrapper(str(real), str(own)))
    wrapper.chmod(0o755)
    samples = [s for s in SAMPLES if s[:1] in ((), ("-D",), ("--context=c",))] + list(UNUSUAL)
    # One sh runs the wrapper once per sample (each in its own process, as docker is run).
    script = tmp_path / "samples.sh"
    script.write_text("\n".join(f"{shlex.quote(str(wrapper))} " + " ".join(map(shlex.quote, s))
                                for s in samples) + "\n")
    proc = subprocess.run(["sh", str(script)], capture_output=True, text=True, timeout=300,
                          check=True)
    said = proc.stdout.split()
    assert len(said) == len(samples), proc.stderr
    plain = len(samples) - len(UNUSUAL)
    _agree(samples[:plain], [word == "docker" for word in said[:plain]])
    assert said[-len(UNUSUAL):] == ["safe"] * len(UNUSUAL)


def test_the_wrapper_pins_the_real_docker_and_is_known_as_safe_docker(tmp_path: Path) -> None:
    from safedocker._docker.binary import find_real_docker

    real = _fake(tmp_path / "real docker's", "docker")
    text = shellinit.wrapper(str(real), "/opt/safe-docker/bin/safe-docker")
    quoted = str(real).replace("'", "'\\''")
    assert f"SAFE_DOCKER_REAL_DOCKER='{quoted}'" in text
    wrapper = tmp_path / "bin" / "docker"
    wrapper.parent.mkdir()
    wrapper.write_text(text)
    wrapper.chmod(0o755)
    # safe-docker never takes its own wrapper for the real docker.
    assert find_real_docker({"PATH": str(wrapper.parent)}) is None


def test_docker_ps_through_the_wrapper_starts_no_python(tmp_path: Path) -> None:
    docker = shutil.which("docker")
    if shutil.which("strace") is None or docker is None:
        pytest.skip("needs strace and a docker CLI")
    wrapper = tmp_path / "docker"
    wrapper.write_text(shellinit.wrapper(docker, "/nonexistent/safe-docker"))
    wrapper.chmod(0o755)
    trace = tmp_path / "trace"
    env = {"PATH": "/usr/bin:/bin", "DOCKER_HOST": "unix:///nonexistent.sock",
           "HOME": str(tmp_path)}
    subprocess.run(["strace", "-f", "-qq", "-e", "trace=execve", "-o", str(trace),
                    str(wrapper), "-D", "ps"], env=env, capture_output=True, timeout=60,
                   check=False)
    execs = [line for line in trace.read_text().splitlines() if "execve(" in line]
    assert any(f'execve("{docker}"' in line for line in execs), execs
    assert not [line for line in execs if "python" in line or "safe-docker" in line]


def test_a_wrapper_for_a_missing_real_docker_is_a_usage_error(tmp_path: Path) -> None:
    from safedocker.errors import UsageError

    with pytest.raises(UsageError):
        shellinit.wrapper(str(tmp_path / "none"), "/x/safe-docker")


def test_the_shell_files_hold_what_the_table_renders() -> None:
    # `python -m safedocker.ops.shellinit` rewrites them; the packaged files must be current.
    for shell, name in shellinit.SHELLS.items():
        text = (shellinit.SOURCE_DIR / name).read_text()
        assert shellinit.fill(text, shell) == text, f"{name}: run python -m {shellinit.__name__}"
    assert os.access(shellinit.SOURCE_DIR / "safe-docker.bash", os.R_OK)
