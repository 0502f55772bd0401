"""Entry point of ``safe-docker``: standard library only, and nothing imports it.

This module runs on every docker call, so it decides with pure functions
(:mod:`safedocker._docker.route`, over docker's command tree) whether argv is a command
the gate must see (one that can bring an image to life, or one safe-docker does not
know), one of safe-docker's own commands, or anything else; anything else is
``os.execv`` of the real docker with argv unchanged. Heavy modules are imported only past
that decision. SAFE_DOCKER_MODE=off skips the gate here only when no system policy
exists (a locked one must not be escaped by a variable).

The commonest commands (``docker ps``, ``docker image ls``) are recognized first from a
precomputed copy of the table (:mod:`safedocker._docker.fastpass`) and exec'd before even
``typing`` or the router is imported: a passthrough costs little more than the
interpreter's own start (tests/unit/test_shim.py holds the list of what it may import).
"""

from __future__ import annotations

import os
import sys

from safedocker._docker.binary import exec_docker
from safedocker._docker.fastpass import passthrough

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import NoReturn


_EXPRESS_WORDS = frozenset({"run", "create", "pull"})  # as gate/express.py's WORDS


def _answered(answer: Callable[[list[str]], None], argv: list[str]) -> None:
    """Run a warm answer; when it answered (exit 0), end the process without the
    interpreter's teardown of every module (a few ms of a hit that costs tens): what was
    written is flushed first, and the warm path holds no other open resource."""
    try:
        answer(argv)
    except SystemExit as e:
        if e.code not in (0, None):
            raise
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


def main() -> NoReturn:
    argv = sys.argv[1:]
    if passthrough(argv):
        exec_docker(argv)
    if not _EXPRESS_WORDS.isdisjoint(argv):
        # A warm hit replayed for the same command line: before the router, re, json or
        # enum are imported. Only a line the warm path answered (so the router sent there)
        # has a plan; anything else returns at once.
        from safedocker.gate.express import answer as express

        _answered(express, argv)
    from safedocker._docker.route import Route, classify
    from safedocker._internal import environment

    route = classify(argv)
    if route is Route.PASSTHROUGH or (
        route is Route.INTERCEPT and environment.mode() == "off"
        # A system file may lock the mode: then the config
        # decides (and says that the lock won). Without one, off costs one stat.
        and not environment.system_policy_present()
    ):
        exec_docker(argv)
    if route is Route.INTERCEPT:
        from safedocker.gate.warm import answer  # the verdict cache: standard library only

        _answered(answer, argv)  # returns on a miss
        from safedocker.gate.dispatch import run  # verification: no typer on this path

        run(argv)
    if route is Route.OWN and argv[:1] == ["verify"]:
        from safedocker.gate.warm import answer_verify

        _answered(answer_verify, argv)  # the verdict cache; returns on a miss
    from safedocker.cli import main as cli_main  # heavy imports start here

    cli_main(route.value, argv)
