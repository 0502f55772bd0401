"""The hand-off: the docker argv that runs what was verified, and running it.

``run``/``create`` become one exec of docker with IMAGE replaced by ``repo@digest`` (plus
GPU options before it). ``pull`` becomes ``docker pull repo@digest`` followed by
``docker tag repo@digest repo:tag`` so that ``docker images`` shows the tag users expect.
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
    from collections.abc import Sequence

    from safedocker._docker.argv import Invocation
    from safedocker.reference import Digest, ImageRef

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Plan:
    """The docker commands to run, in order; the last one is exec'd.

    ``binary``: run them with this program instead of the real docker (the standalone
    ``docker-compose``).
    """

    commands: tuple[tuple[str, ...], ...]
    binary: str | None = None


def plan_pinned(invocation: Invocation, ref: ImageRef, digest: Digest,
                extra_options: Sequence[str] = (), *, skip_pull: bool = False,
                target: str | None = None) -> Plan:
    """The commands that run ``invocation`` with its image pinned to ``digest``.

    ``skip_pull``: docker already has the image (decided offline), so ``pull`` only tags.
    ``target``: what to hand docker instead of ``repo@digest`` (the verified image ID
    ``sha256:<config>`` of a loaded image, which docker knows by ID only).
    """
    pinned = target or ref.pinned(digest)
    if invocation.command[-1] != "pull":
        return Plan((tuple(invocation.rebuild(pinned, extra_options)),))
    pull = () if skip_pull else (tuple(invocation.rebuild(pinned)),)
    if ref.digest is not None and ref.tag is None:
        # Pulled by digest: there is no tag to restore.
        return Plan(pull or ((*invocation.globals, "image", "inspect", "--format",
                              "{{.Id}}", pinned),))
    tag = (*invocation.globals, "tag", pinned, ref.tagged)
    return Plan((*pull, tag))


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
    for command in before:
        log.debug("running docker %s", command[:3])
        status = subprocess.run([docker, *command], check=False).returncode  # noqa: S603
        if status != 0:
            sys.exit(status)
    exec_docker(last, docker)
