"""``safe-docker shell-init bash|zsh|fish|wrapper``: ``docker`` as a thin function, or as a
POSIX sh wrapper for PATH, routed by docker's command tree.

The shell files live in ``shell/safe-docker.{bash,zsh,fish}`` (in a wheel they are packaged
as ``safedocker/_shell/``, a hatch force-include). Each holds its ``__safe_docker_route``
function between two marker lines; that region is rendered here from the table in
:mod:`safedocker._docker.commands`, so the shells, the wrapper and the Python router share
one source of truth (``python -m safedocker.ops.shellinit`` rewrites the files; a test
checks that they are current). The generated fast path sends to the real docker only the
commands the table marks PASS, in their plain spellings after simple global flags;
everything else (VERIFY, unknown words, unusual spellings) goes to safe-docker, which
decides with docker's full grammar.
"""

from __future__ import annotations

import os
import sys
from importlib import resources
from pathlib import Path

from safedocker._docker.commands import DOCKER, Kind
from safedocker.errors import UsageError

SHELLS = {"bash": "safe-docker.bash", "zsh": "safe-docker.zsh", "fish": "safe-docker.fish"}
WRAPPER = "wrapper"
# Where the files sit inside an installed package (see pyproject's force-include).
PACKAGED_DIR = "_shell"
SOURCE_DIR = Path(__file__).resolve().parents[2] / "shell"
BEGIN = "# >>> generated from docker's command tree (safe-docker shell-init); do not edit"
END = "# <<< end of generated code"
# Marks the wrapper (install.sh looks for it; "safedocker" makes safe-docker know it as
# itself, so it never execs the wrapper as the real docker).
WRAPPER_MARK = "safe-docker docker shim (safedocker)"
# Words whose meaning depends on docker's config (aliases.builder, DOCKER_BUILDKIT): never
# on the fast path.
_CONFIG_DEPENDENT = frozenset({"builder"})
_WIDTH = 92

# docker's global flags, as the fast path reads them: value flags (and their attached
# forms), bool flags; anything else that looks like a flag goes to safe-docker.
_VALUE_FLAGS = "--config|--context|--host|--log-level|--tlscacert|--tlscert|--tlskey|-H|-c|-l"
_BOOL_FLAGS = "--debug|--tls|--tlsverify|--help|--version|-D|-h|-v"
_ATTACHED = ("--config=*|--context=*|--host=*|--log-level=*|--tlscacert=*|--tlscert=*|"
             "--tlskey=*|--debug=*|--tls=*|--tlsverify=*|--help=*|--version=*|-H*|-c*|-l*")


def pass_words() -> list[str]:
    """Top-level words docker may run straight away (``ps``, ``images``…)."""
    return sorted(w for w, node in DOCKER.items() if node is Kind.PASS)


def pass_subcommands() -> dict[str, list[str]]:
    """For each management command: its subcommands docker may run straight away."""
    return {word: sorted(sub for sub, kind in node.items() if kind is Kind.PASS)
            for word, node in sorted(DOCKER.items())
            if isinstance(node, dict) and word not in _CONFIG_DEPENDENT}


def _wrap(items: list[str], sep: str, first: str, indent: str, tail: str,
          continuation: str) -> list[str]:
    """``first`` + items joined by ``sep`` + ``tail``, continued over lines."""
    lines, line = [], first
    for number, item in enumerate(items):
        piece = item + (sep if number < len(items) - 1 else tail)
        if len(line) + len(piece) + len(continuation) > _WIDTH and line.strip():
            lines.append(line.rstrip() + continuation)
            line = indent
        line += piece
    lines.append(line)
    return lines


def posix_route(*, zsh: bool = False) -> str:
    """``__safe_docker_route`` in POSIX sh (also read by bash, and by zsh with its own
    options reset for the function)."""
    out = [
        "# Status 1: the real docker can run this command line as it is (the command cannot",
        "# bring an image to life); 0: safe-docker must see it.",
        "__safe_docker_route() {",
        *(["    emulate -L zsh"] if zsh else []),
        "    while [ $# -gt 0 ]; do",
        "        case $1 in",
        "            --) return 0 ;;",
        f"            {_VALUE_FLAGS})",
        "                [ $# -ge 2 ] || return 1  # docker reports the missing value",
        "                shift ;;",
        f"            {_BOOL_FLAGS}) ;;",
        *_wrap(_ATTACHED.split("|"), "|", "            ", "            ", ") ;;", "\\"),
        "            -*) return 0 ;;  # combined or unknown flags: safe-docker decides",
        "            *) break ;;",
        "        esac",
        "        shift",
        "    done",
        "    [ $# -gt 0 ] || return 1  # global flags only (docker --version): docker answers",
        "    case $1 in",
        *_wrap(pass_words(), "|", "        ", "        ", ") return 1 ;;", "\\"),
    ]
    for word, subs in pass_subcommands().items():
        if not subs:
            continue
        out += [f"        {word}) [ $# -eq 1 ] && return 1",
                *_wrap(subs, "|", "            case $2 in ", "                ",
                       ") return 1 ;; esac ;;", "\\")]
    out += ["    esac", "    return 0", "}"]
    return "\n".join(out)


def fish_route() -> str:
    """``__safe_docker_route`` in fish."""
    value_flags = _VALUE_FLAGS.replace("|", " ")
    bool_flags = _BOOL_FLAGS.replace("|", " ")
    attached = " ".join(f"'{a}'" for a in _ATTACHED.split("|"))
    out = [
        "# Status 1: the real docker can run this command line as it is (the command cannot",
        "# bring an image to life); 0: safe-docker must see it.",
        "function __safe_docker_route",
        "    set -l args $argv",
        "    while set -q args[1]",
        "        switch $args[1]",
        "            case --",
        "                return 0",
        f"            case {value_flags}",
        "                set -q args[2]; or return 1 # docker reports the missing value",
        "                set -e args[1]",
        f"            case {bool_flags}",
        *_wrap(attached.split(" "), " ", "            case ", "                ", "", " \\"),
        "            case '-*' # combined or unknown flags: safe-docker decides",
        "                return 0",
        "            case '*'",
        "                break",
        "        end",
        "        set -e args[1]",
        "    end",
        "    set -q args[1]; or return 1 # global flags only (docker --version): docker answers",
        "    switch $args[1]",
        *_wrap(pass_words(), " ", "        case ", "            ", "", " \\"),
        "            return 1",
    ]
    for word, subs in pass_subcommands().items():
        if not subs:
            continue
        out += [f"        case {word}",
                "            set -q args[2]; or return 1",
                "            switch $args[2]",
                *_wrap(subs, " ", "                case ", "                    ", "", " \\"),
                "                    return 1",
                "            end"]
    out += ["    end", "    return 0", "end"]
    return "\n".join(out)


def route_code(shell: str) -> str:
    return fish_route() if shell == "fish" else posix_route(zsh=shell == "zsh")


def fill(text: str, shell: str) -> str:
    """``text`` with its generated region rendered from the table."""
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise UsageError(f"shell integration file for {shell} has no generated region",
                         hint="reinstall safe-docker")
    return text[: start + len(BEGIN)] + "\n" + route_code(shell) + "\n" + text[end:]


def render(shell: str, *, real_docker: str | None = None) -> str:
    """The integration code for ``shell`` (``bash``, ``zsh``, ``fish``, or a path to one),
    or the POSIX ``wrapper``."""
    name = os.path.basename(shell.strip())
    if name == WRAPPER:
        return wrapper(real_docker)
    if real_docker is not None:
        raise UsageError("--real-docker is an option of shell-init wrapper",
                         hint="the shell functions read SAFE_DOCKER_REAL_DOCKER at run time")
    file = SHELLS.get(name)
    if file is None:
        raise UsageError(
            f"unsupported shell: {shell or '(none)'}",
            why=f"shell-init knows {', '.join(SHELLS)} and {WRAPPER}",
            hint='use eval "$(safe-docker shell-init bash)", shell-init zsh|fish, or '
                 "shell-init wrapper for a docker wrapper on PATH",
        )
    return fill(_read(file), name)


def wrapper(real_docker: str | None = None, safe_docker: str | None = None) -> str:
    """A POSIX sh ``docker`` for PATH: the fast path execs the real docker (no Python
    starts), the rest goes to safe-docker with the real docker's path pinned."""
    from safedocker._docker.binary import find_real_docker
    from safedocker._docker.binary import real_docker as required_docker

    docker = real_docker or find_real_docker() or required_docker()
    if not os.path.isabs(docker):
        docker = os.path.abspath(docker)
    if not (os.path.isfile(docker) and os.access(docker, os.X_OK)):
        raise UsageError(f"--real-docker {docker} is not an executable file",
                         hint="give the path of the docker CLI binary")
    own = safe_docker or _own_path()
    return "\n".join([
        "#!/bin/sh",
        f"# {WRAPPER_MARK}: written by `safe-docker shell-init wrapper`.",
        "# docker commands that cannot bring an image to life run the real docker directly;",
        "# pull/run/create, services, plugins, builds and anything unknown go to safe-docker.",
        f"SAFE_DOCKER_REAL_DOCKER={_quoted(docker)}",
        "export SAFE_DOCKER_REAL_DOCKER",
        # sh runs each command as soon as it is read: a plain `docker ps` is exec'd here,
        # before the routing below is parsed (the same words as the route's first case).
        "case ${1-} in",
        *_wrap(pass_words(), "|", "    ", "    ", ') exec "$SAFE_DOCKER_REAL_DOCKER" "$@" ;;',
               "\\"),
        "esac",
        BEGIN,
        posix_route(),
        END,
        '__safe_docker_route "$@" || exec "$SAFE_DOCKER_REAL_DOCKER" "$@"',
        f'exec {_quoted(own)} "$@"',
        "",
    ])


def _quoted(text: str) -> str:
    """``text`` as one sh word, always single-quoted (install.sh and tests look for it)."""
    return "'" + text.replace("'", "'\\''") + "'"


def _own_path() -> str:
    """This safe-docker's path: the console script that is running, else the one on PATH."""
    import shutil

    argv0 = sys.argv[0] if sys.argv else ""
    if os.path.basename(argv0) == "safe-docker" and os.access(argv0, os.X_OK):
        return os.path.abspath(argv0)
    return shutil.which("safe-docker") or "safe-docker"


def _read(name: str) -> str:
    packaged = resources.files("safedocker").joinpath(PACKAGED_DIR).joinpath(name)
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    source = SOURCE_DIR / name
    if source.is_file():
        return source.read_text(encoding="utf-8")
    raise UsageError(
        f"shell integration file {name} is missing",
        why=f"not packaged as safedocker/{PACKAGED_DIR}/{name} and no {source}",
        hint="reinstall safe-docker",
    )


def write_sources() -> list[Path]:
    """Rewrite the generated regions of ``shell/`` from the table (a source checkout)."""
    written = []
    for shell, name in SHELLS.items():
        path = SOURCE_DIR / name
        text = path.read_text(encoding="utf-8")
        new = fill(text, shell)
        if new != text:
            path.write_text(new, encoding="utf-8")
            written.append(path)
    return written


if __name__ == "__main__":  # pragma: no cover - a maintainer's tool
    for path in write_sources():
        sys.stdout.write(f"wrote {path}\n")
