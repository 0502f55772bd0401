"""Entry point of ``safe-docker``: standard library only.

This module runs on every docker call, so it decides with pure functions whether argv is
an intercepted command (pull/run/create), one of safe-docker's own commands, or anything
else; anything else is ``os.execv`` of the real docker with argv unchanged. Heavy
modules are imported only past that decision.
"""

from __future__ import annotations

import enum
import os
import sys
from typing import TYPE_CHECKING, NoReturn

from safedocker.dockerargs import find_command, split_globals

if TYPE_CHECKING:
    from collections.abc import Sequence

# Set in the environment of the docker we exec: if that "docker" turns out to lead back
# to this shim, the next start skips it instead of looping.
EXEC_MARKER = "_SAFE_DOCKER_EXECED"

OWN_COMMANDS = frozenset(
    {
        "verify", "keys", "policy", "cache", "trust-root", "audit", "gpu",
        "doctor", "sign", "save", "load", "shell-init", "compose",
    }
)


_VERBOSE_FLAGS = frozenset({"-v", "-vv", "-vvv", "--verbose"})


class Route(enum.Enum):
    PASSTHROUGH = "passthrough"
    INTERCEPT = "intercept"
    OWN = "own"
    HELP = "help"  # safe-docker's own help / version


def classify(argv: Sequence[str]) -> Route:
    """Decide what to do with ``argv`` (without the program name)."""
    if not argv or argv[0] in ("--help", "-h", "--version"):
        return Route.HELP
    # `safe-docker -v verify …`: -v is docker's --version, but before one of our own
    # commands it can only mean our --verbose.
    first_word = next((i for i, token in enumerate(argv) if token not in _VERBOSE_FLAGS), None)
    if first_word is not None and first_word > 0 and argv[first_word] in OWN_COMMANDS:
        return Route.OWN
    split = split_globals(argv)
    if split.command_index >= len(argv):
        return Route.PASSTHROUGH  # only global flags (e.g. `docker -v`): docker answers
    words = argv[split.command_index :]
    if split.command_index == 0 and words[0] in OWN_COMMANDS:
        return Route.OWN
    if words[0] == "compose":
        return Route.OWN  # `docker -H x compose up` must be verified too
    # docker's own rules for finding the command words (help flags and `--` may sit
    # between `container` and `run`): anything docker would run as run/create/pull is ours.
    if find_command(argv) is not None:
        return Route.INTERCEPT
    return Route.PASSTHROUGH


def _is_self(path: str) -> bool:
    """Whether ``path`` resolves to this shim (a symlink or copy named docker)."""
    real = os.path.realpath(path)
    candidates = {os.path.realpath(sys.argv[0])} if sys.argv and sys.argv[0] else set()
    if real in candidates:
        return True
    # A console-script wrapper or a copy of it: small text files naming our entry point.
    try:
        with open(real, "rb") as handle:
            head = handle.read(4096)
    except OSError:
        return False
    return head.startswith(b"#!") and b"safedocker" in head


def find_real_docker(environ: dict[str, str] | None = None) -> str | None:
    """The real docker: SAFE_DOCKER_REAL_DOCKER, else the first ``docker`` on PATH not us."""
    env = os.environ if environ is None else environ
    skipped = {p for p in env.get(EXEC_MARKER, "").split(os.pathsep) if p}
    configured = env.get("SAFE_DOCKER_REAL_DOCKER")
    if configured:
        if os.path.realpath(configured) in skipped or _is_self(configured):
            return None
        return configured if os.access(configured, os.X_OK) else None
    for directory in env.get("PATH", os.defpath).split(os.pathsep):
        candidate = os.path.join(directory or ".", "docker")
        if not (os.path.isfile(candidate) and os.access(candidate, os.X_OK)):
            continue
        if os.path.realpath(candidate) in skipped or _is_self(candidate):
            continue
        return candidate
    return None


def docker_not_found() -> NoReturn:
    sys.stderr.write(
        "safe-docker: real docker not found \u2014 no docker on PATH other than safe-docker "
        "itself (hint: install the docker CLI or set SAFE_DOCKER_REAL_DOCKER to its path)\n"
    )
    sys.exit(127)


def exec_docker(argv: Sequence[str], docker: str | None = None) -> NoReturn:
    """Replace this process with the real docker; under dry run, print argv instead."""
    docker = docker or find_real_docker()
    if docker is None:
        docker_not_found()
    full = [docker, *argv]
    if os.environ.get("SAFE_DOCKER_DRY_RUN") == "1":
        import json

        sys.stdout.write(json.dumps(full) + "\n")
        sys.stdout.flush()
        sys.exit(0)
    marker = os.environ.get(EXEC_MARKER, "")
    os.environ[EXEC_MARKER] = os.pathsep.join(filter(None, [marker, os.path.realpath(docker)]))
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execv(docker, full)  # noqa: S606 - exec of the real docker is the point
    except OSError as e:
        sys.stderr.write(
            f"safe-docker: cannot execute {docker} \u2014 {e.strerror} "
            "(hint: set SAFE_DOCKER_REAL_DOCKER to the real docker binary)\n"
        )
        sys.exit(127)


def main() -> NoReturn:
    argv = sys.argv[1:]
    route = classify(argv)
    if route is Route.PASSTHROUGH or os.environ.get("SAFE_DOCKER_MODE") == "off" and (
        route is Route.INTERCEPT
    ):
        exec_docker(argv)
    if route is Route.INTERCEPT:
        from safedocker.intercept import run  # verification: no typer on this path

        run(argv)
    from safedocker.cli import main as cli_main  # heavy imports start here

    cli_main(route.value, argv)
