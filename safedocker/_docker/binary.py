"""The real docker binary: finding it (never this shim), exec'ing it, and dry runs.

Standard library only: the passthrough path of every docker call runs through here.
"""

from __future__ import annotations

import os
import sys

from safedocker._internal import environment

# Not typing.TYPE_CHECKING: importing typing (and errors' enum) would cost the
# passthrough more than everything else it does.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import NoReturn

# Set in the environment of the docker we exec: if that "docker" turns out to lead back
# to this shim, the next start skips it instead of looping.
EXEC_MARKER = "_SAFE_DOCKER_EXECED"


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
    configured = environment.real_docker(env)
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


def real_docker() -> str:
    """The real docker, or :class:`DockerNotFound` (exit 127)."""
    from safedocker.errors import DockerNotFound

    docker = find_real_docker()
    if docker is None:
        raise DockerNotFound(
            "real docker not found",
            why="no docker on PATH other than safe-docker itself",
            hint="install the docker CLI or set SAFE_DOCKER_REAL_DOCKER to its path",
        )
    return docker


def docker_not_found() -> NoReturn:
    sys.stderr.write(
        "safe-docker: real docker not found \u2014 no docker on PATH other than safe-docker "
        "itself (hint: install the docker CLI or set SAFE_DOCKER_REAL_DOCKER to its path)\n"
    )
    sys.exit(127)


def dry_run() -> bool:
    """SAFE_DOCKER_DRY_RUN=1: print each docker argv as a JSON array instead of running it."""
    return environment.dry_run()


def _restore_signals() -> None:
    """Start docker with the signal dispositions a shell gives it, as subprocess does for a
    child (restore_signals): Python ignores SIGPIPE and SIGXFSZ, and an exec keeps an
    ignored signal ignored, so ``docker logs -f x | head -1`` would leave docker writing
    into a closed pipe instead of ending it. ``_signal``, not ``signal``: that one imports
    enum on every passthrough."""
    try:
        import _signal as signals  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        import signal as signals
    for name in ("SIGPIPE", "SIGXFSZ"):
        number = getattr(signals, name, None)
        if number is not None:
            signals.signal(number, signals.SIG_DFL)


def exec_docker(argv: Sequence[str], docker: str | None = None) -> NoReturn:
    """Replace this process with the real docker; under dry run, print argv instead."""
    docker = docker or find_real_docker()
    if docker is None:
        docker_not_found()
    full = [docker, *argv]
    if dry_run():
        import json

        sys.stdout.write(json.dumps(full) + "\n")
        sys.stdout.flush()
        sys.exit(0)
    marker = os.environ.get(EXEC_MARKER, "")
    os.environ[EXEC_MARKER] = os.pathsep.join(filter(None, [marker, os.path.realpath(docker)]))
    sys.stdout.flush()
    sys.stderr.flush()
    _restore_signals()
    try:
        os.execv(docker, full)  # noqa: S606 - exec of the real docker is the point
    except OSError as e:
        sys.stderr.write(
            f"safe-docker: cannot execute {docker} \u2014 {e.strerror} "
            "(hint: set SAFE_DOCKER_REAL_DOCKER to the real docker binary)\n"
        )
        sys.exit(127)
