"""The hand-off: running the docker commands a plan names.

The gate (gate/decide.py) says what docker gets; gate/intercept.py and gate/compose.py
turn that into a :class:`Plan`. Every command but the last runs to completion (stopping
at the first failure); the last is exec'd, so docker's own exit status is the command's.
Under ``SAFE_DOCKER_DRY_RUN=1`` each argv is printed as one JSON array per line instead.

A plan with a ``workdir`` (a build's snapshot of its Dockerfile, its context from stdin)
runs its last command as a child instead: the directory is removed when docker is done,
and docker's exit status (128 + N for signal N) is the command's.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, NoReturn

from safedocker._docker.binary import EXEC_MARKER, dry_run, exec_docker, real_docker

if TYPE_CHECKING:
    from safedocker._docker.argv import Invocation

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Plan:
    """The docker commands to run, in order; the last one is exec'd.

    ``binary``: run them with this program instead of the real docker (the standalone
    ``docker-compose``).
    """

    commands: tuple[tuple[str, ...], ...]
    binary: str | None = None
    # Indexes of commands whose output is progress, not the command's own output (the
    # pull before a `run`): their stdout goes to stderr, so the container's stays clean.
    progress: frozenset[int] = frozenset()
    # A file the last command reads as its standard input (the bytes safe-docker read from
    # its own, so docker gets exactly those).
    stdin: str | None = None
    # A private directory holding the plan's files, removed once the commands are done.
    workdir: str | None = None


def plan_unchanged(invocation: Invocation) -> Plan:
    return Plan((tuple(invocation.argv),))


def execute(plan: Plan) -> NoReturn:
    """Run every command but the last, then exec the last; stop at the first failure."""
    try:
        docker = plan.binary or real_docker()
    except BaseException:
        _remove(plan)
        raise
    if dry_run():
        for command in plan.commands:
            sys.stdout.write(json.dumps([docker, *command]) + "\n")
        sys.stdout.flush()
        _remove(plan)
        sys.exit(0)
    *before, last = plan.commands
    for index, command in enumerate(before):
        log.debug("running docker %s", command[:3])
        sys.stdout.flush()
        stdout = sys.stderr.fileno() if index in plan.progress else None
        status = subprocess.run([docker, *command], check=False,  # noqa: S603
                                stdout=stdout).returncode
        if status != 0:
            _remove(plan)
            sys.exit(status)
    if plan.workdir is None and plan.stdin is None:
        exec_docker(last, docker)
    sys.exit(_run_last(plan, docker, last))


def _run_last(plan: Plan, docker: str, command: tuple[str, ...]) -> int:
    """Run docker as a child with the plan's stdin, then remove the plan's files.

    Ctrl-C and Ctrl-\\ reach docker from the terminal (same process group): they are
    ignored here so that docker decides; a TERM or HUP sent to safe-docker is passed on.
    """
    env = dict(os.environ)
    marker = env.get(EXEC_MARKER, "")
    env[EXEC_MARKER] = os.pathsep.join(filter(None, [marker, os.path.realpath(docker)]))
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        stdin = open(plan.stdin, "rb") if plan.stdin else None  # noqa: SIM115 - closed below
        try:
            child = subprocess.Popen([docker, *command], stdin=stdin, env=env)  # noqa: S603
        finally:
            if stdin is not None:
                stdin.close()
    except OSError as e:
        _remove(plan)
        sys.stderr.write(f"safe-docker: cannot execute {docker} \u2014 {e.strerror} "
                         "(hint: set SAFE_DOCKER_REAL_DOCKER to the real docker binary)\n")
        return 127
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT,
                                                                     signal.SIGQUIT)}

    def forward(signum: int, _frame: object) -> None:
        child.send_signal(signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        previous[sig] = signal.signal(sig, forward)
    try:
        status = child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _remove(plan)
    return 128 - status if status < 0 else status


def _remove(plan: Plan) -> None:
    if plan.workdir is not None:
        shutil.rmtree(plan.workdir, ignore_errors=True)
