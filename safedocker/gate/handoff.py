"""The hand-off: running the docker commands a plan names.

The gate (gate/decide.py) says what docker gets; gate/intercept.py and gate/compose.py
turn that into a :class:`Plan`. Every command but the last runs to completion (stopping
at the first failure); the last is exec'd, so docker's own exit status is the command's.
Under ``SAFE_DOCKER_DRY_RUN=1`` each argv is printed as one JSON array per line instead.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, NoReturn

from safedocker._docker.binary import dry_run, exec_docker, real_docker

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


def plan_unchanged(invocation: Invocation) -> Plan:
    return Plan((tuple(invocation.argv),))


def execute(plan: Plan) -> NoReturn:
    """Run every command but the last, then exec the last; stop at the first failure."""
    docker = plan.binary or real_docker()
    if dry_run():
        for command in plan.commands:
            sys.stdout.write(json.dumps([docker, *command]) + "\n")
        sys.stdout.flush()
        sys.exit(0)
    *before, last = plan.commands
    for index, command in enumerate(before):
        log.debug("running docker %s", command[:3])
        sys.stdout.flush()
        stdout = sys.stderr.fileno() if index in plan.progress else None
        status = subprocess.run([docker, *command], check=False,  # noqa: S603
                                stdout=stdout).returncode
        if status != 0:
            sys.exit(status)
    exec_docker(last, docker)
